"""The sections of a study directory's report: its tables and sweep plots."""

from __future__ import annotations

import html
import json
from pathlib import Path

from prmflow.report.page import Section, file_data_uri, table_html


def markdown_tables(text: str) -> list[tuple[str, list[str], list[list[str]]]]:
    """(heading, columns, rows) of every pipe table in a markdown file, under its last ## heading."""
    out, heading, lines = [], "", text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            heading = line[3:].strip()
        if line.startswith("|") and i + 1 < len(lines) and set(lines[i + 1].replace("|", "").strip()) <= {"-", ":"}:
            columns = [c.strip() for c in line.strip("|").split("|")]
            rows, i = [], i + 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append([c.strip() for c in lines[i].strip("|").split("|")])
                i += 1
            out.append((heading, columns, rows))
            continue
        i += 1
    return out


def study_sections(study_dir: Path) -> list[Section]:
    meta = json.loads((study_dir / "study.json").read_text(encoding="utf-8"))
    about = Section("study", f"Study: {meta.get('study', '?')}")
    about.tables.append(table_html(["", "value"], [
        ("base run", meta.get("run_dir")), ("trajectories with exact gold", meta.get("trajectories")),
        ("rollouts", meta.get("rollouts")), ("rollouts per step (N)", meta.get("rollouts_per_step")),
        ("seeds", ", ".join(map(str, meta.get("seeds", [])))), ("channels", ", ".join(meta.get("channels", []))),
        ("run seconds", meta.get("run_seconds")), ("sweep seconds", meta.get("sweep_seconds")),
    ]))
    for note in meta.get("not_included", []):
        about.notes.append("not included: " + html.escape(note))
    sweep = Section("sweep-plots", "Sweep plots")
    for png in sorted((study_dir / "plots").glob("*.png")):
        sweep.figures.append((file_data_uri(png.read_bytes()), png.stem.replace("_", " ")))
    if not sweep.figures:
        sweep.notes.append("no plots/ in this study directory")
    tables = Section("sweep-tables", "Sweep tables")
    md = study_dir / f"{meta.get('study', 'ambiguity')}.md"
    if md.is_file():
        for heading, columns, rows in markdown_tables(md.read_text(encoding="utf-8")):
            tables.notes.append(f"<b>{html.escape(heading)}</b>")
            tables.tables.append(table_html(columns, rows))
    # notes and tables render as two blocks; interleave them so each table sits under its heading
    tables = _interleaved(tables)
    return [about, sweep, tables]


def _interleaved(section: Section) -> Section:
    merged = [f'<p class="note">{n}</p>{t}' for n, t in zip(section.notes, section.tables, strict=True)]
    return Section(section.key, section.title, tables=merged)


__all__ = ["markdown_tables", "study_sections"]
