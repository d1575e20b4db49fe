"""Put a finished local directory in place of another in one rename, so a reader never sees half of
either (exports, trained PRMs)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def replace_dir(staging: Path, out: Path) -> None:
    """Move ``staging`` to ``out``; an existing ``out`` is moved aside first and deleted after."""
    if out.exists():
        old = out.parent / f".{out.name}.replaced-{os.getpid()}"
        out.rename(old)
        staging.rename(out)
        shutil.rmtree(old)
    else:
        staging.rename(out)
