"""`prmflow eval-prm`: the oracle on ProcessBench gsm8k (gold labels as a PRM: F1 1.0), each adapter on a
tiny checkpoint of its shape built here (scores equal to the model card's own recipe, alone or padded in
a batch), best-of-N on a candidate file, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prmflow.cli import main
from prmflow.prm.eval import Row, bon_metrics, processbench_metrics

REPO = Path(__file__).resolve().parents[2]
PROCESSBENCH = REPO.parent / "shared" / "data" / "processbench"
ROWS = [
    Row("Tom has 3 apples and buys 4 more. How many?", ("3 + 4 = 7", "The answer is 7"), -1),
    Row("Ann has 10 pens and loses 2. How many now?", ("10 - 2 = 9", "9 is left", "The answer is 9"), 0),
    Row("A box has 6 eggs. How many in 2 boxes?", ("6 * 2 = 12", "12 + 0 = 12", "The answer is 12"), 2),
]


def run(capsys, argv):
    code = main(["eval-prm", *argv])
    return code, capsys.readouterr()


@pytest.mark.skipif(not (PROCESSBENCH / "gsm8k.json").is_file(), reason="needs ../shared/data/processbench")
def test_gold_labels_as_a_prm_reproduce_f1_one_on_processbench_gsm8k(tmp_path, capsys):
    out = tmp_path / "r.json"
    code, cap = run(capsys, ["--prm", "gold", "--adapter", "gold", "--processbench", "gsm8k",
                             "--processbench-dir", str(PROCESSBENCH), "--out", str(out)])
    assert code == 0, cap.err
    m = json.loads(out.read_text())["processbench"]["gsm8k"]
    assert m["rows"] == 400 and m["unscored"] == 0 and 0 < m["erroneous"] < 400
    assert m["f1"] == 1.0 and m["acc_erroneous"] == 1.0 and m["acc_correct"] == 1.0 and m["step_auc"] == 1.0
    assert "ProcessBench gsm8k: F1 1.000" in cap.out


def test_the_metric_can_fail():
    """The same code on wrong scores: one step late, everything-correct, everything-wrong."""
    from prmflow.prm.eval import gold_scores

    late = [[1.0] + gold_scores(r)[:-1] for r in ROWS]
    assert processbench_metrics(ROWS, late, 0.5)["f1"] < 1.0
    ones = processbench_metrics(ROWS, [[1.0] * len(r.steps) for r in ROWS], 0.5)
    assert ones["acc_correct"] == 1.0 and ones["acc_erroneous"] == 0.0 and ones["f1"] == 0.0
    zeros = processbench_metrics(ROWS, [[0.0] * len(r.steps) for r in ROWS], 0.5)
    assert zeros["acc_correct"] == 0.0 and zeros["acc_erroneous"] == 0.5


def test_gold_best_of_n_is_any_of_n(tmp_path, capsys):
    """Gold scores pick a right solution whenever there is one; majority can miss it."""
    lines = []
    for pid, answers in (("p1", [("7", True, -1), ("8", False, 0), ("8", False, 1)]),
                         ("p2", [("5", False, 0), ("6", False, 0)]),
                         ("p3", [("2", True, -1), ("2", True, -1), ("3", False, 1)])):
        for answer, right, fe in answers:
            lines.append(json.dumps({"problem_id": pid, "prompt": f"Q {pid}", "steps": ["1 + 1 = 2", "The answer is 2"],
                                     "answer": answer, "right": right, "first_error": fe}))
    path = tmp_path / "bon.jsonl"
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "r.json"
    code, cap = run(capsys, ["--prm", "gold", "--adapter", "gold", "--processbench", "none", "--bon", str(path),
                             "--out", str(out)])
    assert code == 0, cap.err
    m = json.loads(out.read_text())["bon"]
    assert m["best-of-N"] == m["any-of-N"] == m["weighted vote"] == 2 / 3
    assert m["majority vote"] == 1 / 3 and m["steps"]["f1"] == 1.0


@pytest.mark.parametrize(("argv", "message"), [
    (["--prm", "gold", "--threshold", "2"], "prmflow eval-prm: --threshold must be 'auto' or a number in [0, 1], got '2'"),
    (["--prm", "gold", "--adapter", "gold", "--processbench", "none", "--bon", "missing.jsonl"],
     "prmflow eval-prm: --bon 'missing.jsonl' does not exist"),
    (["--prm", "gold", "--processbench", "aime"], "prmflow eval-prm: --processbench must name splits"),
    (["--prm", "gold", "--processbench", "none"], "prmflow eval-prm: nothing to evaluate"),
    (["--adapter", "gold"], "prmflow eval-prm: the following arguments are required: --prm"),
    (["--prm", "gold", "--limit", "0"], "prmflow eval-prm: --limit must be >= 1, got 0"),
    (["--prm", "gold", "--adapter", "shepherd"], "prmflow eval-prm: argument --adapter: invalid choice: 'shepherd'"),
    (["--prm", "/nonexistent", "--adapter", "qwen-prm"], "prmflow eval-prm: --prm must be a local model directory"),
])
def test_errors_are_one_line_and_exit_2(capsys, argv, message):
    code, cap = run(capsys, argv)
    assert code == 2
    assert cap.err.startswith(message) and cap.err.count("\n") == 1


# -- adapters on tiny checkpoints of each shape ----------------------------------------------------------


def _tokenizer_with(tiny_model_dir, tokens: list[str], special: bool):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    if special:
        tok.add_special_tokens({"additional_special_tokens": tokens})
    else:
        tok.add_tokens(tokens)
    return tok


@pytest.fixture(scope="module")
def qwen_prm_dir(tiny_model_dir, tmp_path_factory):
    """A random Qwen2 token classifier with two labels and a tokenizer with ``<extra_0>``: the shape of
    Qwen2.5-Math-PRM (a two-class head read at every ``<extra_0>``)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForTokenClassification

    path = tmp_path_factory.mktemp("qwen-prm")
    tok = _tokenizer_with(tiny_model_dir, ["<extra_0>"], special=True)
    tok.save_pretrained(path)
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512, num_labels=2,
                         pad_token_id=tok.pad_token_id)
    Qwen2ForTokenClassification(config).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def math_shepherd_dir(tiny_model_dir, tmp_path_factory):
    """A random Llama causal LM whose tokenizer has ``ки`` (and ``+``/``-``): Math-Shepherd's shape."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path = tmp_path_factory.mktemp("math-shepherd")
    tok = _tokenizer_with(tiny_model_dir, ["ки"], special=False)
    tok.save_pretrained(path)
    torch.manual_seed(1)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(path)
    return path


def _args(prm, adapter, **kw):
    from prmflow.prm.eval import parser

    argv = ["--prm", str(prm), "--adapter", adapter, "--device", "cpu"]
    for k, v in kw.items():
        argv += [f"--{k.replace('_', '-')}", str(v)]
    return parser().parse_args(argv)


def test_qwen_prm_adapter_follows_the_model_card(qwen_prm_dir):
    """Scores equal Qwen2.5-Math-PRM's recipe (chat template, whole-text encode, softmax[1] at each
    <extra_0>), one row at a time, whatever the batch and padding."""
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from prmflow.prm.eval import QWEN_SYSTEM, detect, make_adapter

    assert detect(str(qwen_prm_dir)) == "qwen-prm"
    adapter = make_adapter(_args(qwen_prm_dir, "qwen-prm", batch_size=2))
    got = adapter.score_rows(ROWS)
    tok = AutoTokenizer.from_pretrained(qwen_prm_dir)
    model = AutoModelForTokenClassification.from_pretrained(qwen_prm_dir).eval()
    sep = tok.encode("<extra_0>", add_special_tokens=False)[0]
    for row, scores in zip(ROWS, got, strict=True):
        messages = [{"role": "system", "content": QWEN_SYSTEM}, {"role": "user", "content": row.prompt},
                    {"role": "assistant", "content": "<extra_0>".join(row.steps) + "<extra_0>"}]
        ids = torch.tensor([tok.encode(tok.apply_chat_template(messages, tokenize=False), add_special_tokens=False)])
        with torch.no_grad():
            probs = model(input_ids=ids).logits.softmax(-1)[0, :, 1]
        expected = probs[ids[0] == sep].tolist()
        assert len(expected) == len(row.steps)
        assert scores == pytest.approx(expected, abs=1e-5)
    assert len({round(s, 6) for s in got[1]}) > 1  # a random head: the scores differ by step


def test_math_shepherd_adapter_follows_the_model_card(math_shepherd_dir):
    """Scores equal Math-Shepherd's recipe: "question step ки\\nstep ки", encode with BOS, the +/- logits
    at every ки, softmax's +."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from prmflow.prm.eval import detect, make_adapter

    assert detect(str(math_shepherd_dir)) == "math-shepherd"
    adapter = make_adapter(_args(math_shepherd_dir, "math-shepherd", batch_size=2))
    got = adapter.score_rows(ROWS)
    tok = AutoTokenizer.from_pretrained(math_shepherd_dir)
    model = AutoModelForCausalLM.from_pretrained(math_shepherd_dir).eval()
    tag = tok.encode("ки", add_special_tokens=False)[-1]
    cands = tok.encode("+ -", add_special_tokens=False)
    assert len(cands) == 2
    for row, scores in zip(ROWS, got, strict=True):
        text = f"{row.prompt} " + "\n".join(f"{s} ки" for s in row.steps)
        ids = torch.tensor([tok.encode(text)])
        with torch.no_grad():
            probs = model(input_ids=ids).logits[0][:, cands].softmax(-1)[:, 0]
        assert scores == pytest.approx(probs[ids[0] == tag].tolist(), abs=1e-5)


