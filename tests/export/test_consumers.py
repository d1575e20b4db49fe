"""Real exports through their consumers' own code: ProcessBench gsm8k's gold labels under the first-error
convention, TRL's Math-Shepherd converter on every row, `datasets.load_dataset(dir)` on every format
(tiny runs and --val-fraction 0 included), and verl 0.9.1's RLHFDataset and custom reward loading calling
the shipped reward function."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from consumers import trl_math_shepherd, verl_dir
from datasets import load_dataset
from helpers import card, do_export, rows, sql, truncated

from prmflow.pipelines.label import run

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def processbench_run(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.chdir(REPO)  # the example's paths are relative to the repository root
    try:
        out = tmp_path_factory.mktemp("pb") / "out"
        run([str(REPO / "examples" / "processbench-gsm8k.yaml"), "--output", str(out)])
    finally:
        mp.undo()
    return out


def test_gold_keeps_every_erroneous_trajectory_up_to_its_first_error(processbench_run, tmp_path, shared_data):
    raw = json.loads((shared_data / "processbench" / "gsm8k.json").read_text())
    erroneous = [r for r in raw if r["label"] >= 0]
    out = do_export(processbench_run, tmp_path / "x", format="trl", label="gold", val_fraction=0.0)
    got = {r["prompt"] + "\x00" + r["completions"][0]: r for r in rows(out, "train")}
    kept = 0
    for r in erroneous:  # each cut right after its expert-marked first wrong step
        row = got.get(r["problem"] + "\x00" + r["steps"][0])
        if row is not None and row["completions"] == r["steps"][: r["label"] + 1]:
            assert row["labels"] == [True] * r["label"] + [False]
            kept += 1
    assert kept >= 200 and len(erroneous) == 207
    counts = card(out)["counts"]
    assert counts["first_error"]["with_error"] == kept
    assert counts["first_error"]["truncated"] == sum(1 for r in erroneous if r["label"] < len(r["steps"]) - 1)
    assert counts["train"]["negative"] == kept
    # the other conventions: negative keeps the later steps as 0, drop loses the unlabeled ones
    neg = card(do_export(processbench_run, tmp_path / "n", format="trl", label="gold", val_fraction=0.0,
                         after_first_error="negative"))["counts"]
    assert neg["train"]["steps"] == counts["train"]["steps"] + counts["first_error"]["steps_cut"]
    assert neg["first_error"]["steps_negated"] == counts["first_error"]["steps_cut"]
    drop = card(do_export(processbench_run, tmp_path / "d", format="trl", label="gold", val_fraction=0.0,
                          after_first_error="drop"))["counts"]
    assert drop["dropped"]["unlabeled_step"] == counts["first_error"]["truncated"]


def test_trl_math_shepherd_converter_reads_every_processbench_row(processbench_run, tmp_path):
    process_example = trl_math_shepherd().process_example
    out = do_export(processbench_run, tmp_path / "x", format="math-shepherd", label="gold", val_fraction=0.0)
    exported = {r["trajectory_id"]: r for r in rows(out, "train")}
    steps = dict(sql(processbench_run, "SELECT trajectory_id, list(step_text ORDER BY step_index) FROM steps GROUP BY 1"))
    gold = dict(sql(processbench_run, "SELECT trajectory_id, list(gold_label ORDER BY step_index) FROM steps GROUP BY 1"))
    prompts = dict(sql(processbench_run, "SELECT trajectory_id, prompt FROM trajectories JOIN problems USING (problem_id)"))
    dropped = card(out)["counts"]["dropped"]
    assert len(exported) == 400 - sum(dropped.values()) and set(dropped) <= {"step_prefix_in_text"}
    assert sum(dropped.values()) <= 1  # a first step that holds its own "Step 1:" (counted in the card)
    for tid, r in exported.items():
        converted = process_example({"input": r["input"], "label": r["label"], "task": r["task"]})  # TRL's own
        n = len(converted["labels"])
        assert converted["prompt"] == prompts[tid].strip()
        assert [c.split(": ", 1)[1] for c in converted["completions"]] == [s.strip() for s in steps[tid][:n]]
        assert converted["labels"] == [v == 1.0 for v in truncated(gold[tid])] and n == len(truncated(gold[tid]))


@pytest.mark.parametrize("fmt", ["trl", "openrlhf", "math-shepherd", "prmflow", "verl"])
@pytest.mark.parametrize("val_fraction", [0.0, 0.3])
def test_load_dataset_reads_every_format(mc_run, curriculum_run, tmp_path, fmt, val_fraction):
    source = curriculum_run if fmt == "verl" else mc_run
    out = do_export(source, tmp_path / "x", format=fmt, val_fraction=val_fraction, placeholder=" @",
                    **({} if fmt == "verl" else {"label": "hard"}))
    loaded = load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    files = {c["split"]: c["path"] for c in yaml_configs(out)}
    assert set(loaded) == set(files) == {s for s in ("train", "validation") if rows(out, s)}
    assert sorted(p.name for p in out.iterdir()) == sorted(["README.md", *files.values()])
    for split, ds in loaded.items():
        assert len(ds) == len(rows(out, split)) > 0
    if val_fraction == 0.0:
        assert set(loaded) == {"train"}  # no empty validation file, none listed


def test_load_dataset_on_a_tiny_run_with_an_empty_split(imported_run, tmp_path):
    # 0.05 of one source's 2 problems: validation is empty here, and neither written nor listed
    out = do_export(imported_run, tmp_path / "x", format="prmflow", label="gold", sources=("neutral",))
    assert [c["split"] for c in yaml_configs(out)] == ["train"]
    assert len(load_dataset(str(out), cache_dir=str(tmp_path / "cache"))["train"]) == 1


def yaml_configs(out: Path) -> list[dict]:
    import yaml

    meta = yaml.safe_load((out / "README.md").read_text(encoding="utf-8").split("---\n")[1])
    return meta["configs"][0]["data_files"]


def test_card_is_fit_for_the_hub(mc_run, tmp_path, capsys):
    import yaml

    from prmflow.cli import main

    assert main(["export", str(mc_run), "--format", "trl", "--out", str(tmp_path / "x")]) == 0
    assert "warning: no --license" in capsys.readouterr().err
    text = (tmp_path / "x" / "README.md").read_text(encoding="utf-8")
    meta = yaml.safe_load(text.split("---\n")[1])
    assert "license" not in meta
    assert meta["task_categories"] == ["token-classification"] and meta["language"] == ["en"]
    assert meta["size_categories"] == ["n<1K"] and meta["pretty_name"] == "export-mc (trl export, hard labels)"
    gen = meta["prmflow_export"]["generation"]
    assert gen["policy"] == {"backend": "fake", "model": "fake"}
    assert gen["sampling"]["n"] == 3 and gen["rollouts_per_step"] == 6 and gen["process"]["method"] == "mc"
    assert gen["consistency"]["threshold"] == 0.0 and gen["outcome"]["labeler"] == "exact"
    assert str(mc_run) not in text and str(mc_run.parent) not in text and "/tmp" not in text
    assert main(["export", str(mc_run), "--format", "trl", "--out", str(tmp_path / "y"), "--license", "apache-2.0"]) == 0
    assert yaml.safe_load((tmp_path / "y" / "README.md").read_text().split("---\n")[1])["license"] == "apache-2.0"


VERL_CHECK = """
import json, sys
from omegaconf import OmegaConf
from transformers import AutoTokenizer
import verl
from verl.trainer.ppo.reward import get_custom_reward_fn
from verl.utils.dataset.rl_dataset import RLHFDataset

