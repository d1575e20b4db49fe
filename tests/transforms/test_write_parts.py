"""Streamed writing: rows -> sorted part files -> shards merged in bounded id-range passes, one row per id."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prmflow.ids import content_id
from prmflow.schemas import TABLES
from prmflow.transforms import write

SCHEMA = pa.schema([("row_id", pa.string()), ("source", pa.string()), ("value", pa.int64())])


@pytest.fixture(autouse=True)
def small_batches(monkeypatch):
    monkeypatch.setattr(write, "PART_GROUP_ROWS", 3)  # parts of several batches, however small


def write_part(tmp_path, name: str, rows: list[dict]) -> dict:
    table = pa.Table.from_pylist(rows, schema=write.part_schema(SCHEMA)).sort_by(write._sort_keys("row_id"))
    path = str(tmp_path / name)
    bounds = write.write_part(path, table, "row_id")
    return {"table": "t", "shard": 0, "path": path, "rows": len(rows), "bounds": bounds}


def rows_of(ids, file="0a.jsonl", start=0, value=0):
    return [{"row_id": i, "source": "s", "value": value, write.READ_FILE: file, write.READ_INDEX: start + k}
            for k, i in enumerate(ids)]


@pytest.mark.parametrize("merge_rows", [1, 4, 1000])
def test_merge_sorts_keeps_the_first_read_of_each_id_and_drops_hidden_columns(tmp_path, monkeypatch, merge_rows):
    monkeypatch.setattr(write, "MERGE_ROWS", merge_rows)
    ids = sorted(content_id(i) for i in range(20))
    a = write_part(tmp_path, "a.arrow", rows_of(ids[::2] + ids[:3], file="0b.jsonl", value=2))
    b = write_part(tmp_path, "b.arrow", rows_of(ids[1::2] + ids[:1], file="0a.jsonl", start=5, value=1))
    out = tmp_path / "out"
    stats = write.merge_shard(str(out), "t", 0, 1, SCHEMA, "row_id", [a, b],
                              lambda kept, dropped: [(("dropped", "s"), dropped.num_rows)])
    table = pq.read_table(stats["path"])
    assert table.schema.names == SCHEMA.names  # the read-order columns never reach a shard
    assert table["row_id"].to_pylist() == ids  # sorted, one per id
    # ids[0] was read three times: once from 0a.jsonl, twice from 0b.jsonl: 0a.jsonl wins
    assert table.filter(pa.compute.equal(table["row_id"], ids[0]))["value"].to_pylist() == [1]
    assert table.filter(pa.compute.equal(table["row_id"], ids[2]))["value"].to_pylist() == [2]
    assert stats["rows"] == 20
    assert table.filter(pa.compute.equal(table["row_id"], ids[1]))["value"].to_pylist() == [1]
    assert sum(n for (_, _), n in stats["tallies"]) == 4  # ids[0] read 3 times, ids[1] and ids[2] twice


def test_merge_passes_do_not_change_the_bytes(tmp_path, monkeypatch):
    monkeypatch.setattr(write, "ROW_GROUP_ROWS", 10)
    ids = [content_id(i) for i in range(55)]
    parts = [write_part(tmp_path, f"p{k}.arrow", rows_of(ids[k::3], start=k)) for k in range(3)]
    written = []
    for merge_rows in (1000, 7, 1):
        monkeypatch.setattr(write, "MERGE_ROWS", merge_rows)
        stats = write.merge_shard(str(tmp_path / f"out{merge_rows}"), "t", 0, 1, SCHEMA, "row_id", parts)
        written.append(open(stats["path"], "rb").read())
    assert written[0] == written[1] == written[2]
    table = pq.read_table(stats["path"])
    assert table["row_id"].to_pylist() == sorted(ids)
    assert pq.ParquetFile(stats["path"]).metadata.num_row_groups == 6  # 5 groups of 10, then 5


def test_a_shard_without_parts_is_the_empty_file_write_rows_gives(tmp_path):
    stats = write.merge_shard(str(tmp_path / "a"), "t", 0, 2, SCHEMA, "row_id", [])
    write.write_rows(str(tmp_path / "b.parquet"), [], SCHEMA)
    assert stats["rows"] == 0
    assert open(stats["path"], "rb").read() == (tmp_path / "b.parquet").read_bytes()


def test_without_dedupe_every_row_is_kept(tmp_path):
    ids = [content_id(1)] * 3
    part = write_part(tmp_path, "a.arrow", rows_of(ids))
    stats = write.merge_shard(str(tmp_path / "o"), "t", 0, 1, SCHEMA, "row_id", [part], dedupe=False)
    assert stats["rows"] == 3


def test_range_bounds_cover_every_id_once():
    for passes in (1, 2, 3, 7):
        bounds = write._bounds(passes)
        assert len(bounds) == passes and bounds[0][0] is None and bounds[-1][1] is None
        for (_, hi), (lo, _) in zip(bounds, bounds[1:], strict=False):
            assert hi == lo


# -- Parquet options: no dictionary on ids and free text ------------------------------------------

@pytest.mark.parametrize("table", sorted(TABLES))
def test_dictionary_columns_are_real_leaf_paths_without_ids_or_free_text(tmp_path, table):
    schema = TABLES[table][1]
    path = str(tmp_path / "empty.parquet")
    pq.write_table(schema.empty_table(), path)
    leaves = {c.path for c in pq.ParquetFile(path).schema}  # what Parquet calls each column
    chosen = write.dictionary_columns(schema)
    assert set(chosen) <= leaves and len(chosen) == len(set(chosen))
    assert not [c for c in chosen if c.split(".")[0].endswith("_id") or c.split(".")[0] in write.PLAIN_TEXT_COLUMNS]
    # every other leaf keeps its dictionary: a nested one (a list's elements) included
    assert {c for c in leaves if c not in chosen} == {
        c for c in leaves if c.split(".")[0].endswith("_id") or c.split(".")[0] in write.PLAIN_TEXT_COLUMNS}


def test_shards_write_ids_and_text_plain_and_the_rest_with_a_dictionary(tmp_path):
    schema = TABLES["trajectories"][1]
    rows = [{"trajectory_id": content_id("t", i), "problem_id": content_id("p", i % 3), "source": "gsm8k",
             "domain": "math", "origin": "imported", "text": f"step {i}\nanswer {i}", "steps": [f"step {i}", f"answer {i}"],
             "step_spans": [[0, 6], [7, 15]], "outcome": float(i % 2)} for i in range(200)]
    path = str(tmp_path / "t.parquet")
    write.write_rows(path, rows, schema)
    meta = pq.ParquetFile(path).metadata.row_group(0)
    encodings = {meta.column(i).path_in_schema: meta.column(i).encodings for i in range(meta.num_columns)}
    for plain in ("trajectory_id", "problem_id", "text", "steps.list.element"):
        assert not any("DICTIONARY" in e for e in encodings[plain]), plain
    for dictionary in ("source", "origin", "outcome"):
        assert any("DICTIONARY" in e for e in encodings[dictionary]), dictionary
    assert pq.read_table(path).to_pylist()[:1] == pa.Table.from_pylist(rows[:1], schema=schema).to_pylist()
