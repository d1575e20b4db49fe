"""Start states: Math-Shepherd step boundaries and R3 reverse-curriculum stages."""

from __future__ import annotations

import pytest

from prmflow.core.slicing import StartStateSpec, all_steps, reverse_curriculum, reverse_curriculum_ks


def _prefixes(steps: list[str], joiner: str = "\n") -> list[str]:
    """prefixes[k]: the first k steps and the separator after them, as segment.prefix_text gives."""
    text = joiner.join(steps)
    out, cursor = [""], 0
    for i, step in enumerate(steps):
        cursor += len(step)
        if i < len(steps) - 1:
            cursor += len(joiner)
        out.append(text[:cursor])
    return out


@pytest.mark.parametrize(
    ("n", "include_full", "expected"),
    [
        (0, True, []),
        (1, True, [1]),
        (1, False, []),
        (3, True, [1, 2, 3]),
        (3, False, [1, 2]),
    ],
)
def test_all_steps(n, include_full, expected):
    assert all_steps(n, include_full=include_full) == expected


def test_all_steps_labels_step_i_with_prefix_i_plus_1():
    ks = all_steps(4)
    assert [k - 1 for k in ks] == [0, 1, 2, 3]


def test_all_steps_rejects_negative():
    with pytest.raises(ValueError, match="n_steps must be >= 0, got -1"):
        all_steps(-1)


@pytest.mark.parametrize(
    ("n", "stages", "expected"),
    [
        (5, 1, [0]),  # one stage = plain outcome RL from the question
        (5, 2, [4, 0]),
        (5, 3, [4, 2, 0]),
        (6, 3, [5, 3, 0]),  # 2.5 rounds half up
        (10, 4, [9, 6, 3, 0]),
        (5, 5, [4, 3, 2, 1, 0]),
        (5, 9, [4, 3, 2, 1, 0]),  # S > n: repeats dropped
        (3, 10, [2, 1, 0]),
        (1, 3, [0]),
        (0, 3, [0]),
    ],
)
def test_reverse_curriculum_ks(n, stages, expected):
    assert reverse_curriculum_ks(n, stages) == expected


def test_reverse_curriculum_ks_invariants():
    for n in range(0, 30):
        for stages in range(1, 40):
            ks = reverse_curriculum_ks(n, stages)
            assert ks[-1] == 0
            assert ks[0] == (max(n - 1, 0) if stages > 1 else 0)
            assert all(a > b for a, b in zip(ks, ks[1:], strict=False)), (n, stages, ks)
            assert len(ks) == min(stages, max(n, 1))


@pytest.mark.parametrize(("n", "stages"), [(-1, 2), (3, 0)])
def test_reverse_curriculum_ks_validation(n, stages):
    with pytest.raises(ValueError, match="must be >= "):
        reverse_curriculum_ks(n, stages)


def test_reverse_curriculum_steps_stage_order_and_offsets():
    steps = ["a = 1", "b = a + 1", "c = b * 2", "so c = 4"]
    prefixes = _prefixes(steps)
    specs = reverse_curriculum(prefixes, stages=3)
    assert specs == [
        StartStateSpec(stage=0, k=3, char_end=len(prefixes[3]), fraction=0.75),
        StartStateSpec(stage=1, k=2, char_end=len(prefixes[2]), fraction=0.5),
        StartStateSpec(stage=2, k=0, char_end=0, fraction=0.0),
    ]
    text = prefixes[-1]
    assert text[: specs[0].char_end] == "a = 1\nb = a + 1\nc = b * 2\n"


def test_reverse_curriculum_steps_dedupes_and_renumbers():
    prefixes = _prefixes(["x", "y", "z"])
    specs = reverse_curriculum(prefixes, stages=7)
    assert [s.stage for s in specs] == [0, 1, 2]
    assert [s.k for s in specs] == [2, 1, 0]
    assert len({s.char_end for s in specs}) == len(specs)


def test_reverse_curriculum_with_segment_prefixes():
    from prmflow.core.segment import segment

    seg = segment("<think>\nfirst\nsecond\n</think>\nthird\nfourth")
    n = len(seg.spans)
    prefixes = [seg.prefix(k) for k in range(n + 1)]
    specs = reverse_curriculum(prefixes, stages=n)
    assert [s.k for s in specs] == list(range(n - 1, -1, -1))
    for spec in specs:
        assert seg.text[: spec.char_end] == prefixes[spec.k]


def test_reverse_curriculum_deterministic():
    prefixes = _prefixes([f"step {i}" for i in range(13)])
    assert reverse_curriculum(prefixes, 5) == reverse_curriculum(prefixes, 5)


@pytest.mark.parametrize(
    ("text", "stages", "expected"),
    [
        # W = 5, S = 4: keep floor(5*3/4)=3, floor(5*2/4)=2, floor(5/4)=1, 0 words.
        ("one two three four five", 4, [(13, 0.6), (7, 0.4), (3, 0.2), (0, 0.0)]),
        # W = 2 < S = 5: kept 1, 1, 0, 0, 0 -> repeats dropped.
        ("hello  world", 5, [(5, 0.5), (0, 0.0)]),
        ("  lead  and\ntrail  ", 3, [(11, 2 / 3), (6, 1 / 3), (0, 0.0)]),
        ("", 3, [(0, 0.0)]),
        ("solo", 1, [(0, 0.0)]),
    ],
)
def test_reverse_curriculum_words(text, stages, expected):
    specs = reverse_curriculum(["", text], stages, mode="words")
    assert [s.char_end for s in specs] == [c for c, _ in expected]
    assert [s.fraction for s in specs] == pytest.approx([f for _, f in expected])
    assert [s.stage for s in specs] == list(range(len(specs)))
    assert all(s.k is None for s in specs)
    for s in specs:
        # Cut right after a word, never inside one or after its trailing space.
        assert s.char_end == 0 or (not text[s.char_end - 1].isspace())
        assert s.char_end == len(text) or s.char_end == 0 or text[s.char_end].isspace()


def test_reverse_curriculum_validation():
    with pytest.raises(ValueError, match="must be a prefix of prefixes"):
        reverse_curriculum(["", "abc", "xbcd"], 2)
    with pytest.raises(ValueError, match="stages must be >= 1, got 0"):
        reverse_curriculum(["", "a"], 0)
    with pytest.raises(ValueError, match="mode must be one of"):
        reverse_curriculum(["", "a"], 2, mode="chars")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="prefixes must hold"):
        reverse_curriculum([], 2)
