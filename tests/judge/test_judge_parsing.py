"""Verdict parsing: one row per output shape a judge can produce, malformed ones included."""

from __future__ import annotations

import pytest

from prmflow.judge import Vote, load_template, parse_vote

FIRST_ERROR = load_template("first-error")
ANALYSIS = load_template("paragraph-analysis")
EQUIVALENCE = load_template("answer-equivalence")
RUBRIC = load_template("rubric")


def ok(first_error: int | None, correct: bool) -> Vote:
    return Vote(first_error, correct, True, None)


def bad(reason: str) -> Vote:
    return Vote(None, None, False, reason)


# (id, generated, n_steps, expected)
FIRST_ERROR_ROWS = [
    ("plain", "The error is in paragraph 2.\n\\boxed{2}", 4, ok(2, False)),
    ("no_error", "All paragraphs are right. \\boxed{-1}", 4, ok(-1, True)),
    ("first_paragraph", "\\boxed{0}", 4, ok(0, False)),
    ("last_in_range", "\\boxed{3}", 4, ok(3, False)),
    ("latex_spaces", "\\boxed{ -1 }", 4, ok(-1, True)),
    ("space_before_brace", "\\boxed {1}", 4, ok(1, False)),
    ("inline_math", "$\\boxed{1}$", 4, ok(1, False)),
    ("math_inside", "\\boxed{$1$}", 4, ok(1, False)),
    ("text_wrapper", "\\boxed{\\text{-1}}", 4, ok(-1, True)),
    ("mathrm_wrapper", "\\boxed{\\mathrm{ 2 }}", 4, ok(2, False)),
    ("redundant_group", "\\boxed{{3}}", 4, ok(3, False)),
    ("plus_sign", "\\boxed{+2}", 4, ok(2, False)),
    ("newlines_inside", "\\boxed{\n2\n}", 4, ok(2, False)),
    # several boxed: the last is the answer, whatever came before
    ("last_wins", "First I thought \\boxed{1}, but on reflection \\boxed{-1}", 4, ok(-1, True)),
    ("last_wins_error", "\\boxed{-1} ... no, wait: \\boxed{2}", 4, ok(2, False)),
    # a malformed last marker is not rescued by an earlier good one
    ("last_malformed", "\\boxed{2} then \\boxed{two}", 4, bad("not_an_integer")),
    ("last_unclosed", "\\boxed{2} then \\boxed{1", 4, bad("unclosed")),
    ("out_of_range_high", "\\boxed{4}", 4, bad("out_of_range")),
    ("out_of_range_low", "\\boxed{-2}", 4, bad("out_of_range")),
    ("no_steps_only_minus_one", "\\boxed{0}", 0, bad("out_of_range")),
    ("no_steps_minus_one", "\\boxed{-1}", 0, ok(-1, True)),
    ("float", "\\boxed{2.0}", 4, bad("not_an_integer")),
    ("word", "\\boxed{two}", 4, bad("not_an_integer")),
    ("prose", "\\boxed{paragraph 2}", 4, bad("not_an_integer")),
    ("fraction", "\\boxed{\\frac{1}{2}}", 4, bad("not_an_integer")),
    ("unicode_minus", "\\boxed{\u22121}", 4, bad("not_an_integer")),
    ("empty", "\\boxed{}", 4, bad("empty")),
    ("blank", "\\boxed{  }", 4, bad("empty")),
    ("missing", "The earliest error is in paragraph 2.", 4, bad("no_verdict")),
    ("empty_text", "", 4, bad("no_verdict")),
    ("fbox_is_not_boxed", "\\fbox{2}", 4, bad("no_verdict")),
    ("unclosed_nested", "\\boxed{\\text{2}", 4, bad("unclosed")),
    ("escaped_brace_does_not_close", "\\boxed{2\\}", 4, bad("unclosed")),
    # reasoning judges: only the answer after </think> counts
    ("after_think", "<think>maybe \\boxed{0}</think>\nThe answer: \\boxed{2}", 4, ok(2, False)),
    ("only_in_think", "<think>\\boxed{0}</think>\nI am not sure.", 4, bad("no_verdict")),
    ("truncated_think", "<think>so it is \\boxed{1} or", 4, bad("unfinished_thinking")),
]

