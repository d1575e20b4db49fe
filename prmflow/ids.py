"""Content-hash ids: a rerun of the same config produces the same ids, so reruns and resumes line up."""

from __future__ import annotations

import hashlib

ID_LENGTH = 16  # hex chars = 64 bits; collisions are negligible below ~10^9 rows per table


def content_id(*parts: object) -> str:
    """A stable id from the parts' ``str`` forms, separated so that ("ab", "c") != ("a", "bc")."""
    h = hashlib.sha256()
    for part in parts:
        h.update(str(part).encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")
    return h.hexdigest()[:ID_LENGTH]
