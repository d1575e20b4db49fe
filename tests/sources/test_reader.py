"""The reader splits any file into records without losing or merging rows, and never raises.

One table row per input that once crashed the job or lost rows (issue 10); each checks the records'
reasons and that the records' byte spans plus separators add up to the bytes read.
"""

import bz2
import gzip
import io
import json
import pickle
import zlib

import pytest
import zstandard

from prmflow.sources import BadRecord, FileCount, read_file
from prmflow.sources.reader import HEAD, decode_row, layout_of, read_checks, split_compression

ROW = json.dumps({"question": "q?", "answer": "1\n#### 1"})
R = ROW.encode()


def read(name: str, data: bytes, fmt: str = "gsm8k", max_bytes: int = 1 << 20, limit=None):
    out = list(read_file(lambda: io.BytesIO(data), name, fmt, max_bytes, limit))
    count = out[-1]
    assert isinstance(count, FileCount) and not any(isinstance(x, FileCount) for x in out[:-1])
    return out[:-1], count


def outcome(records) -> list:
    return [(r.location, r.error.reason if r.error else None) for r in records]


def big_gzip_cut() -> bytes:
    data = b"".join(json.dumps({"question": f"q{i}", "answer": "x" * 40}).encode() + b"\n" for i in range(50000))
    return gzip.compress(data)[:-3000]


CASES = [
    # name, file name, bytes, format, expected (location, reason) per record
    ("plain lines", "a.jsonl", R + b"\n" + R + b"\n", "gsm8k", [(1, None), (2, None)]),
    ("blank lines are not rows", "a.jsonl", b"\n" + R + b"\n  \n\n" + R, "gsm8k", [(2, None), (5, None)]),
    # a UTF-8 BOM made the first row bad_json
    ("BOM before JSONL", "a.jsonl", b"\xef\xbb\xbf" + R + b"\n" + R, "gsm8k", [(1, None), (2, None)]),
    # lone CR line ends merged three rows into one
    ("CR-only line ends", "a.jsonl", R + b"\r" + R + b"\r" + R, "gsm8k", [(1, None), (2, None), (3, None)]),
    ("CRLF line ends", "a.jsonl", R + b"\r\n\r\n" + R + b"\r\n", "gsm8k", [(1, None), (3, None)]),
    # .jsonl.gz was read as garbage, not decompressed
    ("gzip", "a.jsonl.gz", gzip.compress(R + b"\n" + R), "gsm8k", [(1, None), (2, None)]),
    ("concatenated gzip members", "a.jsonl.gz", gzip.compress(R + b"\n") * 2, "gsm8k", [(1, None), (2, None)]),
    ("bz2", "a.jsonl.bz2", bz2.compress(R + b"\n" + R), "gsm8k", [(1, None), (2, None)]),
    ("zstd", "a.jsonl.zst", zstandard.ZstdCompressor().compress(R + b"\n" + R), "gsm8k", [(1, None), (2, None)]),
    ("deflate", "a.jsonl.deflate", zlib.compress(R + b"\n" + R), "gsm8k", [(1, None), (2, None)]),
    ("not gzip at all", "a.jsonl.gz", b"plain text", "gsm8k", [(1, "unreadable_file")]),
    ("not UTF-8 line", "a.jsonl", R + b"\n{\"q\": \"\xff\"}\n" + R, "gsm8k", [(1, None), (2, "not_utf8"), (3, None)]),
    ("line over the limit", "a.jsonl", b"x" * 5000 + b"\n" + R, "gsm8k", [(1, "too_large"), (2, None)]),
    # a JSON array: a BOM before it made the whole file one dead letter
    ("BOM before a JSON array", "a.json", b"\xef\xbb\xbf[" + R + b", " + R + b"]", "processbench", [(0, None), (1, None)]),
    # truncated mid-element: every valid element was discarded
    ("array truncated mid-element", "a.json", b"[" + R + b",\n " + R + b',\n {"question": "cut', "processbench",
     [(0, None), (1, None), (2, "bad_json")]),
    ("bad element in the middle", "a.json", b"[" + R + b', {"q": oops}, ' + R + b", oops, 3]", "processbench",
     [(0, None), (1, "bad_json"), (2, None), (3, "bad_json"), (4, None)]),
    # a row nested 10,000 levels: RecursionError in the parser
    ("element nested 10,000 levels", "a.json", b"[" + b"[" * 10000 + b"]" * 10000 + b"," + R + b"]", "processbench",
     [(0, "too_deep"), (1, None)]),
    ("element nested inside a broken one is not a row", "a.json", b'[{"a": [{"b": 1}, {"c": oops}]}, ' + R + b"]",
     "processbench", [(0, "bad_json"), (1, None)]),
    ("not UTF-8 element only", "a.json", b'[{"a": "\xff"}, ' + R + b"]", "processbench", [(0, "not_utf8"), (1, None)]),
    ("concatenated objects, garbage after", "a.json", R + b"\n" + R + b" trailing", "processbench",
     [(0, None), (1, None), (2, "bad_json")]),
    ("objects separated by commas", "a.json", R + b",\n" + R + b",", "processbench", [(0, None), (1, None)]),
    ("integer of 4301 digits", "a.json", b"[" + b"9" * 4301 + b", " + R + b"]", "processbench", [(0, "bad_value"), (1, None)]),
    ("empty file", "a.jsonl", b"", "gsm8k", []),
    # a CSV named .parquet, a truncated Parquet file: ArrowInvalid killed the run
    ("CSV named .parquet", "a.parquet", b"a,b\n1,2\n", "parquet", [(0, "unreadable_file")]),
]


