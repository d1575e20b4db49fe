"""verl's RL data layout, as its preprocessing scripts write it (volcengine/verl
``examples/data_preprocess/gsm8k.py``): one row per prompt with ``data_source``, ``prompt`` (chat messages),
``ability``, ``reward_model {style, ground_truth}`` and ``extra_info``.

Two kinds of rows, both needing ground truth (a problem without ``reference_answer`` is dropped,
``no_ground_truth``):

- each problem, as is;
- each R3 start state (Xi et al. 2024, "Training Large Language Models for Reasoning through Reverse
  Curriculum Reinforcement Learning"; ``start_states`` rows of method ``reverse-curriculum`` that keep
  at least one step): the problem followed by the demonstration prefix, with its ``stage`` (0 = nearest
  the end, the easiest) and the ``success_rate`` the run measured from it, so a trainer can schedule
  the curriculum from late stages to early ones. verl renders ``prompt`` with the chat template and
  generation prompt, so the prefix is in the user message after the problem (a blank line between),
  and ``extra_info`` keeps ``question`` and ``prefix`` apart for a trainer that builds its own prompt.
"""

from __future__ import annotations

from collections import Counter

import duckdb
import pyarrow as pa

from prmflow.export.config import ExportConfig
from prmflow.export.formats.base import Column
from prmflow.export.select import SPLITS, check_filters, split_of

PREFIX_JOINER = "\n\n"

EXTRA_INFO = pa.struct([
    ("split", pa.string()),
    ("index", pa.int64()),
    ("kind", pa.string()),
    ("problem_id", pa.string()),
    ("question", pa.string()),
    ("start_state_id", pa.string()),
    ("prefix", pa.string()),
    ("k", pa.int32()),
    ("stage", pa.int32()),
    ("success_rate", pa.float64()),
])

COLUMNS = [
    Column("data_source", pa.string(), "the input's name in the run (source); verl picks its reward function by it"),
    Column("prompt", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())])),
           "chat messages: one user message, the problem (and for a start state, a blank line and the prefix)"),
    Column("ability", pa.string(), "the problem's domain: math | arith | code | general"),
    Column("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())]),
           "style rule, ground_truth = the problem's reference answer"),
    Column("extra_info", EXTRA_INFO,
           "split, index (row in its file), kind (problem | start_state), problem_id, question (the problem "
           "text), and for a start state: start_state_id, prefix, k (steps kept), stage (0 = nearest the end), "
           "success_rate (measured by the run's rollouts)"),
]


def columns(config: ExportConfig) -> list[Column]:
    return COLUMNS


def build(con: duckdb.DuckDBPyConnection, config: ExportConfig) -> tuple[dict[str, list[dict]], dict]:
    """The rows of each split, and the counts for the dataset card."""
    check_filters(con, config, table="problems")
    problems = con.execute(
        "SELECT problem_id, source, domain, prompt, reference_answer FROM problems ORDER BY problem_id").fetchall()
    states = con.execute(
        "SELECT s.start_state_id, s.problem_id, s.prefix, s.k, s.stage, s.success_rate "
        "FROM start_states s WHERE s.method = 'reverse-curriculum' AND s.k > 0 AND s.prefix <> '' "
        "ORDER BY s.problem_id, s.stage, s.start_state_id").fetchall()
    by_problem: dict[str, list[tuple]] = {}
    for state in states:
        by_problem.setdefault(state[1], []).append(state)
    rows: dict[str, list[dict]] = {split: [] for split in SPLITS}
    dropped: Counter = Counter()
    kinds: dict[str, Counter] = {split: Counter() for split in SPLITS}
    stages: dict[str, Counter] = {split: Counter() for split in SPLITS}
    for problem_id, source, domain, prompt, reference in problems:
        if config.sources and source not in config.sources:
            dropped["source_filtered"] += 1
            continue
        if reference is None or not reference.strip():
            dropped["no_ground_truth"] += 1
            continue
        split = split_of(problem_id, config.seed, config.val_fraction)
        common = {"data_source": source, "ability": domain,
                  "reward_model": {"style": "rule", "ground_truth": reference}}
        base = {"split": split, "kind": "problem", "problem_id": problem_id, "question": prompt,
                "start_state_id": None, "prefix": None, "k": None, "stage": None, "success_rate": None}
        out = rows[split]
        out.append({**common, "prompt": [{"role": "user", "content": prompt}],
                    "extra_info": {**base, "index": len(out)}})
        kinds[split]["problem"] += 1
        for state_id, _, prefix, k, stage, rate in by_problem.get(problem_id, ()):
            out.append({**common, "prompt": [{"role": "user", "content": prompt + PREFIX_JOINER + prefix}],
                        "extra_info": {**base, "index": len(out), "kind": "start_state", "start_state_id": state_id,
                                       "prefix": prefix, "k": k, "stage": stage, "success_rate": rate}})
            kinds[split]["start_state"] += 1
            stages[split][stage] += 1
    counts = {
        "problems_in_run": len(problems),
        "dropped": {reason: n for reason, n in sorted(dropped.items())},
        **{split: {"rows": len(rows[split]), "problems": kinds[split]["problem"],
                   "start_states": kinds[split]["start_state"],
                   "start_states_by_stage": {int(s): n for s, n in sorted(stages[split].items())}}
           for split in SPLITS},
    }
    return rows, counts


def how_to_train(config: ExportConfig) -> str:
    return (
        "```bash\n"
        f"python -m verl.trainer.main_ppo data.train_files=train.{config.file_format} "
        f"data.val_files=validation.{config.file_format} ...\n"
        "```\n"
        "For a reverse curriculum, order or sample start-state rows by `extra_info.stage` (0 first) and "
        "`extra_info.success_rate`.\n"
    )
