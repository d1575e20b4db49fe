"""The quick start's commands, read from the README (between its quickstart markers) or, where the
README has no such block, from docs/quickstart.md: one source for the page, the test and the bench."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
START, END = "<!-- quickstart:start -->", "<!-- quickstart:end -->"


def quickstart_source() -> Path:
    readme = REPO / "README.md"
    if readme.is_file() and START in readme.read_text(encoding="utf-8"):
        return readme
    return REPO / "docs" / "quickstart.md"


def quickstart_commands() -> list[str]:
    """The commands of the block, comments and blank lines dropped, in order."""
    text = quickstart_source().read_text(encoding="utf-8")
    block = text[text.index(START) + len(START): text.index(END)]
    code = re.search(r"```(?:bash|sh|console)?\n(.*?)```", block, re.S)
    assert code, f"no code block between the quickstart markers of {quickstart_source()}"
    lines = [re.sub(r"\s+#.*$", "", line).strip() for line in code.group(1).splitlines()]
    return [line for line in lines if line and not line.startswith("#")]
