"""``prmflow report DIR [--out FILE.html]``: a run's (or a study directory's) page, written atomically."""

from __future__ import annotations

import argparse
import json
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
        run_id = _run_id(run_dir)
        if run_id:
            subtitle += f" · run {run_id}"
        return page(title, subtitle, sections, run_id)
    return page(title, subtitle, sections)


def _run_id(run_dir: Path) -> str | None:
    try:
        return json.loads((run_dir / "_SUCCESS").read_text(encoding="utf-8")).get("run_id")
    except (OSError, ValueError, AttributeError):
        return None


REPORT = "report.html"


def check_out(directory: str, out: str | None) -> Path:
    """Where the page goes: DIR/report.html by default (a run's publication removes it with the run it
    describes, pipelines/output.py). ``--out`` may not point into the run or study directory (its
    manifest, tables) nor over a file that is not a prmflow report."""
    from prmflow.report.page import GENERATOR
    from prmflow.safeio import UnsafeOutput, resolve

    root = resolve(directory)
    default = root / REPORT
    if out is None:
        return default
    target = resolve(out)
    if target.is_dir():
        raise UnsafeOutput(f"--out {out!r} is a directory; give the HTML file to write")
    if target != default and (target == root or root in target.parents):
        raise UnsafeOutput(f"--out {out!r} is inside {directory!r}, where it could replace the run's own files; "
                           f"write it outside (or leave --out out: {default})")
    if target.exists() and target != default:
        with open(target, "rb") as f:
            head = f.read(4096)
        if f'name="generator" content="{GENERATOR}"'.encode() not in head:
            raise UnsafeOutput(f"--out {out!r} exists and is not a prmflow report; pick another file name")
    return target


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
    from prmflow.safeio import atomic_write_text

    out = check_out(ns.directory, ns.out)  # before the figures: a refused --out costs nothing
    text = build(ns.directory, ns.partial)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out, text)  # no temporary file stays, even on a full disk
    except OSError as e:
        print(f"prmflow report: cannot write {out}: {e.strerror or e}", file=sys.stderr)
        return 1
    print(f"report written to {out} ({len(text) // 1024} KiB)")
    return 0


__all__ = ["build", "main"]
