"""Problem: a question to solve, with whatever truth its source provides."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from prmflow.schemas.base import arrow_schema, col, fast_init


@fast_init
@dataclass(frozen=True)
class Problem:
    problem_id: str = col(pa.string(), "content hash of (source, prompt)")
    source: str = col(pa.string(), "the input's name in the config, e.g. processbench-gsm8k")
    domain: str = col(pa.string(), "math | arith | code | general; selects labelers downstream")
    prompt: str = col(pa.string(), "the problem text given to a policy")
    source_id: str | None = col(
        pa.string(), "the row's own id as text (its id, problem_id, question_id, unique_id, uid or idx field; "
        "generic formats: fields.id), kept beside the hashed problem_id", default=None)
    reference_answer: str | None = col(pa.string(), "gold final answer, if the source has one", default=None)
    demonstration: str | None = col(pa.string(), "a gold solution text (e.g. GSM8K rationale)", default=None)
    demonstration_steps: tuple[str, ...] | None = col(
        pa.list_(pa.string()), "the demonstration split into steps", default=None
    )
    rubric: str | None = col(pa.string(), "grading guidance for an LLM judge", default=None)
    tests: str | None = col(
        pa.string(),
        "a test program a code solution must pass; code labeler. Plain Python, or JSON "
        '{"test", "prelude", "entry_point"}: prelude + solution runs, then test (HumanEval: prompt, check)',
        default=None,
    )
    source_file: str | None = col(pa.string(), "file the problem was read from", default=None)
    source_index: int | None = col(pa.int64(), "line (JSONL, 1-based) or element index (JSON, 0-based)", default=None)
    metadata: dict | None = col(pa.string(), "source-specific extras, JSON", default=None, json_encoded=True)


PROBLEM_SCHEMA = arrow_schema(Problem, "problems")
