"""``prmflow report DIR [--out FILE.html]``: a run's (or a study directory's) page, written atomically."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def build(directory: str, partial: bool = False) -> str:
    """The page's HTML for a run directory or a study directory (study.json; its base run, if kept,
    is appended)."""
    from prmflow.report.page import page

    root = Path(directory)
    sections = []
    title, subtitle = f"prmflow report: {root.name}", str(root.resolve())
    run_dir = root
    if (root / "study.json").is_file():
        from prmflow.report.study import study_sections

        sections += study_sections(root)
        title = f"prmflow study: {root.name}"
        base = json.loads((root / "study.json").read_text(encoding="utf-8")).get("run_dir")
        run_dir = Path(base) if base and (Path(base) / "manifest.json").is_file() else None
    if run_dir is not None:
        from prmflow.analysis.views import connect
        from prmflow.report.run import run_sections

        manifest_path = run_dir / "manifest.json"
        if not manifest_path.is_file():
            raise FileNotFoundError(f"{directory} is neither a run directory (manifest.json) nor a study directory "
                                    "(study.json)")
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        con = connect(str(run_dir), partial=partial)
        if sections:
            subtitle += f" · base run {run_dir}"
        sections += run_sections(con, manifest)
    return page(title, subtitle, sections)


DESCRIPTION = "One self-contained HTML page of a run (or of a study directory), written atomically."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", metavar="DIR", help="a run's output directory, or a study directory")
    parser.add_argument("--out", default=None, help="the HTML file (default DIR/report.html)")
    parser.add_argument("--partial", action="store_true", help="read a run without _SUCCESS")


def main(args: list[str]) -> int:
    from prmflow.core.cliparse import parser

    ns = parser("prmflow report", DESCRIPTION, add_arguments).parse_args(args)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print('prmflow report: figures need matplotlib: pip install "prmflow[report]"', file=sys.stderr)
        return 2
    text = build(ns.directory, ns.partial)
    out = Path(ns.out) if ns.out else Path(ns.directory) / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)
    print(f"report written to {out} ({len(text) // 1024} KiB)")
    return 0


__all__ = ["build", "main"]
