"""Each export format against SQL over the run: labels, placeholders, split, dataset card counts."""

from __future__ import annotations

import pytest
from conftest import PLACEHOLDER_STEP
from helpers import all_rows, card, do_export, labels_by_trajectory, rows, sql, truncated

from prmflow.export import ExportConfig, ExportError
from prmflow.export.formats.tagged import tagged_input
from prmflow.export.select import split_of

MARKER = "ки"

# --label -> the same label written by hand in SQL (not prmflow's LABEL_SQL), and which trajectories it keeps
EXPECTED_LABELS = {
    "hard": ("hard_label", "true"),
    "soft": ("soft_label", "true"),
    "relative": ("relative_label", "true"),
    "judge": ("CASE WHEN judge_score > 0.5 THEN 1 WHEN judge_score <= 0.5 THEN 0 END", "true"),
    "consensus": ("hard_label", "consensus"),
}


@pytest.mark.parametrize("label", sorted(EXPECTED_LABELS))
def test_native_labels_equal_sql(mc_run, tmp_path, label):
    out = do_export(mc_run, tmp_path / "x", format="prmflow", label=label, val_fraction=0.3)
    expr, where = EXPECTED_LABELS[label]
    expected = {t: truncated(v) for t, v in labels_by_trajectory(mc_run, expr, where).items()}
    got = {r["trajectory_id"]: r["labels"] for r in all_rows(out)}
    assert got == expected and got
    weights = dict(sql(mc_run, "SELECT trajectory_id, list(weight ORDER BY step_index) FROM steps GROUP BY 1"))
    assert all(r["weights"] == weights[r["trajectory_id"]][: len(r["labels"])] for r in all_rows(out))
    assert {r["label_kind"] for r in all_rows(out)} == {label}


def test_consensus_label_keeps_only_agreeing_trajectories(mc_run, tmp_path):
    out = do_export(mc_run, tmp_path / "x", format="prmflow", label="consensus")
    disagree = sql(mc_run, "SELECT count(*) FROM trajectories WHERE consensus IS NOT TRUE")[0][0]
    assert disagree > 0  # the fake judge errs (judge_error 0.1), so the filter has something to drop
    assert card(out)["counts"]["dropped"] == {"not_consensus": disagree}


def test_trl_labels_are_the_hard_labels_as_bools(mc_run, tmp_path):
    out = do_export(mc_run, tmp_path / "x", format="trl")
    expected = labels_by_trajectory(mc_run, "hard_label")
    steps = dict(sql(mc_run, "SELECT trajectory_id, list(step_text ORDER BY step_index) FROM steps GROUP BY 1"))
    prompts = dict(sql(mc_run, "SELECT trajectory_id, prompt FROM trajectories JOIN problems USING (problem_id)"))
    got = all_rows(out)
    assert len(got) == len(expected)
    for r in got:
        labels = truncated(expected[r["trajectory_id"]])
        assert r["labels"] == [v == 1.0 for v in labels]
        assert all(isinstance(v, bool) for v in r["labels"])
        assert r["completions"] == steps[r["trajectory_id"]][: len(labels)]
        assert r["prompt"] == prompts[r["trajectory_id"]]


@pytest.mark.parametrize("fmt", ["openrlhf", "math-shepherd"])
def test_exactly_one_placeholder_per_step_and_steps_recoverable(mc_run, tmp_path, fmt):
    out = do_export(mc_run, tmp_path / "x", format=fmt)
    steps = dict(sql(mc_run, "SELECT trajectory_id, list(step_text ORDER BY step_index) FROM steps GROUP BY 1"))
    hard = labels_by_trajectory(mc_run, "hard_label")
    for r in all_rows(out):
        labels = truncated(hard[r["trajectory_id"]])
        expected = steps[r["trajectory_id"]][: len(labels)]
        if fmt == "math-shepherd":  # the released layout: "Step k: " before each step
            expected = [s if s.startswith(f"Step {k}:") else f"Step {k}: {s}" for k, s in enumerate(expected, 1)]
        assert r["input"].count(MARKER) == len(expected)
        # the text between placeholders is exactly the run's steps, in order
        body = r["input"].split("\n", 1)[1]
        assert body.endswith(" " + MARKER)
        assert body[: -len(" " + MARKER)].split(f" {MARKER}\n") == expected
        signs = ["+" if v == 1.0 else "-" for v in labels]
        if fmt == "openrlhf":
            assert r["label"] == signs
        else:  # Math-Shepherd: the input with each tag's ки replaced by its sign
            assert r["label"].count(MARKER) == 0 and r["task"] == "add"
            assert r["label"] == r["input"].replace(f" {MARKER}", " {}").format(*signs)


