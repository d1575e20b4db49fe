"""verl's RL data layout, as its preprocessing scripts write it (volcengine/verl
``examples/data_preprocess/gsm8k.py``): one row per prompt with ``data_source``, ``prompt`` (chat messages),
``ability``, ``reward_model {style, ground_truth}`` and ``extra_info``.

Two kinds of rows, both needing ground truth (a problem without ``reference_answer`` is dropped,
``no_ground_truth``):

- each problem, as is;
- each R3 start state (Xi et al. 2024, "Training Large Language Models for Reasoning through Reverse
  Curriculum Reinforcement Learning"; ``start_states`` rows of method ``reverse-curriculum`` that keep
  at least one step): the problem, then the demonstration prefix as the *start of the assistant's
  answer*, with its ``stage`` (0 = nearest the end, the easiest) and the ``success_rate`` the run
  measured from it, so a trainer can schedule the curriculum from late stages to early ones.

The start-state convention: ``prompt`` is ``[user: problem, assistant: prefix]`` and
``extra_info.continue_final_message`` is true. Render it with the chat template's continuation,
``tokenizer.apply_chat_template(prompt, continue_final_message=True, add_generation_prompt=False)``: the
text ends inside the assistant turn, right after the prefix, so the policy continues the solution
instead of reading the prefix as context (R3 samples from the state, not after it). The response
is then the rest of the solution only; the shipped reward functions (:mod:`prmflow.rewards`) judge
``extra_info.prefix`` + the response. ``extra_info`` also keeps ``question`` and ``prefix`` apart for a
trainer that builds its own prompt.

Rewards: verl picks a reward function by ``data_source`` and has none for a prmflow source, so the card's
command names prmflow's (``reward.custom_reward_function.path=pkg://prmflow.rewards.outcome``), which
judges with the run's own outcome labeler (``extra_info.outcome_labeler`` and its options); for code
problems ``ground_truth`` is the problem's tests, as the code labeler reads them.
"""

from __future__ import annotations

import json
from collections import Counter

import duckdb
import pyarrow as pa

from prmflow.export.config import ExportConfig
from prmflow.export.formats.base import Column
from prmflow.export.select import SPLITS, check_filters, split_of

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
    ("continue_final_message", pa.bool_()),
    ("outcome_labeler", pa.string()),
    ("outcome_options", pa.string()),
    ("segment", pa.string()),
])

REWARD_LABELERS = ("math", "numeric", "exact", "code")
"""prmflow's outcome labelers the shipped reward function runs (the judge needs a model: not a rule)."""

DOMAIN_LABELER = {"math": "math", "arith": "math", "code": "code", "general": "exact"}
"""For a run judged by a model: the rule labeler of the problem's domain."""

COLUMNS = [
    Column("data_source", pa.string(), "the input's name in the run (source); verl picks its reward function by it"),
    Column("prompt", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())])),
           "chat messages: the problem as a user message; a start state adds its prefix as an assistant message "
           "to continue (extra_info.continue_final_message)"),
    Column("ability", pa.string(), "the problem's domain: math | arith | code | general"),
    Column("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())]),
           "style rule, ground_truth = the problem's reference answer (its tests for the code labeler)"),
    Column("extra_info", EXTRA_INFO,
           "split, index (row in its file), kind (problem | start_state), problem_id, question (the problem "
           "text), and for a start state: start_state_id, prefix, k (steps kept), stage (0 = nearest the end), "
           "success_rate (measured by the run's rollouts), continue_final_message (true); for the reward "
           "functions: outcome_labeler and outcome_options (JSON), segment (the run's segmenter, JSON)"),
]


def columns(config: ExportConfig) -> list[Column]:
    return COLUMNS


def reward_settings(run_config: dict) -> tuple[str, dict | None, dict]:
    """(the labeler the reward function runs, its options, the segmenter) from the run's config."""
    outcome = run_config.get("outcome") or {}
    name = outcome.get("labeler", "math")
    options = outcome.get("options") if name in REWARD_LABELERS else None
    segment = {k: v for k, v in (run_config.get("segment") or {}).items() if k != "model"}
    return name, options, segment


