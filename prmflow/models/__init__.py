"""Models shipped inside the package, addressed as ``builtin:NAME``."""

from __future__ import annotations

from pathlib import Path

BUILTIN_PREFIX = "builtin:"
MODELS_DIR = Path(__file__).parent


def builtin_models() -> list[str]:
    """Names of the models shipped in this package (directories holding a config.json)."""
    return sorted(p.name for p in MODELS_DIR.iterdir() if (p / "config.json").is_file())


def resolve_model_path(model: str) -> str:
    """Map ``builtin:NAME`` to the shipped model directory; any other string is returned as is.

    Other strings are local directories or names an engine understands; this machine has no model hub,
    so the engine itself reports a missing directory.
    """
    if not model.startswith(BUILTIN_PREFIX):
        return model
    name = model[len(BUILTIN_PREFIX):]
    path = MODELS_DIR / name
    if not (path / "config.json").is_file():
        raise ValueError(
            f"model must be a local directory or one of builtin:{{{', '.join(builtin_models())}}}, got {model!r}"
        )
    return str(path)
