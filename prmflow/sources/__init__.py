"""Dataset adapters: raw rows in, Problems with imported solution drafts out, or BadRecord."""

from __future__ import annotations

from prmflow.sources.arith import arith_raw_records, parse_arith
from prmflow.sources.base import BadRecord, Draft, Parsed, RawRecord, normalise_prompt
from prmflow.sources.datasets import parse_gsm8k, parse_math500, parse_prm800k, parse_processbench
from prmflow.sources.generic import parse_generic
from prmflow.sources.humaneval import parse_humaneval
from prmflow.sources.reader import FileCount, decode_row, iter_raw_records, read_file

ADAPTERS = {
    "arith": parse_arith,
    "gsm8k": parse_gsm8k,
    "math500": parse_math500,
    "processbench": parse_processbench,
    "prm800k": parse_prm800k,
    "humaneval": parse_humaneval,
    "jsonl": parse_generic,
    "json": parse_generic,
    "parquet": parse_generic,
}


def parse_raw(raw: RawRecord, spec, repairs: dict | None = None) -> Parsed:
    """Decode and adapt one raw record; raises BadRecord with a specific reason. Lone surrogates
    replaced in the row are added to ``repairs["surrogates"]``."""
    obj, surrogates = decode_row(raw)
    if repairs is not None and surrogates:
        repairs["surrogates"] = repairs.get("surrogates", 0) + surrogates
    if not isinstance(obj, dict):
        raise BadRecord("not_an_object", f"row must be a JSON object, got {type(obj).__name__}")
    return ADAPTERS[spec.format](obj, raw, spec)


__all__ = ["ADAPTERS", "arith_raw_records", "BadRecord", "Draft", "Parsed", "RawRecord", "iter_raw_records", "normalise_prompt", "parse_raw",
           "FileCount", "read_file"]
