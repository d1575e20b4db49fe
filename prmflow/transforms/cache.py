"""The stage cache: every expensive batch's results, kept as soon as the batch is done, so a killed
run resumes where it stopped.

Each engine stage (sampling, rollouts, the judge, model splits, PRM scores) writes the results of
each deterministic batch under ``OUT/_cache/<stage>/<key[:2]>/<key>.json``, atomically (a temporary
name, then a rename), the moment the batch is done. The key hashes the stage's digest (everything
that changes its results: the sampler, the sampling settings, the labeler, the seed) and the ids of
the batch's members (content hashes). A rerun of the same config therefore finds every finished
batch and samples only the rest; a changed config finds nothing and recomputes. The engine's prefix
cache is reset before every batch, so a batch's results (``cached_prompt_tokens`` included) do not
depend on which batches ran before it, and a resumed run's shards equal an uninterrupted run's.

An entry is plain JSON with a header naming its stage, digest, key, members and checksum
(``core/cache_entry.py``); nothing read from the cache is unpickled or executed. An entry that fails
any check (a planted or foreign file, an entry copied onto another batch, an edited value, a value
of the wrong shape) or cannot be read counts as missing: the batch is computed again, a warning
names the file and the reason, and the manifest counts it (``counts.cache_rejected``,
``<stage>/<reason>``).

The cache lives in the output directory itself, beside the published tables (never in a run's
staging directory, which a failed run deletes), on any Beam filesystem. ``prmflow run --fresh``
ignores it; once the run is published it is deleted, except the sampling stage's of a run that
samples (unless ``output.keep_cache`` says otherwise: true keeps all, false none). Failing to write
an entry only logs: the cache is an optimisation, never a reason to fail a run.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from prmflow.core import cache_entry
from prmflow.core.cache_entry import CODECS, Codec, Rejected
from prmflow.ids import content_id

log = logging.getLogger("prmflow")

CACHE_DIR = "_cache"
REUSED = "reused_"
"""Prefix of the engine counters of batches taken from the cache instead of the engine."""
REJECTED = "cache_rejected/"
"""Prefix of the Beam counters of entries found but not used: ``cache_rejected/<stage>/<reason>``
(the manifest's ``counts.cache_rejected``)."""


@dataclass(frozen=True)
class StageCache:
    root: str
    """``OUT/_cache``."""
    stage: str
    """sample | rollout | judge | split | prm (a key of ``cache_entry.CODECS``)."""
    digest: str
    """Hash of everything besides the members that decides the stage's results."""

    @property
    def codec(self) -> Codec:
        """How the stage's values are written and checked (``cache_entry.CODECS``)."""
        return CODECS[self.stage]

    def key(self, member_ids: Sequence[str]) -> str:
        return content_id(self.digest, *member_ids)

    def path(self, member_ids: Sequence[str]) -> str:
        key = self.key(member_ids)
        return FileSystems.join(self.root, self.stage, key[:2], key + cache_entry.SUFFIX)

    def load(self, member_ids: Sequence[str]) -> Any | None:
        """The batch's value, or None when there is no entry or it fails a check (see above)."""
        path = self.path(member_ids)
        try:
            if not FileSystems.exists(path):
                return None
            with FileSystems.open(path) as f:
                data = f.read()
        except Exception as e:  # noqa: BLE001 - an unreadable entry is a missing one
            return self._reject(path, Rejected("unreadable", f"{type(e).__name__}: {e}"))
        try:
            plain = cache_entry.decode(data, self.stage, self.digest, self.key(member_ids), member_ids)
            return self.codec.decode(plain, member_ids)
        except Rejected as e:
            return self._reject(path, e)

    def _reject(self, path: str, e: Rejected) -> None:
        log.warning("stage cache: not using %s, computing the batch again (%s)", path, e)
        beam.metrics.Metrics.counter("prmflow", f"{REJECTED}{self.stage}/{e.reason}").inc()
        return None

    def store(self, member_ids: Sequence[str], value: Any) -> None:
        path = self.path(member_ids)
        tmp = f"{path}.tmp-{uuid.uuid4().hex}"
        try:
            data = cache_entry.encode(self.stage, self.digest, self.key(member_ids), member_ids,
                                      self.codec.encode(value))
            _mark(self.root)
            if "://" not in path:
                os.makedirs(os.path.dirname(path), exist_ok=True)
            with FileSystems.create(tmp) as f:
                f.write(data)
            FileSystems.rename([tmp], [path])
        except Exception as e:  # noqa: BLE001 - the cache is an optimisation, never a failure
            log.warning("stage cache: could not keep %s (%s: %s)", path, type(e).__name__, e)
            _discard(tmp)


def _discard(path: str) -> None:
    try:
        if "://" not in path:
            if os.path.exists(path):
                os.remove(path)  # FileSystems.delete globs the path: exp[1] is not exp1
        elif FileSystems.exists(path):
            FileSystems.delete([path])
    except Exception:  # noqa: BLE001 - a temp file left by a failed write; delete_cache removes it
        pass


def rejected_counts(counters: dict[str, int]) -> dict[str, int]:
    """``<stage>/<reason>`` -> entries rejected, from a run's Beam counters (``beam_counters``)."""
    return {k[len(REJECTED):]: v for k, v in sorted(counters.items()) if k.startswith(REJECTED) and v}


def stage_cache(root: str | None, stage: str, *parts: object) -> StageCache | None:
    """The cache of one stage, its digest hashing ``parts``; None when the run keeps no cache."""
    return None if root is None else StageCache(root, stage, content_id(stage, *parts))


MARKER = ".prmflow-cache"
"""The file that makes ``OUT/_cache`` prmflow's: a directory of that name without it (another tool's)
is neither read nor written nor deleted."""


def open_cache(root: str) -> str | None:
    """``root`` if a run may keep its stage cache there (no such directory yet, or prmflow's: it has
    the marker), else None, with a warning: a directory by that name holding files prmflow did not
    put there is neither read, written nor deleted. Nothing is created until an entry is stored."""
    try:
        if FileSystems.exists(FileSystems.join(root, MARKER)):
            return root
        if "://" not in root:
            foreign = os.path.isdir(root) and bool(os.listdir(root))
        else:
            foreign = bool(FileSystems.match([FileSystems.join(root, "**")])[0].metadata_list)
    except Exception as e:  # noqa: BLE001 - the cache is an optimisation
        log.warning("stage cache: cannot use %s (%s); this run keeps no cache", root, e)
        return None
    if foreign:
        log.warning("stage cache: %s exists and is not prmflow's (no %s); this run keeps no cache and leaves it "
                    "alone", root, MARKER)
        return None
    return root


def _mark(root: str) -> None:
    """The marker, written before the first entry (a stat per stored batch otherwise)."""
    marker = FileSystems.join(root, MARKER)
    if not FileSystems.exists(marker):
        if "://" not in root:
            os.makedirs(root, exist_ok=True)
        with FileSystems.create(marker) as f:
            f.write(b"prmflow stage cache: safe to delete when no run is writing this directory\n")


def delete_cache(root: str, keep: tuple[str, ...] = ()) -> None:
    """Remove a run's stage cache: every stage but those in ``keep`` (and then the marker stays); a
    directory without the marker is left alone."""
    try:
        if not FileSystems.exists(FileSystems.join(root, MARKER)):
            return
        if "://" not in root:
            import shutil

            if not keep:
                shutil.rmtree(root, ignore_errors=True)
                return
            for name in os.listdir(root) if os.path.isdir(root) else ():
                if name not in keep and name != MARKER:
                    shutil.rmtree(os.path.join(root, name), ignore_errors=True)
            return
        matches = FileSystems.match([FileSystems.join(root, "**")])[0].metadata_list
        prefix = root.rstrip("/") + "/"
        doomed = [m.path for m in matches if m.path[len(prefix):].split("/", 1)[0] not in (*keep, MARKER)]
        if doomed:
            FileSystems.delete(doomed)
    except Exception as e:  # noqa: BLE001 - a leftover cache only costs disk
        log.warning("stage cache: could not remove %s (%s)", root, e)
