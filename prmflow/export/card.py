"""The dataset card: README.md with YAML front matter (what the hub reads, and what tests parse) and the
same facts for a reader: the run and its config digest, the options, counts, label balance, drops and
the meaning of every column."""

from __future__ import annotations

import yaml

from prmflow.export.config import ExportConfig
from prmflow.export.formats.base import Column
from prmflow.export.select import DROP_REASONS

DROP_DOCS = {
    "source_filtered": "outside --sources",
    "method_filtered": "labeled by a method outside --methods",
    "not_consensus": "judge and Monte-Carlo first errors disagree or are not both known (--consensus-only, --label consensus)",
    "unlabeled_step": "a step has no value in the chosen label column (the whole trajectory goes: its steps are each other's context)",
    "below_min_weight": "a step's consistency weight is below --min-weight or null",
    "placeholder_in_text": "the placeholder's text occurs in the prompt or a step (it would add an unlabeled position)",
    "no_ground_truth": "the problem has no reference answer (verl needs ground truth)",
}

LABEL_DOCS = {
    "hard": "hard_label: 1 if the step's Monte-Carlo value > the run's threshold, else 0 (Math-Shepherd HE)",
    "soft": "soft_label: the step's Monte-Carlo value, successes / rollouts (Math-Shepherd SE)",
    "relative": "relative_label: from consecutive Monte-Carlo values (GenPRM / StepWiser style)",
    "judge": "1 if judge_score > 0.5 (a strict majority of parsed judge votes put the step before the first error), "
             "else 0; a tie is 0",
    "consensus": "hard_label, of trajectories whose judge and Monte-Carlo first errors agree only "
                 "(Zhang et al. 2025, Lessons §3.1.3)",
    "gold": "gold_label: imported or checker truth (1 right, 0 wrong, 0.5 neutral)",
}


def render(*, config: ExportConfig, run_dir: str, digest: str, columns: list[Column], counts: dict,
           files: dict[str, str], how_to_train: str) -> str:
    meta = {
        "tags": ["prm", "process-reward-model", "prmflow"],
        "configs": [{"config_name": "default",
                     "data_files": [{"split": split, "path": path} for split, path in files.items()]}],
        "prmflow_export": {
            "format": config.format,
            "label": config.label,
            "run": run_dir,
            "config_digest": digest,
            "file_format": config.file_format,
            "filters": {"min_weight": config.min_weight, "consensus_only": config.consensus_only,
                        "sources": list(config.sources), "methods": list(config.methods)},
            "split": {"by": "problem_id", "val_fraction": config.val_fraction, "seed": config.seed},
            **({"placeholder": config.placeholder} if config.format in ("openrlhf", "math-shepherd") else {}),
            "counts": counts,
        },
    }
    lines = ["---", yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).rstrip(), "---", ""]
    lines += [f"# {config.format} export of a prmflow run", ""]
    lines += [f"Exported by `prmflow export` from `{run_dir}` (config digest `{digest}`), format `{config.format}`, "
              f"{config.file_format} files: " + ", ".join(f"`{p}` ({s})" for s, p in files.items()) + ".", ""]
    if config.format != "verl":
        lines += [f"Labels: `--label {config.label}` = {LABEL_DOCS[config.label]}.", ""]
    lines += ["## Filters", ""]
    if config.format != "verl":  # verl exports no step labels, so only --sources applies to it
        lines += [f"- min weight: {config.min_weight if config.min_weight is not None else 'none'}",
                  f"- consensus only: {'yes' if config.consensus_only or config.label == 'consensus' else 'no'}",
                  f"- methods: {', '.join(config.methods) or 'all'}"]
    lines += [f"- sources: {', '.join(config.sources) or 'all'}",
              f"- split: problems hashed with seed {config.seed}; {config.val_fraction:g} of them in validation, "
              f"no problem in both", ""]
    lines += ["## Counts", ""]
    lines += _count_lines(config, counts)
    lines += ["## Columns", "", "| column | type | meaning |", "|---|---|---|"]
    lines += [f"| `{c.name}` | {c.type} | {c.doc.replace('|', '/')} |" for c in columns]
    lines += ["", "## Training with it", "", how_to_train.rstrip(), ""]
    return "\n".join(lines)


def _count_lines(config: ExportConfig, counts: dict) -> list[str]:
    out = []
    if config.format == "verl":
        out += [f"{counts['problems_in_run']} problems in the run.", "",
                "| split | rows | problems | start states |", "|---|---|---|---|"]
        out += [f"| {s} | {counts[s]['rows']} | {counts[s]['problems']} | {counts[s]['start_states']} |"
                for s in ("train", "validation")]
    else:
        out += [f"{counts['trajectories_in_run']} trajectories in the run.", "",
                "| split | problems | trajectories | steps | positive | negative | soft | mean label |",
                "|---|---|---|---|---|---|---|---|"]
        for s in ("train", "validation"):
            c = counts[s]
            mean = "" if c["mean_label"] is None else f"{c['mean_label']:.3f}"
            out.append(f"| {s} | {c['problems']} | {c['trajectories']} | {c['steps']} | {c['positive']} | "
                       f"{c['negative']} | {c['soft']} | {mean} |")
        out += ["", "Label balance over steps: positive = label 1, negative = label 0, soft = strictly between."]
    out.append("")
    dropped = counts["dropped"]
    if dropped:
        out += ["Dropped (whole trajectories, or problems for verl; the first reason that applies):", ""]
        order = [r for r in DROP_REASONS if r in dropped] + [r for r in dropped if r not in DROP_REASONS]
        out += [f"- `{r}`: {dropped[r]} ({DROP_DOCS.get(r, r)})" for r in order]
    else:
        out.append("Nothing dropped.")
    out.append("")
    return out