@pytest.mark.parametrize("name,file,data,fmt,expected", CASES, ids=[c[0] for c in CASES])
def test_reader_cases(name, file, data, fmt, expected):
    records, count = read(file, data, fmt, max_bytes=4096 if "limit" in name else 1 << 20)
    assert outcome(records) == expected
    assert count.rows_counted == len(records)
    spans = sum(r.size for r in records if r.offset is not None)
    assert count.bytes_read == spans + count.separator_bytes
    # spans are in order and do not overlap
    located = [r for r in records if r.offset is not None and r.size]
    assert all(a.offset + a.size <= b.offset for a, b in zip(located, located[1:], strict=False))
    for r in records:
        if r.error is None and r.offset is not None and not split_compression(file)[1]:
            raw = data[r.offset:r.offset + r.size].decode()
            assert json.loads(raw) == json.loads(r.text)  # the span is exactly the row


def test_truncated_gzip_keeps_the_rows_before_the_damage():
    cut = big_gzip_cut()
    whole = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(cut).count(b"\n")
    records, count = read("big.jsonl.gz", cut)
    assert whole > 1000
    assert [r.error for r in records[:-1]] == [None] * whole
    assert records[-1].error.reason == "unreadable_file" and records[-1].location == whole + 1
    assert count.rows_counted == whole + 1
    assert count.bytes_read == sum(r.size for r in records) + count.separator_bytes


def test_truncated_parquet_and_directory_are_one_dead_letter(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.table({"question": ["a", "b"]}), buf)
    records, count = read("t.parquet", buf.getvalue()[:-40], "parquet")
    assert outcome(records) == [(0, "unreadable_file")] and count.rows_counted == 1
    out = list(read_file(lambda: open(tmp_path, "rb"), str(tmp_path), "gsm8k", 1 << 20))
    assert outcome(out[:-1]) == [(1, "unreadable_file")]
    assert "IsADirectoryError" in out[0].error.detail


def test_parquet_rows_are_counted_by_the_footer():
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.table({"question": [f"q{i}" for i in range(2500)]}), buf, row_group_size=1000)
    records, count = read("p.parquet", buf.getvalue(), "parquet")
    assert len(records) == count.rows_counted == 2500


def test_an_endless_line_is_not_held_whole():
    records, count = read("a.jsonl", b"y" * (3 << 20) + b"\n" + R, max_bytes=4096)
    assert outcome(records) == [(1, "too_large"), (2, None)]
    assert len(records[0].text) == HEAD and records[0].size == 3 << 20
    assert count.bytes_read == (3 << 20) + 1 + len(R)


