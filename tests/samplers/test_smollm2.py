"""A real pretrained chat model end to end: SmolLM2-135M-Instruct (converted by `make test` setup,
see tests/fixtures/smollm2.py) as a policy on GSM8K and as a judge, through the in-process vLLM
engine and through a real OpenAI server, with its own chat template.

It is far too weak to solve GSM8K or to judge well; these tests check what the tiny random model
cannot: prompts are rendered by a real chat template (the token ids equal the tokenizer's own
rendering, on both doors), generation ends at the model's end-of-turn token, and a `prmflow run`
with it as policy or judge completes and reconciles, its verdicts parsed or counted unparsed."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

from prmflow.judge import load_template, parse_vote, render_judge_prompt
from prmflow.pipelines.label import run
from prmflow.samplers import OpenAISampler, SamplerConfig, SamplingRequest
from tests.fixtures.smollm2 import smollm2_section

pytestmark = pytest.mark.engine

QUESTIONS = 3


def gsm8k(shared_data: Path, n: int = QUESTIONS + 1) -> list[dict[str, str]]:
    with open(shared_data / "gsm8k" / "test.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for _, line in zip(range(n), f, strict=False)]


def chat_ids(tokenizer: Any, prompt: str) -> list[int]:
    """The tokenizer's own rendering of ``prompt`` as a user turn (one call, not prmflow's encode)."""
    encoded = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True, return_dict=True
    )
    return list(encoded["input_ids"])


def check_policy_results(results: list[Any], prompts: list[str], tokenizer: Any, *, n: int) -> None:
    """Shared by both doors: every prompt answered with ``n`` non-empty completions, counted in the
    template's tokens, and at least one completion ended by the model's end-of-turn token."""
    assert [r.error for r in results] == [None] * len(prompts)
    for result, prompt in zip(results, prompts, strict=True):
        assert result.prompt_tokens == len(chat_ids(tokenizer, prompt))
        assert len(result.completions) == n
        for c in result.completions:
            assert c.text.strip(), result
            assert c.finish_reason in ("stop", "length")
            # special tokens are not text: neither the end of turn nor a new turn leaks into it
            assert "<|im_end|>" not in c.text and "<|im_start|>" not in c.text
    reasons = [c.finish_reason for r in results for c in r.completions]
    assert "stop" in reasons, reasons


# -- as a policy: the in-process engine --------------------------------------------------------


def test_policy_through_the_vllm_engine(smollm2_vllm: Any, smollm2_tokenizer: Any, shared_data: Path) -> None:
    questions = [row["question"] for row in gsm8k(shared_data)[:QUESTIONS]]
    engine = smollm2_vllm.sampler
    for q in questions:
        ids = engine.encode(q)
        assert ids == chat_ids(smollm2_tokenizer, q)
        rendered = smollm2_tokenizer.decode(ids)
        assert rendered.startswith("<|im_start|>system\n") and f"<|im_start|>user\n{q}<|im_end|>" in rendered
        assert rendered.endswith("<|im_start|>assistant\n")

    requests = [SamplingRequest(f"q{i}", q, n=2, temperature=0.7, max_tokens=160, seed=i) for i, q in enumerate(questions)]
    results = smollm2_vllm.generate(requests)
    check_policy_results(results, questions, smollm2_tokenizer, n=2)
    eos = smollm2_tokenizer.eos_token_id
    for c in (c for r in results for c in r.completions):
        assert 1 <= len(c.token_ids) <= 160
        # "stop" here can only be the end-of-turn token (no stop strings were asked for); vLLM
        # keeps it in the ids and out of the text
        assert (c.finish_reason == "stop") == (c.token_ids[-1] == eos), c
        assert eos not in c.token_ids[:-1]


# -- as a policy: the OpenAI server ------------------------------------------------------------


def test_policy_through_the_openai_server(
    smollm2_server: str, smollm2_dir: Path, smollm2_vllm: Any, smollm2_tokenizer: Any, shared_data: Path
) -> None:
    rows = gsm8k(shared_data)
    config = SamplerConfig(backend="openai", model=str(smollm2_dir), base_url=smollm2_server, chat_template=True)
    with OpenAISampler(config) as server:
        # A question neither engine has seen (no prefix-cache hit on either side), greedy, alone in
        # its batch: the server's chat rendering and ours give the same tokens, so the same text.
        fresh = SamplingRequest("fresh", rows[QUESTIONS]["question"], temperature=0.0, max_tokens=32)
        via_server = server.generate([fresh])[0]
        in_process = smollm2_vllm.generate([fresh])[0]
        assert via_server.error is None and in_process.error is None
        assert via_server.prompt_tokens == in_process.prompt_tokens
        assert via_server.completions[0].text == in_process.completions[0].text

        questions = [row["question"] for row in rows[:QUESTIONS]]
        requests = [
            SamplingRequest(f"q{i}", q, n=2, temperature=0.7, max_tokens=160, seed=i) for i, q in enumerate(questions)
        ]
        results = server.generate(requests)
    check_policy_results(results, questions, smollm2_tokenizer, n=2)
    assert all(c.cumulative_logprob is not None and c.cumulative_logprob < 0 for r in results for c in r.completions)


# -- as a judge, outside the pipeline ----------------------------------------------------------


def judge_prompts(shared_data: Path) -> list[tuple[str, int]]:
    """First-error judge prompts over the GSM8K reference solutions (one paragraph per line), with
    their paragraph counts."""
    template = load_template("first-error")
    out = []
    for row in gsm8k(shared_data)[:QUESTIONS]:
        steps = [line for line in row["answer"].split("\n") if line.strip()]
        problem = SimpleNamespace(prompt=row["question"], problem_id="p", reference_answer=None, rubric=None)
        trajectory = SimpleNamespace(steps=tuple(steps), trajectory_id="t", text=row["answer"], response=None)
        out.append((render_judge_prompt(template, problem, trajectory), len(steps)))
    return out


@pytest.mark.parametrize("door", ["engine", "server"])
def test_judge_verdicts_are_parsed_or_counted_unparsed(
    door: str, request: pytest.FixtureRequest, smollm2_dir: Path, smollm2_tokenizer: Any, shared_data: Path
) -> None:
    template = load_template("first-error")
    prompts = judge_prompts(shared_data)
    requests = [
        SamplingRequest(f"j{i}", prompt, n=2, temperature=0.7, max_tokens=128, seed=i)
        for i, (prompt, _) in enumerate(prompts)
    ]
    if door == "engine":
        results = request.getfixturevalue("smollm2_vllm").generate(requests)
    else:
        config = SamplerConfig(
            backend="openai", model=str(smollm2_dir), base_url=request.getfixturevalue("smollm2_server"),
            chat_template=True,
        )
        with OpenAISampler(config) as server:
            results = server.generate(requests)
    assert [r.error for r in results] == [None] * len(prompts)
    parsed = unparsed = 0
    for result, (prompt, n_steps) in zip(results, prompts, strict=True):
        assert result.prompt_tokens == len(chat_ids(smollm2_tokenizer, prompt))
        for c in result.completions:
            vote = parse_vote(template, c.text, n_steps)
            if vote.parsed:
                parsed += 1
                assert vote.first_error is not None and -1 <= vote.first_error < n_steps
            else:
                unparsed += 1
                assert vote.first_error is None and vote.reason
    assert parsed + unparsed == 2 * len(prompts)


# -- `prmflow run` with SmolLM2 ------------------------------------------------------------------


def write_config(tmp_path: Path, shared_data: Path, **sections: Any) -> Path:
    cfg = {
        "name": "smollm2",
        "seed": 0,
        "inputs": [{
            "name": "gsm8k", "format": "gsm8k", "path": str(shared_data / "gsm8k" / "test.jsonl"),
            "limit": QUESTIONS, "import_solutions": "judge" in sections,
        }],
        "outcome": {"labeler": "math"},
        **sections,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def table(out: Path, name: str) -> list[dict[str, Any]]:
    return pq.read_table(out / name).to_pylist()


def test_run_with_smollm2_as_policy(tmp_path: Path, smollm2_dir: Path, smollm2_tokenizer: Any, shared_data: Path) -> None:
    cfg = write_config(
        tmp_path, shared_data,
        sampler=smollm2_section(smollm2_dir),
        sampling={"n": 2, "temperature": 0.7, "max_tokens": 96, "template": "plain", "batch_size": 8},
    )
    out = tmp_path / "out"
    manifest = run([str(cfg), "--output", str(out)])

    assert manifest["reconciliation"]["ok"], manifest["reconciliation"]
    counts = manifest["counts"]
    assert counts["sample_requests"] == {"gsm8k": QUESTIONS}
    assert counts["engine"]["requests"] == QUESTIONS and counts["engine"]["failures"] == 0
    problems = {p["problem_id"]: p for p in table(out, "problems")}
    trajectories = table(out, "trajectories")
    assert len(problems) == QUESTIONS
    assert len(trajectories) + counts.get("dead_by_stage", {}).get("segment", 0) == 2 * QUESTIONS
    # each request's prompt is the question as the user turn of SmolLM2's chat template
    expected = {pid: len(chat_ids(smollm2_tokenizer, p["prompt"])) for pid, p in problems.items()}
    assert counts["engine"]["prompt_tokens"] == sum(expected.values())
    for t in trajectories:
        assert t["origin"] == "sampled" and t["text"].strip() and t["steps"]
        assert t["prompt_tokens"] == expected[t["problem_id"]]
        assert t["finish_reason"] in ("stop", "length") and 1 <= t["generated_tokens"] <= 96
        assert t["outcome_status"] is not None
    steps = table(out, "steps")
    assert len(steps) == sum(len(t["steps"]) for t in trajectories)


@pytest.mark.parametrize("door", ["engine", "server"])
def test_run_with_smollm2_as_judge(
    door: str, request: pytest.FixtureRequest, tmp_path: Path, smollm2_dir: Path, smollm2_tokenizer: Any,
    shared_data: Path,
) -> None:
    """The judge over GSM8K's reference solutions, K = 2 votes each, with SmolLM2's chat template."""
    sampler = smollm2_section(smollm2_dir)
    if door == "server":
        sampler = {"backend": "openai", "model": str(smollm2_dir), "chat_template": True,
                   "base_url": request.getfixturevalue("smollm2_server")}
    cfg = write_config(
        tmp_path, shared_data,
        judge={"sampler": sampler, "template": "first-error", "votes": 2, "temperature": 0.7, "max_tokens": 128},
    )
    out = tmp_path / "out"
    manifest = run([str(cfg), "--output", str(out)])

    assert manifest["reconciliation"]["ok"], manifest["reconciliation"]
    counts = manifest["counts"]
    assert counts["judge_in"] == {"gsm8k": QUESTIONS} and counts["judged"] == {"gsm8k": QUESTIONS}
    engine = counts["engine"]
    assert engine["judge_requests"] == QUESTIONS and engine["judge_failures"] == 0
    assert engine["judge_samples"] == 2 * QUESTIONS
    problems = {p["problem_id"]: SimpleNamespace(**p) for p in table(out, "problems")}
    trajectories = table(out, "trajectories")
    assert len(trajectories) == QUESTIONS
    # every judge prompt was the first-error template over the trajectory's steps, as a user turn
    template = load_template("first-error")
    assert engine["judge_prompt_tokens"] == sum(
        len(chat_ids(smollm2_tokenizer, render_judge_prompt(template, problems[t["problem_id"]], SimpleNamespace(**t))))
        for t in trajectories
    )
    for t in trajectories:
        assert t["judge_votes"] == 2 and 0 <= t["judge_unparsed"] <= 2
        if t["judge_unparsed"] == 2:  # no parsed vote, no verdict
            assert t["judge_first_error"] is None and t["judge_agreement"] is None
        else:
            assert t["judge_first_error"] is not None and -1 <= t["judge_first_error"] < len(t["steps"])
            assert t["judge_agreement"] in (0.5, 1.0)  # agreeing parsed votes out of K = 2
            assert t["judge_outcome"] == (1.0 if t["judge_first_error"] == -1 else 0.0)
            assert len(t["judge_step_scores"]) == len(t["steps"])
    assert manifest["beam_counters"].get("judge_votes_unparsed", 0) == sum(t["judge_unparsed"] for t in trajectories)