def test_a_row_whose_tags_do_not_come_out_once_per_step_is_unscored(math_shepherd_dir):
    """A problem text that itself holds the tag would put one score too many in the recipe's mask: the
    row is counted unscored, never misaligned; the other rows are scored as usual."""
    from prmflow.prm.eval import make_adapter

    adapter = make_adapter(_args(math_shepherd_dir, "math-shepherd"))
    rows = [Row("What does ки mean? 3 + 4?", ("3 + 4 = 7", "The answer is 7"), -1), *ROWS[1:]]
    scores = adapter.score_rows(rows)
    assert scores[0] == [None, None] and all(s is not None for row in scores[1:] for s in row)
    m = processbench_metrics(rows, scores, 0.5)
    assert m["unscored"] == 1 and m["rows"] == 3


@pytest.fixture(scope="module")
def prmflow_prm(tmp_path_factory):
    from prmflow.prm.config import parse_train_config
    from prmflow.prm.train import train

    d = tmp_path_factory.mktemp("prm")
    rows = []
    for i, r in enumerate(ROWS * 4):
        labels = [1.0 if r.first_error < 0 or k < r.first_error else 0.0 for k in range(len(r.steps))]
        rows.append({"problem_id": f"p{i}", "prompt": r.prompt, "steps": list(r.steps), "labels": labels})
    (d / "train.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows))
    config = parse_train_config({"data": str(d / "train.jsonl"), "output": str(d / "prm"), "epochs": 1,
                                 "batch_size": 4, "max_length": 64, "device": "cpu"})
    return train(config, progress=False).output


def test_prmflow_adapter_scores_with_the_prms_own_threshold(prmflow_prm, tmp_path, capsys):
    from prmflow.prm.eval import detect, make_adapter
    from prmflow.prm.scorer import PRMScorer

    assert detect(prmflow_prm) == "prmflow"
    adapter = make_adapter(_args(prmflow_prm, "auto"))
    scorer = PRMScorer(prmflow_prm, device="cpu")
    assert adapter.threshold == scorer.threshold
    for got, row in zip(adapter.score_rows(ROWS), ROWS, strict=True):
        assert got == pytest.approx(scorer.score(row.prompt, list(row.steps)), abs=1e-5)
    path = tmp_path / "bon.jsonl"
    path.write_text("".join(json.dumps({"problem_id": f"q{i // 2}", "prompt": r.prompt, "steps": list(r.steps),
                                        "answer": r.steps[-1][-1], "right": r.first_error < 0,
                                        "first_error": r.first_error}) + "\n" for i, r in enumerate(ROWS)))
    code, cap = run(capsys, ["--prm", prmflow_prm, "--processbench", "none", "--bon", str(path), "--device", "cpu"])
    assert code == 0, cap.err
    assert f"threshold {scorer.threshold:.3f}" in cap.out and "best-of-N (2 problems, 3 solutions)" in cap.out


def test_likelihood_adapter_is_the_lowest_token_probability():
    from prmflow.prm.eval import make_adapter

    adapter = make_adapter(_args("builtin:arith-tiny", "likelihood", prompt_template="Question: {prompt}\nAnswer:\n"))
    scores = adapter.score_rows(ROWS)
    assert all(0.0 < s <= 1.0 for row in scores for s in row)
    # on an arith problem, a wrong result is a low-probability token for the arith policy; the right one is not
    from prmflow.domains.arith import generate_problems

    problem = generate_problems(1, 3)[0]
    steps = list(problem.steps)
    a, b = steps[0].rsplit("= ", 1)
    wrong_steps = [f"{a}= {int(b) + 7}", *steps[1:]]
    right, wrong = adapter.score_rows([Row(problem.prompt, tuple(steps), -1), Row(problem.prompt, tuple(wrong_steps), 0)])
    assert wrong[0] < 0.1 < right[0]


def test_bon_metrics_bootstrap_is_seeded():
    from prmflow.prm.eval import gold_scores

    rows = ROWS * 3
    records = [{"answer": r.steps[-1][-1], "right": r.first_error < 0} for r in rows]
    ids = [f"p{i // 3}" for i in range(len(rows))]
    a = bon_metrics(ids, rows, records, [gold_scores(r) for r in rows], 0.5)
    b = bon_metrics(ids, rows, records, [gold_scores(r) for r in rows], 0.5)
    assert a == b and a["best-of-N"] == a["any-of-N"]


def test_qwen_prm_adapter_reads_a_model_class_whose_output_is_a_tuple(qwen_prm_dir, tmp_path):
    """Qwen's published checkpoint is its own class (Qwen2ForProcessRewardModel, loaded by AutoModel with
    remote code) whose forward returns a tuple, logits first. Here a class of that shape, registered with
    AutoModel in this process: a Qwen2 body and a 2-logit head. The adapter loads it through AutoModel and
    scores exactly as the class's own outputs[0] at each <extra_0>."""
    import torch
    from transformers import (
        AutoConfig,
        AutoModel,
        AutoTokenizer,
        Qwen2Config,
        Qwen2Model,
        Qwen2PreTrainedModel,
    )

    from prmflow.prm.eval import detect, make_adapter

    class TinyPRMConfig(Qwen2Config):
        model_type = "tiny-process-reward"

    class TinyProcessRewardModel(Qwen2PreTrainedModel):
        config_class = TinyPRMConfig

        def __init__(self, config):
            super().__init__(config)
            self.model = Qwen2Model(config)
            self.score = torch.nn.Linear(config.hidden_size, 2)
            self.post_init()

        def forward(self, input_ids, attention_mask=None, **kwargs):
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            return (self.score(hidden),)

    AutoConfig.register("tiny-process-reward", TinyPRMConfig, exist_ok=True)
    AutoModel.register(TinyPRMConfig, TinyProcessRewardModel, exist_ok=True)
    tok = AutoTokenizer.from_pretrained(qwen_prm_dir)
    tok.save_pretrained(tmp_path)
    torch.manual_seed(2)
    config = TinyPRMConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512,
                           pad_token_id=tok.pad_token_id)
    model = TinyProcessRewardModel(config).eval()
    model.save_pretrained(tmp_path)
    assert detect(str(tmp_path)) == "qwen-prm"
    adapter = make_adapter(_args(tmp_path, "auto", batch_size=3))
    assert type(adapter.model).__name__ == "TinyProcessRewardModel"
    got = adapter.score_rows(ROWS)
    sep = tok.convert_tokens_to_ids("<extra_0>")
    for row, scores in zip(ROWS, got, strict=True):
        ids = torch.tensor([adapter.encode(row)])
        with torch.no_grad():
            probs = model(input_ids=ids)[0].softmax(-1)[0, :, 1]
        assert scores == pytest.approx(probs[ids[0] == sep].tolist(), abs=1e-5)
