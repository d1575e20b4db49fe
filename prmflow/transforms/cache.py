"""The stage cache: every expensive batch's results, kept as soon as the batch is done, so a killed
run resumes where it stopped.

Each engine stage (sampling, rollouts, the judge, model splits) writes the results of each
deterministic batch under ``OUT/_cache/<stage>/<key[:2]>/<key>.pkl``, atomically (a temporary name,
then a rename), the moment the batch is done. The key hashes the stage's digest (everything that
changes its results: the sampler, the sampling settings, the labeler, the seed) and the ids of the
batch's members (content hashes). A rerun of the same config therefore finds every finished batch
and samples only the rest; a changed config finds nothing and recomputes. The engine's prefix cache
is reset before every batch, so a batch's results (``cached_prompt_tokens`` included) do not depend
on which batches ran before it, and a resumed run's shards equal an uninterrupted run's.

The cache lives in the output directory itself, beside the published tables (never in a run's
staging directory, which a failed run deletes), on any Beam filesystem. ``prmflow run --fresh``
ignores it; once the run is published it is deleted, except the sampling stage's of a run that
samples (unless ``output.keep_cache`` says otherwise: true keeps all, false none). A cache
entry that cannot be read (a truncated write from a killed process cannot happen thanks to the
rename, but a full disk or a foreign file can) counts as missing. Failing to write an entry only
logs: the cache is an optimisation, never a reason to fail a run.
"""

from __future__ import annotations

import logging
import pickle
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from apache_beam.io.filesystems import FileSystems

from prmflow.ids import content_id

log = logging.getLogger("prmflow")

CACHE_DIR = "_cache"
REUSED = "reused_"
"""Prefix of the engine counters of batches taken from the cache instead of the engine."""


@dataclass(frozen=True)
class StageCache:
    root: str
    """``OUT/_cache``."""
    stage: str
    """sample | rollout | judge | split | ..."""
    digest: str
    """Hash of everything besides the members that decides the stage's results."""

    def path(self, member_ids: Sequence[str]) -> str:
        key = content_id(self.digest, *member_ids)
        return FileSystems.join(self.root, self.stage, key[:2], f"{key}.pkl")

    def load(self, member_ids: Sequence[str]) -> Any | None:
        path = self.path(member_ids)
        try:
            if not FileSystems.exists(path):
                return None
            with FileSystems.open(path) as f:
                return pickle.loads(f.read())
        except Exception as e:  # noqa: BLE001 - an unreadable entry is a missing one
            log.warning("stage cache: ignoring unreadable %s (%s: %s)", path, type(e).__name__, e)
            return None

    def store(self, member_ids: Sequence[str], value: Any) -> None:
        path = self.path(member_ids)
        tmp = f"{path}.tmp-{uuid.uuid4().hex}"
        try:
            if "://" not in path:
                import os

                os.makedirs(os.path.dirname(path), exist_ok=True)
            with FileSystems.create(tmp) as f:
                f.write(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
            FileSystems.rename([tmp], [path])
        except Exception as e:  # noqa: BLE001 - the cache is an optimisation, never a failure
            log.warning("stage cache: could not keep %s (%s: %s)", path, type(e).__name__, e)


def stage_cache(root: str | None, stage: str, *parts: object) -> StageCache | None:
    """The cache of one stage, its digest hashing ``parts``; None when the run keeps no cache."""
    return None if root is None else StageCache(root, stage, content_id(stage, *parts))


def delete_cache(root: str, keep: tuple[str, ...] = ()) -> None:
    """Remove a run's stage cache: every stage but those in ``keep``."""
    try:
        if "://" not in root:
            import os
            import shutil

            if not keep:
                shutil.rmtree(root, ignore_errors=True)
                return
            for name in os.listdir(root) if os.path.isdir(root) else ():
                if name not in keep:
                    shutil.rmtree(os.path.join(root, name), ignore_errors=True)
            return
        matches = FileSystems.match([FileSystems.join(root, "**")])[0].metadata_list
        prefix = root.rstrip("/") + "/"
        doomed = [m.path for m in matches if m.path[len(prefix):].split("/", 1)[0] not in keep]
        if doomed:
            FileSystems.delete(doomed)
    except Exception as e:  # noqa: BLE001 - a leftover cache only costs disk
        log.warning("stage cache: could not remove %s (%s)", root, e)
