"""Put a finished local directory in place of another in one rename, so a reader never sees half of
either (exports, trained PRMs). The implementation and its recovery rules are in ``prmflow.safeio``."""

from __future__ import annotations

from prmflow.safeio import replace_dir

__all__ = ["replace_dir"]
