"""``export(run_dir, out, config)``: a finished run's labels in a trainer's format, with a dataset card.

Reads the run through :func:`prmflow.analysis.views.connect`, which refuses a directory without
``_SUCCESS``. Writes the ``train`` and ``validation`` files that hold rows (an empty split is neither
written nor listed in the card: ``datasets.load_dataset`` and verl fail on an empty Parquet file) and
README.md into a staging directory beside ``out``, then renames it into place: an export that fails
leaves nothing half-written.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from prmflow.analysis.views import connect
from prmflow.core.publish import replace_dir
from prmflow.export.card import render as render_card
from prmflow.export.config import BOOLEAN_FORMATS, OPENRLHF_VERSION, SOFT_REFUSAL, ExportConfig, ExportError
from prmflow.export.formats import math_shepherd, native, openrlhf, trl, verl
from prmflow.export.formats.base import arrow_schema
from prmflow.export.select import SPLITS, Example, Selection, non_binary, select_trajectories
from prmflow.export.tokens import check_openrlhf
from prmflow.export.tokens import load as load_tokenizer
from prmflow.export.writers import WRITERS
from prmflow.safeio import check_out_dir

STEP_FORMATS = {"trl": trl, "openrlhf": openrlhf, "math-shepherd": math_shepherd, "prmflow": native}


@dataclass(frozen=True)
class ExportResult:
    out: str
    files: dict[str, str]
    """split -> file name inside ``out``."""
    counts: dict


    warnings: tuple[str, ...] = ()
    """Things the user should know (e.g. no --license), one line each."""


def run_config(run_dir: str) -> dict:
    """The run's config as its manifest recorded it."""
    path = Path(run_dir) / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        return dict(manifest["config"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ExportError(f"{str(path)!r} cannot be read ({e}); is {run_dir!r} a finished prmflow run?") from e


def config_digest(run_dir: str) -> str:
    """The run's config digest, as ``RunConfig.digest`` computed it: sha256 of the manifest's config."""
    return hashlib.sha256(json.dumps(run_config(run_dir), sort_keys=True).encode()).hexdigest()[:16]


def step_counts(selection: Selection) -> dict:
    counts: dict = {"trajectories_in_run": selection.trajectories_in_run,
                    "dropped": {reason: n for reason, n in selection.dropped.items()},
                    "first_error": {k: selection.first_error[k] for k in
                                    ("with_error", "truncated", "steps_cut", "steps_negated", "kept_whole")}}
    for split in SPLITS:
        examples = [e for e in selection.examples if e.split == split]
        labels = [v for e in examples for v in e.labels]
        counts[split] = {
            "problems": len({e.problem_id for e in examples}),
            "trajectories": len(examples),
            "steps": len(labels),
            "positive": sum(1 for v in labels if v == 1.0),
            "negative": sum(1 for v in labels if v == 0.0),
            "soft": sum(1 for v in labels if v not in (0.0, 1.0)),
            "mean_label": sum(labels) / len(labels) if labels else None,
        }
    return counts


def _step_rows(config: ExportConfig, examples: list[Example], tokenizer=None):
    module = STEP_FORMATS[config.format]
    if config.format in BOOLEAN_FORMATS:
        n, value = non_binary(examples)
        if n:
            raise ExportError(f"--format {config.format} takes 0/1 step labels only ({SOFT_REFUSAL[config.format]}), "
                              f"but {n} steps have other {config.label} labels (e.g. {value!r}); use --format prmflow, "
                              f"which carries floats")
    columns = module.columns(config, examples)
    rows = {s: [module.row(e, config) for e in examples if e.split == s] for s in SPLITS}
    extra: dict = {}
    if config.format == "openrlhf":
        token = None
        if tokenizer is not None:
            token = check_openrlhf(tokenizer, config, [r for s in SPLITS for r in rows[s]])
        extra["openrlhf"] = {"version": OPENRLHF_VERSION, "placeholder_token": token or config.marker,
                             "reward_tokens": list(openrlhf.REWARD_TOKENS), "tokenizer_checked": token is not None}
        return columns, rows, openrlhf.how_to_train(config, token), extra
    return columns, rows, module.how_to_train(config), extra


CARD_MARKER = "prmflow_export"
"""In every export's README.md (card.py's front matter): ``--overwrite`` replaces only a directory
whose README.md has it (prmflow.safeio)."""


def export(run_dir: str, out: str, config: ExportConfig) -> ExportResult:
    # never the run itself, a directory holding it, or a directory prmflow did not write (safeio.py)
    out_path = check_out_dir(out, option="--out", overwrite=config.overwrite, marker="README.md",
                             marker_text=CARD_MARKER, protected=[(run_dir, "the run directory")])
    tokenizer = load_tokenizer(config.tokenizer) if config.tokenizer is not None else None
    out_path.parent.mkdir(parents=True, exist_ok=True)
    con = connect(run_dir)  # refuses a run without _SUCCESS
    digest = config_digest(run_dir)
    run = run_config(run_dir)
    extra: dict = {}
    if config.format == "verl":
        columns = verl.columns(config)
        rows, counts = verl.build(con, config, run)
        if not any(rows.values()):
            raise ExportError(f"no problem is left to export ({counts['problems_in_run']} in the run; dropped: "
                              f"{counts['dropped'] or 'none'}); verl needs problems with a reference answer")
        extra["verl"] = {"version": verl.VERL_VERSION,
                         "custom_reward_function": {"path": verl.REWARD_PATH, "name": verl.REWARD_NAME}}
    else:
        selection = select_trajectories(con, config)
        if not selection.examples:
            why = ", ".join(f"{r}={n}" for r, n in selection.dropped.items()) or "the run has no steps"
            raise ExportError(f"no trajectory is left to export ({selection.trajectories_in_run} in the run; "
                              f"dropped: {why}); check --label {config.label} and the filters")
        columns, rows, how, extra = _step_rows(config, selection.examples, tokenizer)
        counts = step_counts(selection)
    schema = arrow_schema(columns)
    files = {split: f"{split}.{config.file_format}" for split in SPLITS if rows[split]}
    if config.format == "verl":
        how = verl.how_to_train(config, files)
    staging = out_path.parent / f".{out_path.name}.export-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        for split, name in files.items():
            WRITERS[config.file_format](rows[split], schema, staging / name)
        (staging / "README.md").write_text(
            render_card(config=config, run_config=run, digest=digest, columns=columns, counts=counts, files=files,
                        how_to_train=how, extra=extra),
            encoding="utf-8")
        replace_dir(staging, out_path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    warnings = () if config.license else (
        "no --license: the card states none (the hub shows 'unknown'); give the license of the problems' source "
        "and the policy's outputs, e.g. --license apache-2.0",)
    return ExportResult(out=str(out_path), files=files, counts=counts, warnings=warnings)


def summary(result: ExportResult) -> str:
    """One line per split for the terminal."""
    c = result.counts
    lines = []
    for split in SPLITS:
        s = c[split]
        if split not in result.files:
            lines.append(f"  {split:<10} empty, not written")
        elif "trajectories" in s:
            lines.append(f"  {split:<10} {s['problems']} problems, {s['trajectories']} trajectories, {s['steps']} steps "
                         f"({s['positive']} positive, {s['negative']} negative, {s['soft']} soft)")
        else:
            lines.append(f"  {split:<10} {s['rows']} rows ({s['problems']} problems, {s['start_states']} start states)")
    dropped = Counter(c["dropped"])
    if dropped:
        lines.append("  dropped    " + ", ".join(f"{r}={n}" for r, n in sorted(dropped.items())))
    return f"wrote {result.out} (README.md, " + ", ".join(result.files.values()) + ")\n" + "\n".join(lines)
