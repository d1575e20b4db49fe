"""Plain data between the judge of a code problem's tests and the solution, both in sandboxes.

Standard library only: shipped into both sandboxes as a file (``prmflow_code_channel.py``) next to
``code_judge.py`` and ``code_server.py``. One message is one line of JSON; values are encoded so that
only plain builtin values can cross, never an object with behaviour of its own:
- JSON's own: None, bool, int (up to 4,000 digits), float (NaN and the infinities as JSON's
  non-standard literals, which Python reads back exactly), str, list;
- tagged, as ``{"$": tag, "v": payload}``: tuple ``t``, set ``s``, frozenset ``f``, dict ``d``
  (a list of [key, value] pairs, so keys keep their types), bytes ``b`` (hex), bytearray ``ba``,
  complex ``c`` ([real, imag]), a larger int ``i`` (hex text, which no digit limit applies to).
A JSON object is always a tag, so no value can pose as another. Decoding never runs code: it builds
builtins from the payload and rejects anything else (``ChannelError``).
"""

import json

# Bound here before the solution runs: in the solution's process it may patch builtins.
from builtins import dict, float, hex, int, isinstance, len, list, str, tuple, type  # noqa: A004, UP029

MAX_DEPTH = 200
"""Containers nested deeper than this are refused (a value that contains itself never ends)."""
MAX_NODES = 2_000_000
"""Values in one message at most."""
_SMALL_INT = 10**4000


class ChannelError(ValueError):
    """A value that cannot cross (not plain data), or a message that does not decode."""


def _type_name(x):
    t = type(x)
    return f"{t.__module__}.{t.__qualname__}" if t.__module__ != "builtins" else t.__qualname__


def _as_builtin(x, by_value):
    """An exact builtin copy of ``x`` when ``by_value`` and x is an instance of a builtin's subclass
    (a namedtuple, an IntEnum, a Counter ...), made with the builtin's own methods; else None."""
    if not by_value:
        return None
    for base, convert in ((bool, bool.__bool__), (int, int.__int__), (float, float.__float__),
                          (complex, complex.__complex__), (str, str.__str__), (bytes, bytes), (tuple, tuple),
                          (list, list), (dict, lambda d: dict(dict.items(d))), (frozenset, frozenset), (set, set),
                          (bytearray, bytearray)):
        if isinstance(x, base):
            try:
                value = convert(x)
            except Exception:  # noqa: BLE001 - a subclass whose conversion fails is not plain
                return None
            return value if type(value) is base else None
    return None


def to_plain(value, by_value=False):
    """``value`` as JSON-ready data; raises ChannelError naming the first part that is not plain.

    ``by_value``: an instance of a builtin's subclass crosses as its builtin value; otherwise only
    exact builtin types cross."""
    nodes = [0]

    def enc(x, depth):
        nodes[0] += 1
        if nodes[0] > MAX_NODES:
            raise ChannelError(f"a value of more than {MAX_NODES} parts")
        if depth > MAX_DEPTH:
            raise ChannelError(f"a value nested deeper than {MAX_DEPTH} levels")
        t = type(x)
        if x is None or t is bool or t is str or t is float:
            return x
        if t is int:
            return x if -_SMALL_INT < x < _SMALL_INT else {"$": "i", "v": hex(x)}
        if t is list:
            return [enc(v, depth + 1) for v in x]
        if t is tuple:
            return {"$": "t", "v": [enc(v, depth + 1) for v in x]}
        if t is dict:
            return {"$": "d", "v": [[enc(k, depth + 1), enc(v, depth + 1)] for k, v in x.items()]}
        if t is set or t is frozenset:
            return {"$": "s" if t is set else "f", "v": [enc(v, depth + 1) for v in x]}
        if t is bytes:
            return {"$": "b", "v": x.hex()}
        if t is bytearray:
            return {"$": "ba", "v": x.hex()}
        if t is complex:
            return {"$": "c", "v": [x.real, x.imag]}
        converted = _as_builtin(x, by_value)
        if converted is not None:
            return enc(converted, depth)
        raise ChannelError(f"a {_type_name(x)}, not plain data")

    return enc(value, 0)


_TAGS = {"t", "d", "s", "f", "b", "ba", "c", "i"}


def _hashable(v):
    try:
        hash(v)
    except TypeError:
        raise ChannelError(f"an unhashable {type(v).__name__} as a set member or dict key") from None
    return v


def _tagged(obj):
    if set(obj) != {"$", "v"} or obj["$"] not in _TAGS:
        raise ChannelError(f"not a tagged value: {sorted(obj)[:5]}")
    tag, v = obj["$"], obj["v"]
    if tag == "t" and type(v) is list:
        return tuple(v)
    if tag == "d" and type(v) is list and all(type(p) is list and len(p) == 2 for p in v):
        return {_hashable(k): val for k, val in v}
    if tag in ("s", "f") and type(v) is list:
        members = [_hashable(m) for m in v]
        return set(members) if tag == "s" else frozenset(members)
    if tag in ("b", "ba") and type(v) is str:
        try:
            data = bytes.fromhex(v)
        except ValueError:
            raise ChannelError("bytes that are not hex") from None
        return data if tag == "b" else bytearray(data)
    if tag == "c" and type(v) is list and len(v) == 2 and all(type(p) in (int, float) for p in v):
        return complex(v[0], v[1])
    if tag == "i" and type(v) is str:
        try:
            return int(v, 16)
        except ValueError:
            raise ChannelError("an int that is not hex") from None
    raise ChannelError(f"a malformed {tag!r} value")


def dumps(message):
    """One message as a line: ``message`` must be JSON-ready (already through ``to_plain``)."""
    return (json.dumps(message, separators=(",", ":")) + "\n").encode("ascii")


def loads(line):
    """A message from its line, tagged values decoded; raises ChannelError."""
    try:
        return json.loads(line, object_hook=_tagged, parse_constant=float)
    except ChannelError:
        raise
    except (ValueError, RecursionError, MemoryError, TypeError) as e:
        raise ChannelError(f"a message that does not decode: {type(e).__name__}") from None


class Line:
    """Reads lines of at most ``cap`` bytes from a descriptor (a longer one is an error)."""

    def __init__(self, fd, cap):
        self.fd, self.cap, self.buf = fd, cap, bytearray()

    def read(self):
        """The next line without its newline; None at end of file; raises ChannelError past the cap."""
        import os

        while True:
            i = self.buf.find(b"\n")
            if i > self.cap or (i < 0 and len(self.buf) > self.cap):
                raise ChannelError(f"a message longer than {self.cap} bytes")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[: i + 1]
                return line
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                return None
            self.buf += chunk


def write_all(fd, data):
    import os

    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
