"""The math labeler gives plain Math-Verify's verdict on every pair Math-Verify can read.

The same pairs as ``bench/grading.py`` (which measures the speed), on a slice of the real data: each
reference against itself, equivalent rewritings and a perturbed value.
"""

import json
import logging
import re

import pytest

from prmflow.labelers.outcome.math import MathLabeler


def _gsm8k_pairs(rows):
    for r in rows:
        ref = r["answer"].split("####")[-1].strip()
        n = int(ref.replace(",", ""))
        for answer in (ref, str(n + 1), f"${ref}", f"{ref} dollars", f"The answer is {ref}.", f"A: {ref}",
                       f"{n}.0", f"{n:,}", f"{n / 2:g}"):
            yield answer, ref


def _math500_pairs(rows):
    for r in rows:
        ref = r["answer"].strip()
        dfrac = ref.replace("\\frac", "\\dfrac")
        answers = {f"${ref}$", f"\\boxed{{{ref}}}", f"${dfrac}$"}
        digit = re.search(r"\d", ref)
        if digit:
            answers.add(f"${ref[: digit.start()]}{(int(digit.group()) + 1) % 10}{ref[digit.end():]}$")
        for answer in sorted(answers):
            yield answer, f"${ref}$"


@pytest.mark.parametrize(
    "dataset, pairs, n", [("gsm8k/test.jsonl", _gsm8k_pairs, 60), ("math500/test.jsonl", _math500_pairs, 80)]
)
def test_same_verdicts_as_plain_math_verify(shared_data, dataset, pairs, n):
    from math_verify import parse, verify

    logging.getLogger("math_verify").setLevel(logging.ERROR)
    rows = [json.loads(line) for line in open(shared_data / dataset)][:n]
    labeler = MathLabeler(in_process=True)
    compared, differ = 0, []
    for answer, reference in pairs(rows):
        gold, pred = parse(reference, parsing_timeout=None), parse(answer, parsing_timeout=None)
        if not gold or not pred:
            continue
        compared += 1
        plain = verify(gold, pred, timeout_seconds=None)
        ours = labeler.label(answer, reference).value == 1.0
        if ours != plain:
            differ.append((answer, reference, plain))
    assert compared > 3 * n and differ == []
