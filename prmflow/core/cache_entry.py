"""Stage-cache entries as plain, checked records: nothing read back from ``OUT/_cache`` runs code or
lands on the wrong batch.

An entry is one file: a header line of JSON, then the value as JSON::

    {"format": "prmflow.stage-cache", "version": 1, "stage": "sample", "digest": ..., "key": ...,
     "members": [ids...], "sha256": <of the value's bytes>, "bytes": <their length>}\\n
    <value>

``decode`` checks, in order, that the header parses and names this format and version, that its
stage and digest are the stage's, its key the one the file was looked up by, its members the
batch's ids in order, that the value's bytes hash to the header's checksum, and finally that the
value has the stage's shape (``Codec.decode``: exact keys and types, ids that belong to the batch).
The first failed check raises :class:`Rejected` with a stable reason (``REASONS``); the caller
treats the entry as missing. No pickle: a value is JSON built from plain types, and decoding one
builds only the record classes its codec names.

The checksum catches a truncated, corrupted or hand-edited value; the members and key catch an
entry copied or swapped onto another batch. It is not a signature: whoever can write the output
directory can write a consistent entry (and could edit the published tables just as well), but such
an entry can only supply values of the right shape for the right batch, never run code.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from prmflow.samplers.base import SamplingResult
from prmflow.schemas import TABLES, arrow_schema

FORMAT = "prmflow.stage-cache"
VERSION = 1
SUFFIX = ".json"
REASONS = ("format", "digest", "key", "members", "checksum", "shape", "unreadable")
"""Why an entry was not used: not a prmflow entry of this version (a pickle, a foreign or truncated
file), another stage or config, another batch's key or members, a value whose bytes changed, a value
of the wrong shape, a file that could not be read at all."""


class Rejected(ValueError):
    """A cache entry that must count as missing; ``reason`` is one of ``REASONS``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def encode(stage: str, digest: str, key: str, members: Sequence[str], plain: Any) -> bytes:
    """An entry's bytes for a value already in plain form (``Codec.encode``)."""
    body = json.dumps(plain, ensure_ascii=False, separators=(",", ":")).encode("utf-8")  # rows keep column order
    header = {"format": FORMAT, "version": VERSION, "stage": stage, "digest": digest, "key": key,
              "members": list(members), "sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body)}
    return _dumps(header) + b"\n" + body


def decode(data: bytes, stage: str, digest: str, key: str, members: Sequence[str]) -> Any:
    """The plain value of an entry, after every check in the module docstring; else :class:`Rejected`."""
    head, sep, body = data.partition(b"\n")
    try:
        header = json.loads(head.decode("utf-8")) if sep else None
    except (UnicodeDecodeError, ValueError):
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT or header.get("version") != VERSION:
        raise Rejected("format", f"not a {FORMAT} v{VERSION} entry (starts {data[:16]!r})")
    if header.get("stage") != stage or header.get("digest") != digest:
        raise Rejected("digest", f"written by stage {header.get('stage')!r} digest {header.get('digest')!r}, "
                                 f"expected {stage!r} {digest!r}")
    if header.get("key") != key:
        raise Rejected("key", f"holds key {header.get('key')!r}, looked up as {key!r}")
    if header.get("members") != list(members):
        raise Rejected("members", "its batch members differ from the batch being computed")
    if header.get("bytes") != len(body) or header.get("sha256") != hashlib.sha256(body).hexdigest():
        raise Rejected("checksum", f"its value ({len(body)} bytes) does not match the header's sha256")
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:  # only a consistent forgery gets here
        raise Rejected("shape", f"the value is not JSON ({e})") from None


# -- plain values ----------------------------------------------------------------------------------


def to_plain(value: Any) -> Any:
    """A record (dataclass), tuple, list or dict of them as JSON-ready lists, dicts and scalars."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    return value


def _shape(where: str, want: str, got: Any) -> Rejected:
    return Rejected("shape", f"{where} must be {want}, got {type(got).__name__} {str(got)[:60]!r}")


def from_plain(tp: Any, value: Any, where: str = "value") -> Any:
    """``value`` (parsed JSON) as an instance of the annotation ``tp``, checked all the way down:
    dataclasses (exactly their fields), ``tuple[X, ...]``, ``list[X]``, ``dict[str, X]``, unions
    with None, str, int, float (an int is kept as it is: the value written), bool. Anything else
    raises :class:`Rejected` ("shape")."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return from_plain(option, value, where)
            except Rejected as e:
                errors.append(e.detail)
        raise Rejected("shape", "; ".join(errors) or f"{where} must not be null")
    if origin in (tuple, list):
        if not isinstance(value, list):
            raise _shape(where, "a list", value)
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise _shape(where, f"a list of {len(args)}", value)
            return tuple(from_plain(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
        item = args[0] if args else Any
        out = [from_plain(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        if not isinstance(value, dict):
            raise _shape(where, "an object", value)
        return {k: from_plain(args[1] if args else Any, v, f"{where}.{k}") for k, v in value.items()}
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise _shape(where, f"a {tp.__name__} object", value)
        fields = {f.name: f for f in dataclasses.fields(tp)}
        if set(value) != set(fields):
            raise Rejected("shape", f"{where} must have the fields {sorted(fields)}, got {sorted(value)}")
        hints = typing.get_type_hints(tp)
        try:
            return tp(**{name: from_plain(hints[name], value[name], f"{where}.{name}") for name in fields})
        except (TypeError, ValueError) as e:  # the record's own checks (__post_init__)
            raise Rejected("shape", f"{where}: {e}") from None
    if tp is bool:
        if not isinstance(value, bool):
            raise _shape(where, "a boolean", value)
        return value
    if tp is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise _shape(where, "an integer", value)
        return value
    if tp is float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise _shape(where, "a number", value)
        return value
    if tp is str:
        if not isinstance(value, str):
            raise _shape(where, "a string", value)
        return value
    if tp is type(None):
        if value is not None:
            raise _shape(where, "null", value)
        return None
    raise Rejected("shape", f"{where}: cannot read a {tp!r} from a cache entry")


# -- the stages' values ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Codec:
    """How one stage's value is written (``encode``: value -> plain) and read back (``decode``:
    plain, the batch's member ids -> value, or :class:`Rejected`)."""

    encode: Callable[[Any], Any]
    decode: Callable[[Any, Sequence[str]], Any]


def _sampling_results(plain: Any, members: Sequence[str]) -> list:
    results = from_plain(list[SamplingResult], plain, "results")
    if len(results) != len(members):
        raise Rejected("shape", f"{len(results)} results for a batch of {len(members)} requests")
    for i, (r, member) in enumerate(zip(results, members, strict=True)):
        if r.request_id != member:
            raise Rejected("shape", f"results[{i}] answers request {r.request_id!r}, not {member!r}")
    return results


def _scores(plain: Any, members: Sequence[str]) -> list:
    scores = from_plain(list[tuple[float | None, ...]], plain, "scores")
    if len(scores) != len(members):
        raise Rejected("shape", f"{len(scores)} score lists for a batch of {len(members)} trajectories")
    return scores


ROLLOUT_TABLES = ("steps", "start_states", "rollouts")
_FAILURE = {"trajectory_id": str, "k": int, "prefix": str, "error": str}


def _rollout_output(plain: Any, members: Sequence[str]) -> dict:
    """A rollout batch: the rows of its three tables exactly as written (checked against each
    table's Arrow schema), its probe failures by trajectory id, and the engine's totals."""
    expected = {*ROLLOUT_TABLES, "failures", "totals"}
    if not isinstance(plain, dict) or set(plain) != expected:
        raise Rejected("shape", f"a rollout entry must be an object with {sorted(expected)}")
    ids = set(members)
    for table in ROLLOUT_TABLES:
        rows = plain[table]
        schema = arrow_schema(TABLES[table][0], table)
        if not isinstance(rows, list) or not all(isinstance(r, dict) and set(r) == set(schema.names) for r in rows):
            raise Rejected("shape", f"{table} must be a list of rows with the columns {schema.names}")
        rows = plain[table] = [{name: r[name] for name in schema.names} for r in rows]  # column order
        if any(r["trajectory_id"] not in ids for r in rows):
            raise Rejected("shape", f"a {table} row belongs to a trajectory outside the batch")
        try:
            pa.Table.from_pylist(rows, schema=schema)
        except (pa.ArrowException, TypeError, ValueError) as e:
            raise Rejected("shape", f"{table} rows do not fit the table's schema ({e})") from None
    failures = plain["failures"]
    if not isinstance(failures, list) or not all(
            isinstance(f, dict) and set(f) == set(_FAILURE)
            and all(isinstance(f[k], t) and not isinstance(f[k], bool) for k, t in _FAILURE.items())
            and f["trajectory_id"] in ids for f in failures):
        raise Rejected("shape", f"failures must be objects {sorted(_FAILURE)} of trajectories in the batch")
    from_plain(dict[str, int], plain["totals"], "totals")
    return plain


SAMPLING = Codec(to_plain, _sampling_results)
"""sample, judge, split: the engine's ``SamplingResult`` list, one per request, in order."""
SCORES = Codec(to_plain, _scores)
"""prm: one tuple of step scores per trajectory."""
ROLLOUT = Codec(lambda v: v, _rollout_output)
"""rollout: ``{steps, start_states, rollouts, failures, totals}`` (``transforms/rollout.py``)."""
CODECS = {"sample": SAMPLING, "judge": SAMPLING, "split": SAMPLING, "prm": SCORES, "rollout": ROLLOUT}
