"""LoRA (``lora_r > 0``): adapters on the body, merged into the saved model, which scores exactly as it
was validated. peft is optional and not an install requirement: `make consumers`
(scripts/install_consumers.sh) installs the pinned version into .cache/consumers/peft with --no-deps (its
own dependencies are prmflow's); the test is skipped where it is missing."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

from tests.prm.test_train import toy_config, toy_rows

SIDE = Path(__file__).resolve().parents[2] / ".cache" / "consumers" / "peft"


@pytest.fixture(scope="module")
def peft():
    try:
        return importlib.import_module("peft")
    except ImportError:
        pass
    if not (SIDE / "peft").is_dir():
        pytest.skip(f"peft is not installed in {SIDE}; run `make consumers`")
    sys.path.insert(0, str(SIDE))
    return importlib.import_module("peft")


def test_lora_trains_adapters_and_saves_them_merged(peft, tmp_path):
    import torch
    from safetensors.torch import load_file

    from prmflow.models import resolve_model_path
    from prmflow.prm.config import PRM_JSON
    from prmflow.prm.metrics import step_metrics
    from prmflow.prm.scorer import PRMScorer
    from prmflow.prm.train import train

    result = train(toy_config(tmp_path, lora_r=4, epochs=3, lr=1e-3), progress=False)
    saved = load_file(str(Path(result.output) / "model" / "model.safetensors"))
    base = load_file(str(Path(resolve_model_path("builtin:arith-tiny")) / "model.safetensors"))
    assert not any("lora" in k for k in saved)  # merged: plain transformers weights
    changed = [k for k in base if k in saved and not torch.equal(base[k], saved[k])]
    assert any("q_proj" in k for k in changed)  # the adapters moved the attention projections
    assert not any("embed_tokens" in k or "norm" in k for k in changed)  # nothing outside the adapters
    meta = json.loads((Path(result.output) / PRM_JSON).read_text())
    rows = toy_rows(16, 1)
    scores = PRMScorer(result.output, device="cpu").score_many([(r["prompt"], r["steps"]) for r in rows])
    again = step_metrics([(s, r["labels"]) for s, r in zip(scores, rows, strict=True)], meta["threshold"],
                         meta["reference_threshold"]).to_dict()
    for key in ("step_accuracy", "processbench_f1", "step_auc"):
        assert again[key] == pytest.approx(meta["validation"][key]), key
