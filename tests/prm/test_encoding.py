"""Where a step's score is read: the last token of the step followed by the separator."""

from __future__ import annotations

import pytest

from prmflow.models import resolve_model_path
from prmflow.prm.encoding import StepFormat, encode_many


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_model_path("builtin:arith-tiny"))


def decode_upto(tokenizer, ids, end):
    return tokenizer.decode(ids[: end + 1], skip_special_tokens=True)


def test_each_position_is_the_last_token_of_its_step(tokenizer):
    fmt = StepFormat()
    steps = ["3 + 4 = 7", "7 * 2 = 14", "The answer is 14"]
    (enc,) = encode_many(tokenizer, fmt, [("Tom has 3 apples.", steps)], max_length=256)
    assert len(enc.positions) == 3 and enc.input_ids[0] == tokenizer.bos_token_id
    for k, pos in enumerate(enc.positions):
        text = decode_upto(tokenizer, enc.input_ids, pos)
        assert text == "Tom has 3 apples.\n" + "".join(s + "\n" for s in steps[: k + 1])
    assert enc.positions[-1] == len(enc.input_ids) - 1


def test_a_step_holding_the_separator_is_escaped_and_keeps_one_position(tokenizer):
    fmt = StepFormat(separator="\n")
    steps = ["3 + 4 = 7\nand then", "\n\n7 * 2 = 14\n"]
    (enc,) = encode_many(tokenizer, fmt, [("Q", steps)], max_length=256)
    assert len(enc.positions) == 2
    text = tokenizer.decode(enc.input_ids, skip_special_tokens=True)
    assert text == "Q\n3 + 4 = 7 and then\n  7 * 2 = 14 \n"
    assert text.count("\n") == 3  # the prompt's and one per step: no step looks like two
    assert decode_upto(tokenizer, enc.input_ids, enc.positions[0]) == "Q\n3 + 4 = 7 and then\n"


def test_a_multi_character_separator_is_escaped_until_none_is_left():
    fmt = StepFormat(separator=" ки")
    assert fmt.clean_step("a ки ки b") == "a   b"
    assert " ки" not in fmt.clean_step("x  кики ки")


def test_steps_beyond_max_length_have_no_position(tokenizer):
    steps = [f"{i} + {i} = {2 * i}" for i in range(40)]
    (full,) = encode_many(tokenizer, StepFormat(), [("Q", steps)], max_length=10_000)
    (cut,) = encode_many(tokenizer, StepFormat(), [("Q", steps)], max_length=60)
    assert len(cut.input_ids) == 60
    kept = [p for p in cut.positions if p is not None]
    assert kept == [p for p in full.positions if p < 60] and len(kept) < 40
    assert cut.positions[len(kept):] == [None] * (40 - len(kept))


@pytest.mark.parametrize(("separator", "template"), [("", "{prompt}\n"), ("  ", "{prompt}\n"), ("\n", "no prompt")])
def test_bad_formats_are_refused(separator, template):
    with pytest.raises(ValueError, match="separator|prompt_template"):
        StepFormat(separator=separator, prompt_template=template)