def test_limit_reads_only_what_it_needs():
    records, count = read("a.jsonl", (R + b"\n") * 5, limit=2)
    assert len(records) == 2 and count.rows_counted == 2
    assert count.bytes_read == sum(r.size for r in records) + count.separator_bytes


@pytest.mark.parametrize("name,fmt,layout", [
    ("x.jsonl.gz", "processbench", "jsonl"),
    ("x.json.bz2", "gsm8k", "json"),
    ("x.parquet.zst", "jsonl", "parquet"),
    ("x.gz", "gsm8k", "jsonl"),  # no layout in the name: the format's default
    ("x.gz", "processbench", "json"),
    ("x.txt", "math500", "jsonl"),
])
def test_layout_ignores_the_compression_suffix(name, fmt, layout):
    assert layout_of(name, fmt) == layout


def test_a_merging_splitter_fails_reconciliation():
    # three rows in the file, one record read: the check a CR-blind splitter would have failed
    counts = {"records_read": {"a": 1}, "rows_counted": {"a": 3}, "input_bytes": {"a": 30},
              "record_bytes": {"a": 28}, "separator_bytes": {"a": 2}}
    checks = read_checks(counts)
    assert checks["records_read == rows counted in the input files"] == (1, 3)
    assert checks["input bytes == bytes in rows + bytes between rows"] == (30, 30)


@pytest.mark.parametrize("text,reason", [
    ("[" * 10000 + "]" * 10000, "too_deep"),  # RecursionError in json.loads
    ('{"a": ' + "[" * 100 + "]" * 100 + "}", "too_deep"),  # decodes, but deeper than any real row
    ('{"label": ' + "9" * 4301 + "}", "bad_value"),  # Python refuses to build the int
    ('{"a": oops}', "bad_json"),
])
def test_decode_refuses(text, reason):
    from prmflow.sources import RawRecord

    with pytest.raises(BadRecord) as e:
        decode_row(RawRecord("a.jsonl", 1, text))
    assert e.value.reason == reason


def test_bad_record_survives_pickling():
    e = pickle.loads(pickle.dumps(BadRecord("bad_json", "detail")))
    assert (e.reason, e.detail) == ("bad_json", "detail")


@pytest.mark.parametrize("chunk", [1, 2, 3, 7])
@pytest.mark.parametrize("name,file,data,fmt,expected", [c for c in CASES if "json" in c[1] and "limit" not in c[0]],
                         ids=[c[0] for c in CASES if "json" in c[1] and "limit" not in c[0]])
def test_chunk_boundaries_change_nothing(monkeypatch, chunk, name, file, data, fmt, expected):
    # a \r\n, a BOM or a row split between two reads must be read as if whole
    from prmflow.sources import reader

    monkeypatch.setattr(reader, "CHUNK", chunk)
    test_reader_cases(name, file, data, fmt, expected)


def test_unicode_space_between_elements_is_a_bad_element_not_lost_bytes():
    # U+00A0 is not JSON whitespace; counted as a separator it would break the byte accounting
    records, count = read("a.json", b"[" + R + b",\xc2\xa0" + R + b"]", "processbench")
    assert [r.error.reason if r.error else None for r in records] == [None, "bad_json", None]
    assert count.bytes_read == sum(r.size for r in records) + count.separator_bytes


def test_a_json_array_is_read_a_chunk_at_a_time():
    """A JSON array's first element comes out after about one chunk has been read, not the whole file
    (a 150 MB array took 780 MB of memory when it was read whole; issue 24)."""
    from prmflow.sources import reader

    data = b"[" + b",\n".join([R] * 100000) + b"]"
    stream = io.BytesIO(data)
    records = reader.iter_json(stream, "a.json", 1 << 20, {})
    first = next(records)
    assert first.error is None and stream.tell() <= 2 * reader.CHUNK < len(data)
    assert sum(1 for _ in records) == 99999
