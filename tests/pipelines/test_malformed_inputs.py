"""Acceptance: malformed inputs give zero crashes, one dead letter per bad row (or per unreadable
file) with a specific reason, no row lost by a count made beside the splitter, and counters that
reconcile.

The committed corpus (``tests/data/malformed/``, reasons in ``expected_reasons.json``) holds the
text cases; the binary ones (compressed, truncated, BOM, CR-only line ends, a CSV named .parquet, a
directory) are built here, each with the dead letters and rows it must give.
"""

import bz2
import gzip
import io
import json
import zlib

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
import zstandard

from prmflow.pipelines.label import run


def gsm_rows(n: int, start: int = 0) -> list[bytes]:
    return [json.dumps({"question": f"What is {i}+0?", "answer": f"{i}+0 = {i}\n#### {i}"}).encode() for i in range(start, start + n)]


def parquet_bytes(n: int) -> bytes:
    buf = io.BytesIO()
    table = pa.table({
        "question": [f"What is {i}*1?" for i in range(n)],
        "answer": [str(i) for i in range(n)],
        "solution": [f"{i}*1 = {i}\nThe answer is {i}" for i in range(n)],
    })
    pq.write_table(table, buf)
    return buf.getvalue()


def truncated_gzip() -> tuple[bytes, int]:
    """A .jsonl.gz cut short, and how many whole rows its readable part holds (counted here with
    zlib, apart from the reader)."""
    data = b"".join(r + b"\n" for r in gsm_rows(3000))
    cut = gzip.compress(data)[:-5000]
    readable = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(cut)
    return cut, readable.count(b"\n")


PARQUET_FIELDS = {"prompt": "question", "reference_answer": "answer", "solution": "solution"}


def generated_cases(root):
    """(input config, {file:location: reason}, rows read, good rows) per built case."""
    cut, whole_rows = truncated_gzip()
    (root / "glob").mkdir()
    (root / "adir").mkdir()
    (root / "adir" / "inside.jsonl").write_bytes(b"\n".join(gsm_rows(1)))
    files = {
        # a UTF-8 BOM (Windows tools) must not turn the first row into bad_json
        "bom.jsonl": b"\xef\xbb\xbf" + b"\n".join(gsm_rows(2)) + b"\n",
        # old-Mac line ends: three rows, not one merged row
        "cr.jsonl": b"\r".join(gsm_rows(3, 10)),
        # Windows line ends with a blank line between rows
        "crlf.jsonl": b"\r\n\r\n".join(gsm_rows(2, 20)) + b"\r\n",
        "rows.jsonl.gz": gzip.compress(b"\n".join(gsm_rows(2, 30))),
        "rows.jsonl.bz2": bz2.compress(b"\n".join(gsm_rows(2, 40))),
        "rows.jsonl.zst": zstandard.ZstdCompressor().compress(b"\n".join(gsm_rows(2, 50))),
        "cut.jsonl.gz": cut,
        "empty.jsonl": b"",
        "truncated.parquet": parquet_bytes(3)[:200],
        "csv.parquet": b"question,answer\nWhat?,1\n",
        "glob/a.parquet": parquet_bytes(2),
        "glob/b.parquet": parquet_bytes(2)[:-30],
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    gsm = lambda name, path: {"name": name, "format": "gsm8k", "path": str(root / path)}  # noqa: E731
    pq_in = lambda name, path: {"name": name, "format": "parquet", "path": str(root / path), "fields": PARQUET_FIELDS}  # noqa: E731
    return [
        (gsm("bom", "bom.jsonl"), {}, 2, 2),
        (gsm("cr", "cr.jsonl"), {}, 3, 3),
        (gsm("crlf", "crlf.jsonl"), {}, 2, 2),
        (gsm("gz", "rows.jsonl.gz"), {}, 2, 2),
        (gsm("bz2", "rows.jsonl.bz2"), {}, 2, 2),
        (gsm("zst", "rows.jsonl.zst"), {}, 2, 2),
        # the rows before the damage are kept; one dead letter stands for the rest
        (gsm("cut", "cut.jsonl.gz"), {f"cut.jsonl.gz:{whole_rows + 1}": "unreadable_file"}, whole_rows + 1, whole_rows),
        (gsm("empty", "empty.jsonl"), {}, 0, 0),
        (pq_in("truncpq", "truncated.parquet"), {"truncated.parquet:0": "unreadable_file"}, 1, 0),
        (pq_in("csvpq", "csv.parquet"), {"csv.parquet:0": "unreadable_file"}, 1, 0),
        # one corrupt file in a glob: the others are read
        (pq_in("globpq", "glob/*.parquet"), {"b.parquet:0": "unreadable_file"}, 3, 2),
        # a directory given as a path
        (gsm("dir", "adir"), {"adir:1": "unreadable_file"}, 1, 0),
    ]


def committed_cases(corpus):
    expected = json.loads((corpus / "expected_reasons.json").read_text())
    inputs = [
        {"name": "pb", "format": "processbench", "path": str(corpus / "processbench.jsonl")},
        {"name": "pbarray", "format": "processbench", "path": str(corpus / "processbench_array.json")},
        {"name": "gsm", "format": "gsm8k", "path": str(corpus / "gsm8k.jsonl")},
        {"name": "prm", "format": "prm800k", "path": str(corpus / "prm800k.jsonl")},
        {"name": "gen", "format": "jsonl", "path": str(corpus / "generic.jsonl"),
         "fields": {"prompt": "q", "solution": "sol", "gold_outcome": "ok"}},
        {"name": "scores", "format": "jsonl", "path": str(corpus / "generic_scores.jsonl"),
         "fields": {"prompt": "q", "steps": "s", "gold_step_labels": "lab", "step_scores": "sc", "domain": "dom",
                    "reference_answer": "ref", "gold_outcome": "ok"}},
    ]
    cases = []
    for spec in inputs:
        name = spec["path"].rsplit("/", 1)[-1]
        mine = {k: v for k, v in expected.items() if k.startswith(name + ":")}
        data = (corpus / name).read_bytes()
        # rows counted here, apart from the reader: non-blank lines, or the array's 8 elements
        rows = 8 if name.endswith(".json") else sum(1 for line in data.splitlines() if line.strip())
        cases.append((spec, mine, rows, rows - len(mine)))
    return cases


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory, test_data):
    root = tmp_path_factory.mktemp("malformed")
    cases = committed_cases(test_data / "malformed") + generated_cases(root)
    config = {
        "name": "malformed",
        "inputs": [spec for spec, *_ in cases],
        "segment": {"strategy": "lines"},
        "outcome": {"labeler": "exact"},
        "limits": {"max_record_bytes": 65536, "max_steps": 50},
    }
    cfg = root / "c.yaml"
    cfg.write_text(yaml.safe_dump(config))
    manifest = run([str(cfg), "--output", str(root / "out")])
    return cases, manifest, root / "out"