def test_openrlhf_refuses_soft_labels_saying_why():
    with pytest.raises(ExportError, match=r"--format openrlhf takes boolean step labels only \(OpenRLHF 0.9.5's "
                                          r"ProcessRewardDataset puts labels into a Long tensor"):
        ExportConfig(format="openrlhf", label="soft")


@pytest.mark.parametrize("fmt", ["openrlhf", "math-shepherd"])
def test_step_holding_the_placeholder_is_dropped_never_misaligned(imported_run, tmp_path, fmt):
    out = do_export(imported_run, tmp_path / "x", format=fmt, label="gold", sources=("hand",), val_fraction=0.0)
    got = rows(out, "train")
    assert all(PLACEHOLDER_STEP not in r["input"] for r in got)
    gold = labels_by_trajectory(imported_run, "gold_label")
    for r in got:
        assert r["input"].count(MARKER) == len(truncated(gold[r["trajectory_id"]]))
        if fmt == "openrlhf":
            assert len(r["label"]) == len(truncated(gold[r["trajectory_id"]]))
    held = sql(imported_run, f"SELECT count(DISTINCT trajectory_id) FROM steps WHERE step_text LIKE '%{MARKER}%'")[0][0]
    assert held == 1
    c = card(out)["counts"]
    assert c["dropped"] == {"source_filtered": 1, "placeholder_in_text": 1}
    assert c["train"]["trajectories"] == len(got) == sql(imported_run, "SELECT count(*) FROM trajectories")[0][0] - 2
    # another placeholder: the same trajectory then fits, with one tag per step
    other = do_export(imported_run, tmp_path / "y", format=fmt, label="gold", sources=("hand",), val_fraction=0.0,
                      placeholder=" <step>")
    kept = [r for r in rows(other, "train") if PLACEHOLDER_STEP in r["input"]]  # its gold is 1, 1, 1: not cut
    assert len(kept) == 1 and kept[0]["input"].count("<step>") == 3


def test_tagged_input_refuses_a_text_holding_the_placeholder():
    assert tagged_input("Q", ("a", "b"), " ки") == "Q\na ки\nb ки"
    with pytest.raises(ExportError, match="occurs 3 times for 2 steps"):
        tagged_input("Q", ("a ки", "b"), " ки")
    with pytest.raises(ExportError, match="occurs 3 times for 2 steps"):
        tagged_input("Q ки?", ("a", "b"), " ки")


def test_math_shepherd_signs_in_order_on_a_hand_made_run(imported_run, tmp_path):
    out = do_export(imported_run, tmp_path / "x", format="math-shepherd", label="gold", sources=("hand",),
                    val_fraction=0.0)
    row = next(r for r in rows(out, "train") if "+ - signs" in r["input"])
    assert row["input"] == (f"What is 10 / 2?\nStep 1: 10 / 2 = 5 {MARKER}\nStep 2: + - signs: 5 - 0 = 5 {MARKER}\n"
                            f"Step 3: The answer is 5. {MARKER}")
    assert row["label"] == "What is 10 / 2?\nStep 1: 10 / 2 = 5 +\nStep 2: + - signs: 5 - 0 = 5 +\nStep 3: The answer is 5. -"


def test_boolean_formats_refuse_non_boolean_labels(imported_run, tmp_path):
    with pytest.raises(ExportError, match="soft label would silently become 0"):
        ExportConfig(format="trl", label="soft")
    with pytest.raises(ExportError, match=r"1 steps have other gold labels \(e.g. 0.5\)"):
        do_export(imported_run, tmp_path / "x", format="trl", label="gold")
    with pytest.raises(ExportError, match=r"--format openrlhf takes 0/1 step labels only \(OpenRLHF 0.9.5's"):
        do_export(imported_run, tmp_path / "y", format="openrlhf", label="gold", placeholder=" <step>")
    out = do_export(imported_run, tmp_path / "z", format="prmflow", label="gold")
    neutral = [r for r in all_rows(out) if "so 10 it is" in r["steps"]]
    assert neutral[0]["labels"] == [1.0, 0.5, 1.0]  # the native format carries the neutral step


def test_split_is_by_problem_and_seeded(mc_run, tmp_path):
    a = do_export(mc_run, tmp_path / "a", format="trl", val_fraction=0.3, seed=1)
    train = {r["problem_id"] for r in rows(a, "train")}
    val = {r["problem_id"] for r in rows(a, "validation")}
    assert train and val and not train & val
    assert train | val == {p for (p,) in sql(mc_run, "SELECT DISTINCT problem_id FROM steps")}
    assert all(split_of(p, 1, 0.3) == "validation" for p in val)
    b = do_export(mc_run, tmp_path / "b", format="trl", val_fraction=0.3, seed=2)
    assert {r["problem_id"] for r in rows(b, "validation")} != val
    none = do_export(mc_run, tmp_path / "c", format="trl", val_fraction=0.0)
    assert rows(none, "validation") == [] and len(rows(none, "train")) == len(all_rows(a))


