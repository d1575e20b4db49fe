"""Split a file into raw records without trusting it: every failure becomes a record with an error.

Takes an open binary stream so the caller chooses the filesystem (Beam's FileSystems in pipelines,
plain ``open`` in tests); this module never imports apache_beam.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO

from prmflow.sources.base import BadRecord, RawRecord


def _decode(data: bytes) -> tuple[str, BadRecord | None]:
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as e:
        return data.decode("utf-8", "backslashreplace"), BadRecord(
            "not_utf8", f"invalid UTF-8 byte {data[e.start]:#04x} at offset {e.start}"
        )


def _too_large(size: int, limit: int) -> BadRecord:
    return BadRecord("too_large", f"row is {size} bytes, over limits.max_record_bytes = {limit}")


def iter_jsonl(stream: IO[bytes], source_file: str, max_record_bytes: int) -> Iterator[RawRecord]:
    for line_no, line in enumerate(stream, start=1):
        if not line.strip():
            continue  # blank lines are not rows
        size = len(line)
        if size > max_record_bytes:
            text, _ = _decode(line[:4096])
            yield RawRecord(source_file, line_no, text, error=_too_large(size, max_record_bytes), size=size)
            continue
        text, err = _decode(line.rstrip(b"\r\n"))
        yield RawRecord(source_file, line_no, text, error=err, size=size)


def iter_json(stream: IO[bytes], source_file: str, max_record_bytes: int) -> Iterator[RawRecord]:
    """A JSON array (one record per element), one object, or several concatenated objects."""
    data = stream.read()
    text, err = _decode(data)
    if err:
        yield RawRecord(source_file, 0, text[:65536], error=err, size=len(data))
        return
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            values = json.loads(text)
        except json.JSONDecodeError as e:
            yield RawRecord(source_file, 0, text[:65536], error=BadRecord("bad_json", f"the array does not parse: {e}"), size=len(data))
            return
        for i, value in enumerate(values):
            raw = json.dumps(value, ensure_ascii=False)
            size = len(raw.encode("utf-8"))
            err = _too_large(size, max_record_bytes) if size > max_record_bytes else None
            yield RawRecord(source_file, i, raw if not err else raw[:4096], value=None if err else value, error=err, size=size)
        return
    decoder, pos, index = json.JSONDecoder(), 0, 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            # The rest of the file can't be resynchronised reliably: keep it whole, as one dead letter.
            rest = text[pos:]
            yield RawRecord(source_file, index, rest[:65536], error=BadRecord("bad_json", str(e)), size=len(rest.encode()))
            return
        raw = text[pos:end]
        size = len(raw.encode("utf-8"))
        err = _too_large(size, max_record_bytes) if size > max_record_bytes else None
        yield RawRecord(source_file, index, raw if not err else raw[:4096], value=None if err else value, error=err, size=size)
        pos, index = end, index + 1


def iter_parquet(stream: IO[bytes], source_file: str, max_record_bytes: int) -> Iterator[RawRecord]:
    import pyarrow.parquet as pq

    index = 0
    for batch in pq.ParquetFile(stream).iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            raw = json.dumps(row, ensure_ascii=False, default=str)
            size = len(raw.encode("utf-8"))
            err = _too_large(size, max_record_bytes) if size > max_record_bytes else None
            yield RawRecord(source_file, index, raw if not err else raw[:4096], value=None if err else row, error=err, size=size)
            index += 1


def iter_raw_records(
    stream: IO[bytes], source_file: str, fmt: str, max_record_bytes: int, limit: int | None = None
) -> Iterator[RawRecord]:
    """Records of one file in order. ``fmt`` is the input format; the file layout follows from it
    (JSONL for gsm8k/math500/prm800k/jsonl, JSON for processbench/json, Parquet for parquet) unless
    the file name says otherwise (.json / .jsonl / .parquet)."""
    name = source_file.lower()
    if name.endswith(".parquet") or fmt == "parquet":
        it = iter_parquet(stream, source_file, max_record_bytes)
    elif name.endswith(".jsonl") or (fmt in ("gsm8k", "math500", "jsonl") and not name.endswith(".json")):
        it = iter_jsonl(stream, source_file, max_record_bytes)
    else:
        it = iter_json(stream, source_file, max_record_bytes)
    for n, record in enumerate(it):
        if limit is not None and n >= limit:
            return
        yield record
