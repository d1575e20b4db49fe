"""Acceptance: malformed rows give zero crashes, one dead letter per bad row with a specific reason,
and counters that reconcile."""

import json

import duckdb
import yaml

from prmflow.pipelines.label import run


def test_every_bad_row_is_one_dead_letter_with_its_reason(tmp_path, test_data):
    CORPUS = test_data / "malformed"
    expected = json.loads((CORPUS / "expected_reasons.json").read_text())
    assert len(expected) >= 20
    config = {
        "name": "malformed",
        "inputs": [
            {"name": "pb", "format": "processbench", "path": str(CORPUS / "processbench.jsonl")},
            {"name": "gsm", "format": "gsm8k", "path": str(CORPUS / "gsm8k.jsonl")},
            {"name": "prm", "format": "prm800k", "path": str(CORPUS / "prm800k.jsonl")},
            {"name": "gen", "format": "jsonl", "path": str(CORPUS / "generic.jsonl"),
             "fields": {"prompt": "q", "solution": "sol", "gold_outcome": "ok"}},
        ],
        "segment": {"strategy": "lines"},
        "outcome": {"labeler": "math", "options": {"timeout_s": None}},
        "limits": {"max_record_bytes": 4096, "max_steps": 50},
    }
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(config))
    manifest = run([str(cfg), "--output", str(tmp_path / "out")])

    rows = duckdb.sql(
        f"SELECT source_file, location, reason, detail, raw FROM read_parquet('{tmp_path}/out/dead_letters/*.parquet')"
    ).fetchall()
    got = {f"{f.rsplit('/', 1)[-1]}:{loc}": reason for f, loc, reason, _, _ in rows}
    assert len(rows) == len(got) == len(expected)  # one dead letter per bad row
    assert got == expected
    assert all(detail and raw for _, _, _, detail, raw in rows)
    not_utf8 = next(r for r in rows if r[2] == "not_utf8")
    assert "\\xff" in not_utf8[4]  # the raw bytes are kept, escaped

    counts, rec = manifest["counts"], manifest["reconciliation"]
    assert rec["ok"], rec
    lines = sum(1 for p in CORPUS.glob("*.jsonl") for line in p.read_bytes().splitlines() if line.strip())
    assert sum(counts["records_read"].values()) == lines
    good = lines - len(expected)
    assert sum(counts["trajectories"].values()) == good
    assert counts["dead_letters_rows"]["all"] == len(expected)