def test_card_counts_equal_sql(mc_run, tmp_path):
    out = do_export(mc_run, tmp_path / "x", format="trl", min_weight=1.0, val_fraction=0.3)
    c = card(out)
    assert c["config_digest"] == sql(mc_run, "SELECT DISTINCT json_extract_string(provenance, '$.config') FROM steps")[0][0]
    assert c["format"] == "trl" and c["label"] == "hard" and c["filters"]["min_weight"] == 1.0
    counts = c["counts"]
    # the first-error convention and the weight filter, by hand over SQL: labels up to the first 0, and
    # those steps' weights all >= 1
    per = sql(mc_run, "SELECT trajectory_id, problem_id, list(hard_label ORDER BY step_index), "
                      "list(weight ORDER BY step_index) FROM steps GROUP BY 1, 2")
    kept = [(p, truncated(list(h))) for _, p, h, w in per if all(x is not None and x >= 1 for x in w[: len(truncated(list(h)))])]
    in_run, below = len(per), len(per) - len(kept)
    assert counts["trajectories_in_run"] == in_run
    assert counts["dropped"] == ({"below_min_weight": below} if below else {})
    assert below > 0  # hard consistency weights put some steps at 0
    labels = [v for _, h in kept for v in h]
    steps, positive, negative = len(labels), labels.count(1.0), labels.count(0.0)
    problems = len({p for p, _ in kept})
    total = {k: counts["train"][k] + counts["validation"][k] for k in ("trajectories", "steps", "positive", "negative")}
    assert total == {"trajectories": len(kept), "steps": steps, "positive": positive, "negative": negative}
    assert counts["first_error"]["with_error"] == sum(1 for _, h in kept if 0.0 in h)
    assert counts["train"]["problems"] + counts["validation"]["problems"] == problems
    for split in ("train", "validation"):  # and each split's counts are its own file's
        r = rows(out, split)
        assert counts[split]["trajectories"] == len(r)
        assert counts[split]["steps"] == sum(len(x["labels"]) for x in r)
        assert counts[split]["positive"] == sum(sum(x["labels"]) for x in r)
    body = (out / "README.md").read_text(encoding="utf-8")
    assert f"| train | {counts['train']['problems']} | {counts['train']['trajectories']} | {counts['train']['steps']} |" in body
    assert "`below_min_weight`" in body and "| `completions` |" in body


def test_jsonl_holds_the_same_rows_as_parquet(mc_run, tmp_path):
    for fmt in ("trl", "openrlhf", "math-shepherd", "prmflow"):
        p = do_export(mc_run, tmp_path / f"{fmt}-p", format=fmt, val_fraction=0.3)
        j = do_export(mc_run, tmp_path / f"{fmt}-j", format=fmt, val_fraction=0.3, file_format="jsonl")
        assert sorted((j / "train.jsonl").read_text(encoding="utf-8").splitlines()) != []
        for split in ("train", "validation"):
            assert rows(p, split) == rows(j, split)


def test_filters_sources_and_methods(imported_run, mc_run, tmp_path):
    out = do_export(imported_run, tmp_path / "x", format="prmflow", label="gold", sources=("neutral",))
    assert {r["source"] for r in all_rows(out)} == {"neutral"}
    assert card(out)["counts"]["dropped"] == {"source_filtered": 30}
    with pytest.raises(ExportError, match="--sources names 'nope', which the run does not hold; it holds: hand, neutral"):
        do_export(imported_run, tmp_path / "y", format="prmflow", label="gold", sources=("nope",))
    with pytest.raises(ExportError, match="--methods names 'binary-search'"):
        do_export(mc_run, tmp_path / "z", format="prmflow", methods=("binary-search",))
    kept = do_export(mc_run, tmp_path / "w", format="prmflow", methods=("mc",))
    assert {r["method"] for r in all_rows(kept)} == {"mc"}


def test_a_label_the_run_lacks_exports_nothing_and_says_why(imported_run, tmp_path):
    with pytest.raises(ExportError, match=r"no trajectory is left to export \(31 in the run; dropped: unlabeled_step=31\)"):
        do_export(imported_run, tmp_path / "x", format="trl", label="judge")
    assert not (tmp_path / "x").exists()