train, tokenizer_dir, cache, path, name = sys.argv[1:6]
tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
config = OmegaConf.create({"max_prompt_length": 1024, "filter_overlong_prompts": True, "cache_dir": cache,
                           "filter_overlong_prompts_workers": 1})
dataset = RLHFDataset(train, tokenizer, config)
items = []
for i in range(len(dataset)):
    raw = [dict(m) for m in dataset[i]["raw_prompt"]]
    cont = tokenizer.apply_chat_template(raw, continue_final_message=True, add_generation_prompt=False,
                                         tokenize=False) if raw[-1]["role"] == "assistant" else None
    items.append({"raw_prompt": raw, "continued": cont})
cfg = OmegaConf.create({"reward": {"custom_reward_function": {"path": path, "name": name, "reward_kwargs": {}}}})
fn = get_custom_reward_fn(cfg)
calls = json.loads(sys.stdin.read())
print(json.dumps({"version": verl.__version__, "items": items, "scores": [fn(**c) for c in calls]}))
"""


def test_verl_rlhf_dataset_and_custom_reward_loading(curriculum_run, tmp_path, smollm2_dir):
    """In a subprocess: verl pins omegaconf 2.3, whose antlr4 4.9.3 would break math-verify's in this one."""
    import subprocess
    import sys

    where = verl_dir()
    out = do_export(curriculum_run, tmp_path / "x", format="verl", val_fraction=0.0)
    exported = rows(out, "train")
    meta = card(out)["verl"]["custom_reward_function"]
    assert meta == {"path": "pkg://prmflow.rewards.outcome", "name": "compute_score"}
    text = (out / "README.md").read_text()
    assert f"reward.custom_reward_function.path={meta['path']}" in text
    assert f"reward.custom_reward_function.name={meta['name']}" in text
    problem = next(r for r in exported if r["extra_info"]["kind"] == "problem")
    state = next(r for r in exported if r["extra_info"]["kind"] == "start_state")

    def call(row, solution):
        return {"data_source": row["data_source"], "solution_str": solution,
                "ground_truth": row["reward_model"]["ground_truth"], "extra_info": row["extra_info"]}

    truth = problem["reward_model"]["ground_truth"]
    calls = [call(problem, f"Step 1: ...\nThe answer is {truth}."), call(problem, "The answer is 123456789."),
             # a continuation is judged after its prefix, as the run judged rollouts from that state
             call(state, f"The answer is {state['reward_model']['ground_truth']}.")]
    env = {**__import__("os").environ, "PYTHONPATH": f"{where}{__import__('os').pathsep}{REPO}"}
    done = subprocess.run([sys.executable, "-c", VERL_CHECK, str(out / "train.parquet"), str(smollm2_dir),
                           str(tmp_path / "verl-cache"), meta["path"], meta["name"]],
                          input=json.dumps(calls), capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["version"] == "0.9.1"
    assert [i["raw_prompt"] for i in result["items"]] == [r["prompt"] for r in exported]
    for item, row in zip(result["items"], exported, strict=True):
        if row["extra_info"]["kind"] == "start_state":  # the convention: the chat template's continuation
            assert item["continued"].endswith(row["extra_info"]["prefix"])
    assert result["scores"] == [1.0, 0.0, 1.0]


def test_trl_tokenizes_the_processbench_gold_export_with_0_misaligned_steps(processbench_run, tmp_path, smollm2_dir):
    """TRL 1.13.0's own PRMTrainer.tokenize_row on every row, with two tokenizers (byte-level BPE of arith-tiny,
    SmolLM2's): one label per step, on the step separator's last token, in order."""
    import os

    from transformers import AutoTokenizer

    from prmflow.models import resolve_model_path

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from trl.experimental.prm import PRMTrainer

    out = do_export(processbench_run, tmp_path / "x", format="trl", label="gold", val_fraction=0.0)
    exported = rows(out, "train")
    for path in (resolve_model_path("builtin:arith-tiny"), smollm2_dir):
        tokenizer = AutoTokenizer.from_pretrained(path)
        separator = tokenizer.encode("\n", add_special_tokens=False)[-1]
        misaligned = 0
        for row in exported:
            enc = PRMTrainer.tokenize_row(row, tokenizer, "\n", max_length=None, max_completion_length=None,
                                          train_on_last_step_only=False, is_eval=False)
            at = [i for i, v in enumerate(enc["labels"]) if v != -100]
            misaligned += not (len(at) == len(row["completions"])
                               and [enc["labels"][i] for i in at] == [int(v) for v in row["labels"]]
                               and all(enc["input_ids"][i] == separator for i in at))
        assert misaligned == 0 and len(exported) >= 390, path


def test_verl_code_rows_carry_the_tests_and_the_reward_runs_them(tmp_path, shared_data):
    """A code run: ground_truth is the problem's tests (what the code labeler reads), and the shipped
    reward runs them in prmflow's sandbox: the canonical solution 1, a broken one 0."""
    import yaml

    from prmflow.rewards.outcome import compute_score

    config = {"name": "he", "inputs": [{"name": "humaneval", "format": "humaneval", "limit": 2,
                                        "path": str(shared_data / "humaneval" / "HumanEval.jsonl.gz")}],
              "segment": {"strategy": "given"}, "outcome": {"labeler": "code", "options": {"timeout_s": 20}}}
    (tmp_path / "he.yaml").write_text(yaml.safe_dump(config))
    run([str(tmp_path / "he.yaml"), "--output", str(tmp_path / "run")])
    out = do_export(tmp_path / "run", tmp_path / "x", format="verl", val_fraction=0.0)
    tests = dict(sql(tmp_path / "run", "SELECT problem_id, tests FROM problems"))
    solutions = dict(sql(tmp_path / "run", "SELECT problem_id, any_value(text) FROM trajectories GROUP BY 1"))
    got = rows(out, "train")
    assert len(got) == 2
    for r in got:
        info = r["extra_info"]
        assert r["reward_model"]["ground_truth"] == tests[info["problem_id"]] and r["ability"] == "code"
        assert info["outcome_labeler"] == "code" and json.loads(info["outcome_options"]) == {"timeout_s": 20}
        truth = r["reward_model"]["ground_truth"]
        assert compute_score(r["data_source"], solutions[info["problem_id"]], truth, info) == 1.0
        assert compute_score(r["data_source"], "def nothing():\n    pass\n", truth, info) == 0.0


def test_openrlhf_places_every_processbench_gold_label(processbench_run, tmp_path, smollm2_dir):
    """OpenRLHF 0.9.5's ProcessRewardDataset on the real ProcessBench gsm8k gold export, SmolLM2's tokenizer,
    the placeholder the --tokenizer check chose (" §", leading space included): every label on its position."""
    from test_openrlhf import check_in_openrlhf

    out = do_export(processbench_run, tmp_path / "x", format="openrlhf", label="gold", val_fraction=0.0,
                    placeholder=" §", tokenizer=str(smollm2_dir))
    assert card(out)["openrlhf"]["placeholder_token"] == " §"
    assert len(rows(out, "train")) >= 390
    check_in_openrlhf(out, smollm2_dir)
