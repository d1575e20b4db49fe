import os
from pathlib import Path

import pytest

# The in-process vLLM engine on CPU (see DEVELOPERS.md); set before anything imports vllm.
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
TEST_DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The public data sets beside the checkout (CI has them); a missing copy is an error, not a skip."""
    assert SHARED_DATA.is_dir(), f"expected the shared data sets at {SHARED_DATA}"
    return SHARED_DATA


@pytest.fixture(scope="session")
def test_data() -> Path:
    return TEST_DATA


# Fixtures by concern: the tiny model, the engines over it, servers (real and fake), SmolLM2.
pytest_plugins = [
    "tests.fixtures.tiny_model", "tests.fixtures.engines", "tests.fixtures.servers", "tests.fixtures.smollm2",
]