def test_corpus_is_large(corpus_run):
    cases, _, _ = corpus_run
    n_bad = sum(len(expected) for _, expected, _, _ in cases)
    # bad rows plus the inputs that must read cleanly although they look odd (BOM, CR, compressed...)
    n_clean = sum(1 for _, expected, _, good in cases if not expected)
    assert n_bad + n_clean >= 60, (n_bad, n_clean)


def test_every_bad_row_is_one_dead_letter_with_its_reason(corpus_run):
    cases, _, out = corpus_run
    expected = {k: v for _, e, _, _ in cases for k, v in e.items()}
    rows = duckdb.sql(
        f"SELECT source_file, location, reason, detail, raw FROM read_parquet('{out}/dead_letters/*.parquet')"
    ).fetchall()
    got = {f"{f.rsplit('/', 1)[-1]}:{loc}": reason for f, loc, reason, _, _ in rows}
    assert len(rows) == len(got)  # one dead letter per bad row
    assert got == expected
    assert all(detail for _, _, _, detail, _ in rows)
    not_utf8 = [r for r in rows if r[2] == "not_utf8"]
    assert not_utf8 and all("\\xff" in r[4] for r in not_utf8)  # the raw bytes are kept, escaped
    # the dead letter of a row with an escaped lone surrogate keeps the escape as text
    assert any("\\ud800" in r[4] for r in rows if r[2] == "missing_field")
    assert all(len(r[4]) <= 70000 for r in rows)  # oversized rows are cut, not copied whole


