"""The stage cache trusts nothing it reads (issue 24): a planted pickle, two swapped entries, an
edited entry and an entry of the wrong shape each end in the batch computed again, a warning naming
the file, ``counts.cache_rejected`` in the manifest, and the clean run's shards byte for byte.

Real runs on the fake backend (in process, FnApiRunner). The clean run keeps its cache
(``output.keep_cache``); each case copies that output, tampers with its cache and reruns into it.
"""

from __future__ import annotations

import json
import logging
import pickle
import shutil
from pathlib import Path

import pytest
import yaml

from prmflow.core import cache_entry
from prmflow.pipelines.label import run
from prmflow.samplers.fake_backend import fake_answer
from prmflow.transforms.cache import MARKER


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache-trust")
    rows = [{"q": f"Add {i}, {i % 5} and {2 * i}.", "a": fake_answer(f"Add {i}, {i % 5} and {2 * i}.")} for i in range(12)]
    (root / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = {
        "name": "cache-trust",
        "inputs": [{"name": "add", "format": "jsonl", "path": str(root / "p.jsonl"),
                    "fields": {"prompt": "q", "reference_answer": "a"}}],
        "sampler": {"backend": "fake", "model": "fake", "engine_kwargs": {"step_error": 0.2}},
        "sampling": {"n": 2, "template": "question-answer", "batch_size": 4},
        "outcome": {"labeler": "exact"},
        "process": {"method": "mc", "rollouts": 3, "batch_trajectories": 6},
        "output": {"num_shards": 2, "keep_cache": True, "overwrite": True},
    }
    path = root / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    out = root / "clean"
    manifest = run([str(path), "--output", str(out)])
    assert manifest["reconciliation"]["ok"]
    assert len(entries(out, "sample")) >= 2 and len(entries(out, "rollout")) >= 2
    return path, out, shards(out), manifest["counts"]["engine"]


def entries(out: Path, stage: str) -> list[Path]:
    return sorted((out / "_cache" / stage).rglob(f"*{cache_entry.SUFFIX}"))


def shards(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.glob("*/*.parquet"))}


class Planted:
    """Unpickling this creates a file: the proof that a cache entry ran code."""

    def __init__(self, proof: Path) -> None:
        self.proof = proof

    def __reduce__(self):
        return (Path.touch, (self.proof,))


def plant_pickle(out: Path, tmp_path: Path) -> tuple[str, int]:
    target = entries(out, "sample")[0]
    target.write_bytes(pickle.dumps(Planted(tmp_path / "pwned")))
    # and one beside it under the old name, which a run must never open
    target.with_suffix(".pkl").write_bytes(pickle.dumps(Planted(tmp_path / "pwned")))
    return "sample/format", 1


def swap(out: Path, tmp_path: Path) -> tuple[str, int]:
    a, b = entries(out, "sample")[:2]
    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_b)
    b.write_bytes(data_a)
    return "sample/key", 2


def edit(out: Path, tmp_path: Path) -> tuple[str, int]:
    target = entries(out, "rollout")[0]
    head, body = target.read_bytes().split(b"\n", 1)
    value = json.loads(body)
    value["steps"][0]["mc_value"] = 1.0 - (value["steps"][0]["mc_value"] or 0.0)  # a label flipped by hand
    target.write_bytes(head + b"\n" + json.dumps(value).encode())
    return "rollout/checksum", 1


def wrong_shape(out: Path, tmp_path: Path) -> tuple[str, int]:
    """A consistent entry (header, key, members, checksum all right) whose value has the wrong shape:
    only the shape check stands between it and the run."""
    target = entries(out, "rollout")[0]
    header = json.loads(target.read_bytes().split(b"\n", 1)[0])
    value = {"steps": [{"trajectory_id": header["members"][0], "label": "yes"}], "start_states": [],
             "rollouts": [], "failures": [], "totals": {}}
    target.write_bytes(cache_entry.encode(header["stage"], header["digest"], header["key"], header["members"], value))
    return "rollout/shape", 1


@pytest.mark.parametrize("tamper", [plant_pickle, swap, edit, wrong_shape], ids=lambda f: f.__name__)
def test_a_tampered_entry_is_computed_again_with_a_warning(tamper, clean, tmp_path, caplog):
    config, clean_out, expected, clean_engine = clean
    out = tmp_path / "out"
    shutil.copytree(clean_out, out)
    reason, n = tamper(out, tmp_path)
    with caplog.at_level(logging.WARNING, logger="prmflow"):
        manifest = run([str(config), "--output", str(out)])
    assert not (tmp_path / "pwned").exists()  # nothing was unpickled
    assert manifest["reconciliation"]["ok"]
    assert shards(out) == expected  # the clean run's bytes
    assert manifest["counts"]["cache_rejected"] == {reason: n}
    warned = [r.getMessage() for r in caplog.records if "stage cache: not using" in r.getMessage()]
    assert len(warned) == n and all(f"{reason.split('/')[1]}:" in w for w in warned), warned
    engine = manifest["counts"]["engine"]
    redone = "batches" if reason.startswith("sample") else "rollout_batches"
    assert engine.get(redone, 0) >= 1  # the rejected batches went to the engine again
    for key in ("batches", "rollout_batches"):
        reused = "reused_batches" if key == "batches" else "rollout_reused_batches"
        assert engine.get(key, 0) + engine.get(reused, 0) == clean_engine[key]


def test_a_cache_dir_prmflow_did_not_make_is_left_alone(clean, tmp_path, caplog):
    """``OUT/_cache`` without prmflow's marker (another tool's) is neither read nor deleted."""
    config, clean_out, expected, _ = clean
    out = tmp_path / "out"
    shutil.copytree(clean_out, out)
    (out / "_cache" / MARKER).unlink()
    theirs = sorted(p.relative_to(out) for p in (out / "_cache").rglob("*"))
    with caplog.at_level(logging.WARNING, logger="prmflow"):
        manifest = run([str(config), "--output", str(out)])
    assert sorted(p.relative_to(out) for p in (out / "_cache").rglob("*")) == theirs
    assert manifest["counts"]["engine"].get("reused_batches", 0) == 0  # nothing taken from it
    assert shards(out) == expected
    assert any("is not prmflow's" in r.getMessage() for r in caplog.records)