def test_verl_problems_and_start_states(curriculum_run, tmp_path):
    out = do_export(curriculum_run, tmp_path / "x", format="verl", val_fraction=0.3)
    got = all_rows(out)
    problems = {p: (q, a, s) for p, q, a, s in sql(curriculum_run,
                "SELECT problem_id, prompt, reference_answer, source FROM problems WHERE reference_answer IS NOT NULL")}
    states = {i: (p, prefix, stage, rate, k) for i, p, prefix, stage, rate, k in sql(curriculum_run, """
        SELECT start_state_id, problem_id, prefix, stage, success_rate, k FROM start_states
        WHERE method = 'reverse-curriculum' AND k > 0""") if p in problems}
    assert states and len(got) == len(problems) + len(states)
    for r in got:
        info = r["extra_info"]
        question, answer, source = problems[info["problem_id"]]
        assert r["reward_model"] == {"style": "rule", "ground_truth": answer} and r["data_source"] == source
        assert r["ability"] == "general" and info["question"] == question
        assert info["outcome_labeler"] == "exact" and info["outcome_options"] == "null"
        if info["kind"] == "problem":
            assert r["prompt"] == [{"role": "user", "content": question}] and not info["continue_final_message"]
        else:  # the prefix is the start of the assistant's answer, to continue
            p, prefix, stage, rate, k = states[info["start_state_id"]]
            assert (info["prefix"], info["stage"], info["success_rate"], info["k"]) == (prefix, stage, rate, k)
            assert r["prompt"] == [{"role": "user", "content": question}, {"role": "assistant", "content": prefix}]
            assert info["continue_final_message"]
    for split in ("train", "validation"):
        assert [r["extra_info"]["index"] for r in rows(out, split)] == list(range(len(rows(out, split))))
        assert all(r["extra_info"]["split"] == split for r in rows(out, split))
    c = card(out)["counts"]
    assert c["dropped"] == {"no_ground_truth": 1} and c["problems_in_run"] == len(problems) + 1
    assert c["train"]["start_states"] + c["validation"]["start_states"] == len(states)
    assert c["train"]["problems"] + c["validation"]["problems"] == len(problems)
    assert card(out)["label"] is None
    train_ids = {r["extra_info"]["problem_id"] for r in rows(out, "train")}
    assert not train_ids & {r["extra_info"]["problem_id"] for r in rows(out, "validation")}


# labels of one trajectory, mode -> (labels exported, drop reason); 0 is wrong, None unlabeled
FIRST_ERROR_CASES = [
    ([1, 1, 1], "truncate", [1, 1, 1], None),
    ([1, 0, 1, 1], "truncate", [1, 0], None),           # Monte-Carlo labels after the error are cut
    ([1, 0, None, None], "truncate", [1, 0], None),     # gold / binary search: nothing after the error
    ([1, 0, None], "negative", [1, 0, 0], None),
    ([1, 0, 1], "negative", [1, 0, 0], None),
    ([1, 0, 1], "drop", [1, 0, 1], None),               # kept whole with its own labels
    ([1, 0, None], "drop", [1, 0, None], "unlabeled_step"),
    ([1, None, 0], "truncate", [1, None, 0], "unlabeled_step"),  # unlabeled before the error: never cut from the middle
    ([None], "negative", [None], "unlabeled_step"),
    ([0.5, 0.25, 0.0, 1.0], "truncate", [0.5, 0.25, 0.0], None),  # soft: the first 0 is the first error
    ([0, 1], "truncate", [0], None),
]


@pytest.mark.parametrize("labels, mode, kept, reason", FIRST_ERROR_CASES)
def test_first_error_cut(labels, mode, kept, reason):
    from prmflow.export.select import first_error_cut

    first, got, why = first_error_cut([None if v is None else float(v) for v in labels], mode)
    assert why == reason
    if reason is None:
        assert got == kept


@pytest.mark.parametrize("mode", ["truncate", "negative", "drop"])
def test_after_first_error_on_monte_carlo_labels(mc_run, tmp_path, mode):
    out = do_export(mc_run, tmp_path / "x", format="prmflow", label="hard", after_first_error=mode, val_fraction=0.0)
    full = labels_by_trajectory(mc_run, "hard_label")
    expected = {"truncate": truncated,
                "negative": lambda h: truncated(h) + [0.0] * (len(h) - len(truncated(h))),
                "drop": list}[mode]
    got = {r["trajectory_id"]: r["labels"] for r in rows(out, "train")}
    assert got == {t: expected(h) for t, h in full.items()}
    fe = card(out)["counts"]["first_error"]
    later = [h[len(truncated(h)):] for h in full.values()]
    assert fe["with_error"] == sum(1 for h in full.values() if 0.0 in h)
    assert fe["truncated"] == (sum(1 for x in later if x) if mode == "truncate" else 0)
    assert fe["steps_cut"] == (sum(map(len, later)) if mode == "truncate" else 0)
    assert fe["steps_negated"] == (sum(1 for x in later for v in x if v != 0.0) if mode == "negative" else 0)
    assert fe["kept_whole"] == (sum(1 for x in later if x) if mode == "drop" else 0)
    assert f"After the first error (`--after-first-error {mode}`)" in (out / "README.md").read_text()