ANALYSIS_ROWS = [
    ("correct", "<analysis_0>ok</analysis_0>\n<analysis_1>ok</analysis_1>\n<conclusion>\nCorrect\n</conclusion>", 2,
     ok(-1, True)),
    ("incorrect_at_1", "<analysis_0>ok</analysis_0>\n<analysis_1>wrong</analysis_1>\n<conclusion>\nIncorrect\n</conclusion>",
     3, ok(1, False)),
    ("incorrect_at_0", "<analysis_0>wrong</analysis_0><conclusion>Incorrect</conclusion>", 3, ok(0, False)),
    ("lowercase", "<analysis_0>x</analysis_0><conclusion>incorrect</conclusion>", 3, ok(0, False)),
    ("period", "<conclusion> Correct. </conclusion>", 3, ok(-1, True)),
    ("tag_case_and_spaces", "<analysis_2>x</analysis_2>< Conclusion >Incorrect</ conclusion >", 3, ok(2, False)),
    ("last_conclusion_wins", "<conclusion>Correct</conclusion> wait <analysis_1>x</analysis_1>"
     "<conclusion>Incorrect</conclusion>", 3, ok(1, False)),
    # analyses written after the conclusion do not name the first error
    ("analysis_after_conclusion", "<analysis_0>x</analysis_0><conclusion>Incorrect</conclusion><analysis_2>", 3,
     ok(0, False)),
    ("incorrect_without_analysis", "<conclusion>Incorrect</conclusion>", 3, bad("no_first_error")),
    ("analysis_out_of_range", "<analysis_3>x</analysis_3><conclusion>Incorrect</conclusion>", 3, bad("out_of_range")),
    ("both_words", "<conclusion>\nCorrect/Incorrect\n</conclusion>", 3, bad("malformed")),
    ("bold", "<conclusion>**Correct**</conclusion>", 3, bad("malformed")),
    ("sentence", "<conclusion>The solution is correct</conclusion>", 3, bad("malformed")),
    ("empty", "<conclusion></conclusion>", 3, bad("empty")),
    ("unclosed", "<conclusion>Correct", 3, bad("unclosed")),
    ("unclosed_last", "<conclusion>Correct</conclusion> <conclusion>Inc", 3, bad("unclosed")),
    ("missing", "Everything checks out, Correct.", 3, bad("no_verdict")),
    ("boxed_is_not_a_conclusion", "\\boxed{-1}", 3, bad("no_verdict")),
]

EQUIVALENCE_ROWS = [
    ("yes", "Both are 17. \\boxed{Yes}", ok(None, True)),
    ("no", "17 is not 18. \\boxed{No}", ok(None, False)),
    ("lowercase", "\\boxed{yes}", ok(None, True)),
    ("upper", "\\boxed{NO}", ok(None, False)),
    ("text_wrapper", "\\boxed{\\text{Yes}}", ok(None, True)),
    ("textbf_wrapper", "$\\boxed{\\textbf{No}}$", ok(None, False)),
    ("period", "\\boxed{Yes.}", ok(None, True)),
    ("last_wins", "\\boxed{No} hmm, actually \\boxed{Yes}", ok(None, True)),
    ("sentence", "\\boxed{Yes, they match}", bad("malformed")),
    ("both", "\\boxed{Yes/No}", bad("malformed")),
    ("true", "\\boxed{True}", bad("malformed")),
    ("empty", "\\boxed{}", bad("empty")),
    ("unclosed", "\\boxed{Yes", bad("unclosed")),
    ("missing", "Yes, they are equivalent.", bad("no_verdict")),
    ("conclusion_is_not_boxed", "<conclusion>Correct</conclusion>", bad("no_verdict")),
]

RUBRIC_ROWS = [
    ("correct", "Point 1 is met.\n<conclusion>\nCorrect\n</conclusion>", ok(None, True)),
    ("incorrect", "<conclusion>Incorrect</conclusion>", ok(None, False)),
    # a rubric verdict names no step, so no analysis is needed for Incorrect
    ("incorrect_no_analysis", "Point 2 is missed. <conclusion>incorrect.</conclusion>", ok(None, False)),
    ("malformed", "<conclusion>Pass</conclusion>", bad("malformed")),
    ("unclosed", "<conclusion>Correct", bad("unclosed")),
    ("missing", "Correct", bad("no_verdict")),
]


@pytest.mark.parametrize("generated,n_steps,expected", [r[1:] for r in FIRST_ERROR_ROWS],
                         ids=[r[0] for r in FIRST_ERROR_ROWS])
def test_first_error(generated, n_steps, expected):
    assert parse_vote(FIRST_ERROR, generated, n_steps) == expected


@pytest.mark.parametrize("generated,n_steps,expected", [r[1:] for r in ANALYSIS_ROWS],
                         ids=[r[0] for r in ANALYSIS_ROWS])
def test_paragraph_analysis(generated, n_steps, expected):
    assert parse_vote(ANALYSIS, generated, n_steps) == expected


@pytest.mark.parametrize("generated,expected", [r[1:] for r in EQUIVALENCE_ROWS], ids=[r[0] for r in EQUIVALENCE_ROWS])
def test_answer_equivalence(generated, expected):
    assert parse_vote(EQUIVALENCE, generated, 3) == expected


@pytest.mark.parametrize("generated,expected", [r[1:] for r in RUBRIC_ROWS], ids=[r[0] for r in RUBRIC_ROWS])
def test_rubric(generated, expected):
    assert parse_vote(RUBRIC, generated, 3) == expected


@pytest.mark.parametrize("kind", ["first-error", "paragraph-analysis", "answer-equivalence", "rubric"])
def test_an_echoed_template_is_no_verdict(kind):
    """The templates describe their answer format without a parseable example: a judge that repeats
    its instructions has said nothing."""
    template = load_template(kind)
    text = template.text.format(problem="P", paragraphs="<paragraph_0>\nS\n</paragraph_0>", solution="S",
                                reference="R", rubric="U")
    assert not parse_vote(template, text, 1).parsed