def build(con: duckdb.DuckDBPyConnection, config: ExportConfig,
          run_config: dict | None = None) -> tuple[dict[str, list[dict]], dict]:
    """The rows of each split, and the counts for the dataset card."""
    check_filters(con, config, table="problems")
    run_labeler, options, segment = reward_settings(run_config or {})
    problems = con.execute(
        "SELECT problem_id, source, domain, prompt, reference_answer, tests FROM problems "
        "ORDER BY problem_id").fetchall()
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
    for problem_id, source, domain, prompt, reference, tests in problems:
        if config.sources and source not in config.sources:
            dropped["source_filtered"] += 1
            continue
        labeler = run_labeler if run_labeler in REWARD_LABELERS else DOMAIN_LABELER.get(domain, "exact")
        truth = tests if labeler == "code" else reference
        if truth is None or not truth.strip():
            dropped["no_ground_truth"] += 1
            continue
        split = split_of(problem_id, config.seed, config.val_fraction)
        common = {"data_source": source, "ability": domain,
                  "reward_model": {"style": "rule", "ground_truth": truth}}
        base = {"split": split, "kind": "problem", "problem_id": problem_id, "question": prompt,
                "start_state_id": None, "prefix": None, "k": None, "stage": None, "success_rate": None,
                "continue_final_message": False, "outcome_labeler": labeler,
                "outcome_options": json.dumps(options if labeler == run_labeler else None, sort_keys=True),
                "segment": json.dumps(segment, sort_keys=True)}
        out = rows[split]
        out.append({**common, "prompt": [{"role": "user", "content": prompt}],
                    "extra_info": {**base, "index": len(out)}})
        kinds[split]["problem"] += 1
        for state_id, _, prefix, k, stage, rate in by_problem.get(problem_id, ()):
            out.append({**common, "prompt": [{"role": "user", "content": prompt},
                                             {"role": "assistant", "content": prefix}],
                        "extra_info": {**base, "index": len(out), "kind": "start_state", "start_state_id": state_id,
                                       "prefix": prefix, "k": k, "stage": stage, "success_rate": rate,
                                       "continue_final_message": True}})
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


VERL_VERSION = "0.9.1"
"""The verl release the format is tested with (its RLHFDataset and custom reward loading, tests/export)."""

REWARD_PATH = "pkg://prmflow.rewards.outcome"
REWARD_NAME = "compute_score"


def how_to_train(config: ExportConfig, files: dict[str, str]) -> str:
    data = " ".join(f"data.{'train' if s == 'train' else 'val'}_files={f}" for s, f in files.items())
    return (
        "```bash\n"
        f"pip install verl=={VERL_VERSION} prmflow   # the reward function is prmflow's: it must import in the workers\n"
        f"python -m verl.trainer.main_ppo {data} \\\n"
        f"  reward.custom_reward_function.path={REWARD_PATH} \\\n"
        f"  reward.custom_reward_function.name={REWARD_NAME} ...\n"
        "```\n"
        "The reward is 1 for a right final answer and 0 otherwise, judged by the run's own outcome labeler "
        "(`extra_info.outcome_labeler`: math, numeric, exact or code). To reward each step with a prmflow PRM "
        "instead (or mixed with it), use `reward.custom_reward_function.path=pkg://prmflow.rewards.prm` with "
        "`reward.custom_reward_function.name=compute_score` and "
        "`+reward.custom_reward_function.reward_kwargs.prm=PRM_DIR` (see prmflow's docs/exports.md).\n\n"
        "Start states (`extra_info.kind = start_state`) end with an assistant message holding the prefix: "
        "render them with `apply_chat_template(prompt, continue_final_message=True, add_generation_prompt=False)` "
        "so that the policy continues the prefix. For a reverse curriculum, order or sample them by "
        "`extra_info.stage` (0 first) and `extra_info.success_rate`.\n"
    )
