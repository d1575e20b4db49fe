"""Dataset adapters: raw rows in, Problems with imported solution drafts out, or BadRecord."""

from __future__ import annotations

import json

from prmflow.sources.arith import GOLD, arith_raw_records, parse_arith
from prmflow.sources.base import BadRecord, Draft, Parsed, RawRecord, normalise_prompt
from prmflow.sources.datasets import parse_gsm8k, parse_math500, parse_prm800k, parse_processbench
from prmflow.sources.generic import parse_generic
from prmflow.sources.reader import iter_raw_records

ADAPTERS = {
    "arith": parse_arith,
    "gsm8k": parse_gsm8k,
    "math500": parse_math500,
    "processbench": parse_processbench,
    "prm800k": parse_prm800k,
    "jsonl": parse_generic,
    "json": parse_generic,
    "parquet": parse_generic,
}


def parse_raw(raw: RawRecord, spec) -> Parsed:
    """Decode and adapt one raw record; raises BadRecord with a specific reason."""
    if raw.error is not None:
        raise raw.error
    obj = raw.value
    if obj is None:
        try:
            obj = json.loads(raw.text)
        except json.JSONDecodeError as e:
            raise BadRecord("bad_json", f"{e.msg} at column {e.colno}") from None
    if not isinstance(obj, dict):
        raise BadRecord("not_an_object", f"row must be a JSON object, got {type(obj).__name__}")
    return ADAPTERS[spec.format](obj, raw, spec)


__all__ = ["ADAPTERS", "GOLD", "arith_raw_records", "BadRecord", "Draft", "Parsed", "RawRecord", "iter_raw_records", "normalise_prompt", "parse_raw"]
