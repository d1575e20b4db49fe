"""The dataset card: README.md with YAML front matter (what the hub reads, and what tests parse) and the
same facts for a reader: the run and its config digest, how its labels were made (policy, sampling,
rollouts per step, method, thresholds, from the run's manifest), the options, counts, label balance,
drops and the meaning of every column.

Fit for the hub: ``license`` (only when ``--license`` gives one: the labels inherit the problems' and the
policy's terms, which prmflow cannot know), ``task_categories``, ``language``, ``size_categories``,
``pretty_name``, and ``configs`` listing the non-empty splits only. No absolute path is written: the run
is named by its config name and digest, a model given as a local path by its last component.
"""

from __future__ import annotations

import os

import yaml

from prmflow.export.config import ExportConfig
from prmflow.export.formats.base import Column
from prmflow.export.select import DROP_REASONS

DROP_DOCS = {
    "source_filtered": "outside --sources",
    "method_filtered": "labeled by a method outside --methods",
    "not_consensus": "judge and Monte-Carlo first errors disagree or are not both known (--consensus-only, --label consensus)",
    "unlabeled_step": "a step to export has no value in the chosen label column (the whole trajectory goes: its steps are "
                      "each other's context)",
    "below_min_weight": "a step's consistency weight is below --min-weight or null",
    "placeholder_in_text": "the placeholder's text occurs in the prompt or a step (it would add an unlabeled position)",
    "step_prefix_in_text": "the problem text holds 'Step 1:', where TRL's Math-Shepherd converter would cut it",
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

AFTER_FIRST_ERROR_DOCS = {
    "truncate": "each trajectory ends at its first wrong step (label 0), the PRM800K / TRL convention; later steps "
                "are left out",
    "negative": "the steps after a trajectory's first wrong step are labeled 0",
    "drop": "trajectories are exported past their first wrong step with their own labels; one with an unlabeled "
            "step there is dropped",
}

TASK_CATEGORIES = {"verl": ["reinforcement-learning", "text-generation"]}
"""The hub's task categories of a format; step formats train a step classifier."""

SIZES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
         (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M")]


def size_category(rows: int) -> str:
    """The hub's ``size_categories`` bucket of a row count."""
    return next((name for limit, name in SIZES if rows < limit), "n>1T" if rows >= 10 ** 12 else "100M<n<1B")


def _portable(value):
    """A manifest value with any absolute path reduced to its last component."""
    if isinstance(value, str) and os.path.isabs(value):
        return os.path.basename(value.rstrip("/")) or value
    if isinstance(value, dict):
        return {k: _portable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_portable(v) for v in value]
    return value


def _section(run_config: dict, name: str) -> dict:
    """A run-config section, whether the manifest keeps it at the top or under ``extra``."""
    value = run_config.get(name)
    if value is None:
        value = (run_config.get("extra") or {}).get(name)
    return value or {}


def generation(run_config: dict) -> dict:
    """How the run made its labels: policy, sampling, rollouts per step, method, thresholds."""
    sampler, sampling, process = (_section(run_config, n) for n in ("sampler", "sampling", "process"))
    judge, consistency = _section(run_config, "judge"), _section(run_config, "consistency")
    out: dict = {
        "policy": ({"backend": sampler.get("backend"), "model": sampler.get("model")} if sampler else None),
        "sampling": ({k: sampling[k] for k in ("n", "temperature", "top_p", "max_tokens", "template") if k in sampling}
                     if sampler else None),
        "process": ({k: process[k] for k in ("method", "rollouts", "threshold", "temperature", "top_p", "max_tokens",
                                             "after_error", "stages") if k in process} if process else None),
        "rollouts_per_step": process.get("rollouts") if process else None,
        "outcome": {k: v for k, v in _section(run_config, "outcome").items()
                    if k in ("labeler", "options") and v is not None},
        "segment": _section(run_config, "segment").get("strategy"),
        "judge": ({"model": (judge.get("sampler") or {}).get("model"), "votes": judge.get("votes")} if judge else None),
        "consistency": ({k: consistency[k] for k in ("mode", "score", "threshold") if k in consistency}
                        if consistency else None),
        "inputs": [{"name": i.get("name"), "format": i.get("format")} for i in run_config.get("inputs", [])],
        "seed": run_config.get("seed"),
    }
    return _portable({k: v for k, v in out.items() if v is not None})


def render(*, config: ExportConfig, run_config: dict, digest: str, columns: list[Column], counts: dict,
           files: dict[str, str], how_to_train: str, extra: dict | None = None) -> str:
    run_name = run_config.get("name") or "prmflow-run"
    rows = sum(c.get("rows", c.get("trajectories", 0)) for s, c in counts.items() if isinstance(c, dict) and s in files)
    settings = generation(run_config)
    meta: dict = {
        **({"license": config.license} if config.license else {}),
        "pretty_name": f"{run_name} ({config.format} export{'' if config.label is None else f', {config.label} labels'})",
        "language": list(config.language),
        "task_categories": TASK_CATEGORIES.get(config.format, ["token-classification"]),
        "size_categories": [size_category(rows)],
        "tags": ["prm", "process-reward-model", "prmflow"],
        "configs": [{"config_name": "default",
                     "data_files": [{"split": split, "path": path} for split, path in files.items()]}],
        "prmflow_export": {
            "format": config.format,
            "label": config.label,
            "run": run_name,
            "config_digest": digest,
            "file_format": config.file_format,
            "filters": {"min_weight": config.min_weight, "consensus_only": config.consensus_only,
                        "sources": list(config.sources), "methods": list(config.methods)},
            "split": {"by": "problem_id", "val_fraction": config.val_fraction, "seed": config.seed},
            **({"after_first_error": config.after_first_error} if config.format != "verl" else {}),
            **({"placeholder": config.placeholder} if config.format in ("openrlhf", "math-shepherd") else {}),
            **(extra or {}),
            "generation": settings,
            "counts": counts,
        },
    }
    lines = ["---", yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).rstrip(), "---", ""]
    lines += [f"# {meta['pretty_name']}", ""]
    lines += [f"Exported by `prmflow export` from the prmflow run `{run_name}` (config digest `{digest}`), format "
              f"`{config.format}`, {config.file_format} files: "
              + (", ".join(f"`{p}` ({s})" for s, p in files.items()) or "none") + ".", ""]
    if not config.license:
        lines += ["License: not stated (export with `--license ID`); the labels follow the terms of the problems' "
                  "source and of the policy model's outputs.", ""]
    if config.format != "verl":
        lines += [f"Labels: `--label {config.label}` = {LABEL_DOCS[config.label]}.", "",
                  f"After the first error (`--after-first-error {config.after_first_error}`): "
                  f"{AFTER_FIRST_ERROR_DOCS[config.after_first_error]}.", ""]
    lines += ["## How the labels were made", ""]
    lines += [f"- {key.replace('_', ' ')}: {_inline(value)}" for key, value in settings.items()]
    lines += ["", "## Filters", ""]
    if config.format != "verl":  # verl exports no step labels, so only --sources applies to it
        lines += [f"- min weight: {config.min_weight if config.min_weight is not None else 'none'}",
                  f"- consensus only: {'yes' if config.consensus_only or config.label == 'consensus' else 'no'}",
                  f"- methods: {', '.join(config.methods) or 'all'}"]
    lines += [f"- sources: {', '.join(config.sources) or 'all'}",
              f"- split: problems hashed with seed {config.seed}; {config.val_fraction:g} of them in validation, "
              f"no problem in both; an empty split is not written", ""]
    lines += ["## Counts", ""]
    lines += _count_lines(config, counts)
    lines += ["## Columns", "", "| column | type | meaning |", "|---|---|---|"]
    lines += [f"| `{c.name}` | {c.type} | {c.doc.replace('|', '/')} |" for c in columns]
    lines += ["", "## Training with it", "", how_to_train.rstrip(), ""]
    return "\n".join(lines)


def _inline(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_inline(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "; ".join(_inline(v) for v in value)
    return f"`{value}`"


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
        out += ["", "Label balance over steps: positive = label 1, negative = label 0, soft = strictly between.", ""]
        fe = counts["first_error"]
        out.append(f"First error (`{config.after_first_error}`): {fe['with_error']} exported trajectories hold a wrong "
                   f"step; {fe['truncated']} were cut after it ({fe['steps_cut']} steps left out); "
                   f"{fe['steps_negated']} later steps were set to 0; {fe['kept_whole']} were kept whole past it.")
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