def test_nothing_is_lost_by_an_independent_count(corpus_run):
    cases, manifest, _ = corpus_run
    counts, rec = manifest["counts"], manifest["reconciliation"]
    assert rec["ok"], rec
    for check in ("records_read == rows counted in the input files", "input bytes == bytes in rows + bytes between rows"):
        assert rec["checks"][check]["ok"] and rec["checks"][check]["left"] > 0, check
    for spec, _, rows, _ in cases:
        assert counts["records_read"].get(spec["name"], 0) == rows, spec["name"]
        assert counts["rows_counted"].get(spec["name"], 0) == rows, spec["name"]
    # the ProcessBench row read twice, and its copy under another id, are one trajectory
    assert counts["duplicates"] == {"pb": 2}
    good = sum(g for *_, g in cases)
    assert sum(counts["trajectories"].values()) == good - 2


def test_written_rows_are_clean_and_unique(corpus_run):
    _, manifest, out = corpus_run
    for table, key in (("trajectories", "trajectory_id"), ("steps", "step_id"), ("problems", "problem_id")):
        n, distinct = duckdb.sql(f"SELECT count(*), count(DISTINCT {key}) FROM read_parquet('{out}/{table}/*.parquet')").fetchall()[0]
        assert n == distinct > 0, table
    prompts = [p for (p,) in duckdb.sql(f"SELECT prompt FROM read_parquet('{out}/problems/*.parquet')").fetchall()]
    assert "What is \ufffd 2+2?" in prompts and "Lone \ufffd surrogate?" in prompts
    # in rows that were parsed: sur-1 (2), sur-3's key (1), the array's arr-3 (1); sur-2 is refused
    # for its missing label, and its dead letter keeps the escape as it was
    assert manifest["beam_counters"].get("parse_replaced_surrogates") == 4


def test_split_reads_and_small_parts_write_the_same_bytes(corpus_run, tmp_path, monkeypatch):
    """Streamed writing (transforms/write.py): every file read in 3 shares, rows turned into Arrow every 13 and flushed as parts of about 97
    and each shard merged in id-range passes of 301 rows give byte-identical shards and the same
    counts (duplicates dropped across parts, dead letters of unreadable files counted once)."""
    from prmflow.schemas import TABLES
    from prmflow.transforms import write

    monkeypatch.setattr(write, "ARROW_ROWS", 13)
    monkeypatch.setattr(write, "PART_ROWS", 97)
    monkeypatch.setattr(write, "MERGE_ROWS", 301)
    _, manifest, out = corpus_run
    again = run([str(out.parent / "c.yaml"), "--output", str(tmp_path / "out"), "--read-splits", "3"])
    assert again["counts"] == manifest["counts"]
    assert again["reconciliation"]["ok"]
    for table in TABLES:
        files = sorted(p.name for p in (out / table).iterdir())
        assert files == sorted(p.name for p in (tmp_path / "out" / table).iterdir())
        for name in files:
            assert (out / table / name).read_bytes() == (tmp_path / "out" / table / name).read_bytes(), name
    assert not (tmp_path / "out" / "_parts").exists()


def test_streamed_import_equals_the_per_stage_graph(corpus_run, tmp_path, monkeypatch):
    """An import run goes through one DoFn per share (transforms/streamed.py), which calls the same
    functions as the per-stage graph an engine run uses. Forced through the per-stage graph (which
    also dedupes before writing), the malformed corpus gives the same shards, byte for byte, the
    same manifest counts and the same Beam counters (``duplicates`` too, counted where each drops
    them), but for one difference: the per-stage graph drops a duplicate trajectory before grading
    it, the streamed import grades it and drops it where the shards are merged."""
    from prmflow.pipelines import label
    from prmflow.schemas import TABLES

    _, manifest, out = corpus_run
    monkeypatch.setattr(label, "streams", lambda config: False)
    staged = run([str(out.parent / "c.yaml"), "--output", str(tmp_path / "staged")])
    assert staged["reconciliation"]["ok"]
    assert staged["counts"] == manifest["counts"]
    streamed, per_stage = dict(manifest["beam_counters"]), dict(staged["beam_counters"])
    duplicates = sum(manifest["counts"]["duplicates"].values())
    assert per_stage.pop("duplicates") == streamed.pop("duplicates") == duplicates > 0
    graded = {k: streamed.pop(k) - per_stage.pop(k, 0) for k in list(streamed) if k.startswith("outcome_")}
    assert sum(graded.values()) == duplicates and min(graded.values()) >= 0
    assert not [k for k in per_stage if k.startswith("outcome_")]
    assert streamed == per_stage
    for table in TABLES:
        for path in sorted((out / table).iterdir()):
            assert path.read_bytes() == (tmp_path / "staged" / table / path.name).read_bytes(), path.name
