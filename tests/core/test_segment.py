import random

import pytest

from prmflow.core.segment import SegmentConfig, prefix_text, segment, segment_given


@pytest.mark.parametrize(
    "strategy, pattern, text, steps",
    [
        ("lines", None, "a = 1\n\n  b = 2  \nThe answer is 2", ["a = 1", "b = 2", "The answer is 2"]),
        ("paragraphs", None, "First part\nstill first.\n\nSecond.\n \n\nThird.", ["First part\nstill first.", "Second.", "Third."]),
        ("step-markers", None, "Intro.\nStep 1: add\nmore\nStep 2: done", ["Intro.", "Step 1: add\nmore", "Step 2: done"]),
        # markdown headers and bold markers, as chat models write them
        ("step-markers", None, "## Step 1: a\nx\n**Step 2.** b", ["## Step 1: a\nx", "**Step 2.** b"]),
        # no marker at all falls back to lines rather than one giant step
        ("step-markers", None, "a\nb", ["a", "b"]),
        ("regex", r"\s*;\s*", "a; b ;c", ["a", "b", "c"]),
        ("lines", None, "   \n\n", []),
    ],
)
def test_strategies(strategy, pattern, text, steps):
    seg = segment(text, SegmentConfig(strategy=strategy, pattern=pattern))
    assert list(seg.steps) == steps


def test_thinking_split_marks_segments():
    text = "<think>\nlet me see\n\nok\n</think>\nx = 2\nThe answer is 2"
    seg = segment(text)
    assert seg.steps == ("let me see", "ok", "x = 2", "The answer is 2")
    assert seg.segments == ("thinking", "thinking", "response", "response")
    assert seg.thinking.strip() == "let me see\n\nok"
    assert seg.response.strip() == "x = 2\nThe answer is 2"


def test_unclosed_thinking_is_all_thinking():
    seg = segment("<think>\na\nb")
    assert seg.segments == ("thinking", "thinking") and seg.response == ""


def test_think_tag_not_at_start_is_plain_text():
    seg = segment("I wrote <think> inline\nthen more")
    assert seg.segments == ("response", "response")


def _random_text(rng: random.Random) -> str:
    parts = []
    if rng.random() < 0.3:
        parts.append("<think>\n" + "\n".join(f"t{i} {rng.random():.3f}" for i in range(rng.randint(0, 4))) + "\n</think>\n")
    for i in range(rng.randint(0, 8)):
        parts.append(f"{rng.choice(['', '  ', f'Step {i}: '])}w{i} = {rng.randint(0, 99)}" + rng.choice(["\n", "\n\n", " \n"]))
    return "".join(parts)


@pytest.mark.parametrize("strategy", ["lines", "paragraphs", "step-markers"])
def test_prefix_is_exact_and_inverts_segmentation(strategy):
    rng = random.Random(0)
    config = SegmentConfig(strategy=strategy)
    for _ in range(300):
        text = _random_text(rng)
        seg = segment(text, config)
        n = len(seg.spans)
        assert seg.prefix(n) == text
        for k in range(n + 1):
            prefix = seg.prefix(k)
            assert text.startswith(prefix)
            # the first k steps, and only those, are in the prefix
            again = segment(prefix, config)
            if strategy == "lines" or k == 0:
                assert again.steps[:k] == seg.steps[:k]
                assert len(again.steps) == k


def test_given_steps_round_trip():
    seg = segment_given(["a = 1", "b = 2\nstill b", "done"])
    assert seg.text == "a = 1\nb = 2\nstill b\ndone"
    assert seg.steps == ("a = 1", "b = 2\nstill b", "done")
    assert seg.prefix(2) == "a = 1\nb = 2\nstill b\n"


def test_prefix_out_of_range_says_so():
    with pytest.raises(ValueError, match=r"k must be in \[0, 2\].*got 3"):
        prefix_text("a\nb", ((0, 1), (2, 3)), 3)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"strategy": "sentences"}, "segment.strategy must be one of"),
        ({"strategy": "regex"}, "segment.pattern must be a separator regex"),
        ({"strategy": "regex", "pattern": "("}, "segment.pattern must be a valid regex"),
    ],
)
def test_config_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SegmentConfig(**kwargs)
