"""Part files (transforms/write.py): ``PartWriter`` buffers and flushes rows as Arrow IPC parts with
each batch's id bounds, and a merge pass (``_Part``) reads only the batches that overlap its id range."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
from apache_beam.transforms.window import GlobalWindow

from prmflow.ids import content_id
from prmflow.transforms import write

SCHEMA = pa.schema([("row_id", pa.string()), ("source", pa.string()), ("value", pa.int64())])


def row(row_id: str, value: int = 0, file: str = "0a.jsonl", index: int = 0) -> dict:
    return {"row_id": row_id, "source": "s", "value": value, write.READ_FILE: file, write.READ_INDEX: index}


def part_of(tmp_path, name: str, rows: list[dict]) -> dict:
    table = pa.Table.from_pylist(rows, schema=write.part_schema(SCHEMA)).sort_by(write._sort_keys("row_id"))
    path = str(tmp_path / name)
    return {"table": "t", "shard": 0, "path": path, "rows": len(rows),
            "bounds": write.write_part(path, table, "row_id")}


class CountingPart(write._Part):
    """A ``_Part`` that records which batches it read."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.read_batches: list[int] = []
        get_batch = self.file.get_batch

        class File:
            schema = self.file.schema

            @staticmethod
            def get_batch(i):
                self.read_batches.append(i)
                return get_batch(i)

        self.file = File()


# -- PartWriter --------------------------------------------------------------------------------------------

def corpus(n: int = 120) -> list[dict]:
    ids = [content_id(i) for i in range(n)]
    rows = [row(i, value=k, file="0b.jsonl", index=k) for k, i in enumerate(ids)]
    # ids read again, later in another file and earlier in this one: dedupe has work across flushes
    rows += [row(ids[k], value=1000 + k, file="0c.jsonl", index=k) for k in range(0, n, 7)]
    rows += [row(ids[k], value=2000 + k, file="0a.jsonl", index=n + k) for k in range(3, n, 11)]
    return rows


def merged(out_dir, parts: list[dict], shards: int) -> list[bytes]:
    out = []
    for shard in range(shards):
        stats = write.merge_shard(str(out_dir), "t", shard, shards, SCHEMA, "row_id", parts)
        out.append(open(stats["path"], "rb").read())
    return out


def test_part_writer_round_trip_does_not_depend_on_flush_sizes(tmp_path, monkeypatch):
    rows, shards = corpus(), 3
    one = write.PartWriter(str(tmp_path / "one"), "t", SCHEMA, "row_id", shards)
    assert one.add_many(rows) == []  # nothing written before close with the real sizes
    big = one.close()
    assert sorted(p["shard"] for p in big) == [0, 1, 2]
    expected = merged(tmp_path / "one", big, shards)

    monkeypatch.setattr(write, "ARROW_ROWS", 3)
    monkeypatch.setattr(write, "PART_ROWS", 7)
    monkeypatch.setattr(write, "PART_GROUP_ROWS", 2)
    monkeypatch.setattr(write, "MERGE_ROWS", 5)
    small = write.PartWriter(str(tmp_path / "small"), "t", SCHEMA, "row_id", shards)
    parts = []
    for r in rows:
        parts.extend(small.add(r))
    assert len(parts) > 3 * shards  # flushed several times along the way
    parts.extend(small.close())
    assert small.close() == []  # nothing left
    assert sum(p["rows"] for p in parts) == len(rows)
    for p in parts:
        assert p["table"] == "t" and p["path"].endswith(".arrow")
        assert f"/{write.PARTS_DIR}/t/{p['shard']:05d}-" in p["path"]
        with pa.OSFile(p["path"]) as f:
            reader = ipc.open_file(f)
            batches = [reader.get_batch(i) for i in range(reader.num_record_batches)]
        assert [b.num_rows for b in batches[:-1]] == [2] * (len(batches) - 1)
        assert p["bounds"] == [[b["row_id"][0].as_py(), b["row_id"][-1].as_py()] for b in batches]
        ids = [i for b in batches for i in b["row_id"].to_pylist()]
        assert ids == sorted(ids) and {int(i, 16) % shards for i in ids} == {p["shard"]}
    assert merged(tmp_path / "small", parts, shards) == expected

    table = pq.read_table(str(tmp_path / "one" / "t"))
    assert table.num_rows == 120 and sorted(table["row_id"].to_pylist()) == sorted(content_id(i) for i in range(120))


def test_write_parts_is_the_part_writer_in_a_dofn(tmp_path, monkeypatch):
    monkeypatch.setattr(write, "ARROW_ROWS", 4)
    monkeypatch.setattr(write, "PART_ROWS", 10)
    rows = corpus(30)
    fn = write.WriteParts(str(tmp_path), "t", SCHEMA, "row_id", 2)
    fn.start_bundle()
    stats = [s for r in rows for s in fn.process(r)]
    assert stats
    last = list(fn.finish_bundle())
    assert last and all(w.windows == (GlobalWindow(),) for w in last)
    stats += [w.value for w in last]
    assert sum(s["rows"] for s in stats) == len(rows)
    fn.start_bundle()
    assert list(fn.finish_bundle()) == []  # an empty bundle writes nothing


def one_at_a_time(out_dir, rows: list[dict], shards: int) -> list[dict]:
    one = write.PartWriter(str(out_dir), "t", SCHEMA, "row_id", shards)
    return [p for r in rows for p in one.add(r)] + one.close()


def test_add_many_writes_what_add_writes(tmp_path, monkeypatch):
    monkeypatch.setattr(write, "ARROW_ROWS", 4)
    monkeypatch.setattr(write, "PART_ROWS", 9)
    rows, shards = corpus(40), 3
    parts_one = one_at_a_time(tmp_path / "one", rows, shards)
    many = write.PartWriter(str(tmp_path / "many"), "t", SCHEMA, "row_id", shards)
    parts_many = [p for k in range(0, len(rows), 5) for p in many.add_many(iter(rows[k:k + 5]))] + many.close()
    assert len(parts_many) > shards  # flushed along the way, not only at close
    assert merged(tmp_path / "one", parts_one, shards) == merged(tmp_path / "many", parts_many, shards)


def test_add_table_writes_what_add_writes(tmp_path, monkeypatch):
    monkeypatch.setattr(write, "ARROW_ROWS", 4)
    monkeypatch.setattr(write, "PART_ROWS", 9)
    rows, shards = corpus(40), 3
    parts_one = one_at_a_time(tmp_path / "one", rows + rows[:1], shards)
    tables = write.PartWriter(str(tmp_path / "tables"), "t", SCHEMA, "row_id", shards)
    schema = write.part_schema(SCHEMA)
    parts = [p for k in range(0, len(rows), 6) for p in tables.add_table(pa.Table.from_pylist(rows[k:k + 6], schema=schema))]
    parts += tables.add(rows[0]) + tables.close()  # dict rows and tables mix in one writer
    assert len(parts) > shards
    assert merged(tmp_path / "one", parts_one, shards) == merged(tmp_path / "tables", parts, shards)
    with pytest.raises(ValueError, match="not the part schema"):
        tables.add_table(pa.Table.from_pylist(rows[:2], schema=schema).drop_columns(["source"]))


STEP_SCHEMA = pa.schema([("step_id", pa.string()), ("trajectory_id", pa.string()), ("step_index", pa.int64()),
                         ("value", pa.int64())])


def test_a_row_order_shards_and_sorts_by_its_column_then_the_next_and_dedupes_by_unique(tmp_path, monkeypatch):
    """Steps go with their trajectory: shard and order by (trajectory_id, step_index); one row per
    step_id (a function of those two), the first read kept, however the rows were flushed."""
    order = write.RowOrder("trajectory_id", ("step_index",), unique="step_id")
    trajectories = [content_id("t", i) for i in range(30)]
    rows = []
    for k, t in enumerate(trajectories):
        for i in reversed(range(k % 4 + 1)):  # steps arrive out of order
            rows.append({"step_id": content_id(t, i), "trajectory_id": t, "step_index": i, "value": k,
                         write.READ_FILE: "0b.jsonl", write.READ_INDEX: k})
    # a trajectory read again, later: its steps are dropped at the merge
    again = [dict(r, value=-1, **{write.READ_INDEX: 99}) for r in rows if r["trajectory_id"] == trajectories[5]]
    monkeypatch.setattr(write, "ARROW_ROWS", 4)
    monkeypatch.setattr(write, "PART_ROWS", 9)
    monkeypatch.setattr(write, "PART_GROUP_ROWS", 3)
    monkeypatch.setattr(write, "MERGE_ROWS", 7)
    shards = 3
    writer = write.PartWriter(str(tmp_path), "steps", STEP_SCHEMA, order, shards)
    parts = writer.add_many(again + rows) + writer.close()
    for p in parts:
        assert {int(t, 16) % shards for b in p["bounds"] for t in b} == {p["shard"]}
    seen = []
    for shard in range(shards):
        stats = write.merge_shard(str(tmp_path), "steps", shard, shards, STEP_SCHEMA, order, parts)
        table = pq.read_table(stats["path"])
        keys = list(zip(table["trajectory_id"].to_pylist(), table["step_index"].to_pylist(), strict=True))
        assert keys == sorted(keys) and {int(t, 16) % shards for t, _ in keys} <= {shard}
        assert stats["rows"] == table.num_rows
        seen += table.to_pylist()
    assert sorted(r["step_id"] for r in seen) == sorted(r["step_id"] for r in rows)  # each step once
    assert all(r["value"] != -1 for r in seen)  # the first read of the duplicate trajectory kept


NULLABLE = pa.schema([("row_id", pa.string()), ("score", pa.float64()), ("tags", pa.list_(pa.string())),
                      ("value", pa.int64())])


def test_columns_without_a_value_stay_out_of_parts_and_come_back_as_nulls(tmp_path, monkeypatch):
    """A flush leaves out the columns no row of it has a value in (an import's MC and judge columns);
    the merge puts them back as nulls, also beside parts from flushes where they had values."""
    monkeypatch.setattr(write, "ARROW_ROWS", 4)
    monkeypatch.setattr(write, "PART_ROWS", 8)
    rows = [{"row_id": content_id(i), "score": None, "tags": None, "value": i, write.READ_FILE: "0a", write.READ_INDEX: i}
            for i in range(8)]  # the first flush: score and tags without a value
    rows += [{"row_id": content_id(i), "score": i / 10, "tags": [f"t{i}"] if i % 2 else [], "value": i,
              write.READ_FILE: "0a", write.READ_INDEX: i} for i in range(8, 14)]
    writer = write.PartWriter(str(tmp_path), "t", NULLABLE, "row_id", 2)
    first = writer.add_many(rows[:8])
    assert first and writer.add_many(rows[8:]) == []
    last = writer.close()
    for part, columns in ((p, {"row_id", "value", *write.HIDDEN}) for p in first):
        with pa.OSFile(part["path"]) as f:
            assert set(ipc.open_file(f).schema.names) == columns  # score and tags left out
    for part in last:
        with pa.OSFile(part["path"]) as f:
            assert {"score", "tags"} <= set(ipc.open_file(f).schema.names)
    got = []
    for shard in range(2):
        stats = write.merge_shard(str(tmp_path), "t", shard, 2, NULLABLE, "row_id", first + last)
        table = pq.read_table(stats["path"])
        assert table.schema == NULLABLE
        got += table.to_pylist()
    expected = [{k: v for k, v in r.items() if k not in write.HIDDEN} for r in rows]
    assert sorted(got, key=lambda r: r["row_id"]) == sorted(expected, key=lambda r: r["row_id"])


def test_conform_orders_casts_and_fills_missing_columns():
    table = pa.table({"value": pa.array([1, 2], pa.int32()), "row_id": ["a", "b"]})
    out = write.conform(table, NULLABLE)
    assert out.schema == NULLABLE
    assert out.to_pylist() == [{"row_id": "a", "score": None, "tags": None, "value": 1},
                               {"row_id": "b", "score": None, "tags": None, "value": 2}]


# -- the shard of an id: int(id, 16) % num_shards, read from the Arrow buffer -------------------------------

@pytest.mark.parametrize("num_shards", [1, 2, 3, 4, 7, 16, 1000, 100_000])
def test_shard_numbers_follow_the_python_rule_on_content_ids(num_shards):
    ids = [content_id(i) for i in range(3000)]
    assert write.shard_numbers(pa.array(ids), num_shards).tolist() == [int(i, 16) % num_shards for i in ids]


def test_shard_numbers_on_sliced_chunked_and_unusual_ids():
    ids = [content_id(i) for i in range(40)]
    chunked = pa.chunked_array([pa.array(ids[:15]), pa.array(ids[15:])]).slice(7, 25)
    assert write.shard_numbers(chunked, 5).tolist() == [int(i, 16) % 5 for i in ids[7:32]]
    # upper case, other widths, and forms only Python's int() reads (prefix, underscore, spaces)
    odd = ["ABCDEF0123", "abcdef0123", "f", "0" * 64, "F" * 70, "0x1f", "1_f", " 1f "]
    assert write.shard_numbers(pa.array(odd), 7).tolist() == [int(i, 16) % 7 for i in odd]
    uneven = ["ab", "abc", "abcd"]
    assert write.shard_numbers(pa.array(uneven), 3).tolist() == [int(i, 16) % 3 for i in uneven]
    assert write.shard_numbers(pa.array([], pa.string()), 3).tolist() == []


def test_shard_numbers_fail_as_python_does_on_ids_that_are_not_hex():
    with pytest.raises(ValueError):
        write.shard_numbers(pa.array([content_id(1), "not-hex-at-all!!"]), 4)
    with pytest.raises(TypeError):
        write.shard_numbers(pa.array([content_id(1), None]), 4)


# -- reading a part in a merge pass ------------------------------------------------------------------------

def test_a_pass_reads_only_the_batches_that_overlap_its_range(tmp_path, monkeypatch):
    monkeypatch.setattr(write, "PART_GROUP_ROWS", 4)
    ids = sorted(content_id(i) for i in range(20))
    part = part_of(tmp_path, "p.arrow", [row(i) for i in ids])
    assert len(part["bounds"]) == 5
    opened = CountingPart(part["path"], "row_id", part["bounds"])

    def read(lo, hi):
        opened.read_batches.clear()
        table = opened.read(lo, hi)
        return (None if table is None else table["row_id"].to_pylist()), list(opened.read_batches)

    assert read(ids[5], ids[11]) == (ids[5:11], [1, 2])  # rows 4-7 and 8-11
    assert read(None, ids[4]) == (ids[:4], [0])  # hi is exclusive: the batch that starts at it is not read
    assert read(ids[19], None) == (ids[19:], [4])
    assert read(ids[7], ids[8]) == ([ids[7]], [1])
    assert read(ids[7] + "0", ids[8]) == (None, [])  # between two batches
    assert read(None, None) == (ids, [0, 1, 2, 3, 4])
    opened.close()


def test_parts_without_bounds_and_parts_not_on_local_disk_read_the_same(tmp_path, monkeypatch):
    monkeypatch.setattr(write, "PART_GROUP_ROWS", 3)
    ids = sorted(content_id(i) for i in range(30))
    part = part_of(tmp_path, "p.arrow", [row(i, value=k) for k, i in enumerate(ids)])
    lo, hi = ids[10], ids[17]
    expected = ids[10:17]
    local = write._Part(part["path"], "row_id", part["bounds"])
    every = write._Part(part["path"], "row_id")  # no bounds: every batch is read, then filtered
    monkeypatch.setattr(write, "is_local_path", lambda path: False)
    remote = write._Part(part["path"], "row_id", part["bounds"])  # read whole through FileSystems.open
    assert isinstance(remote.source, pa.BufferReader) and isinstance(local.source, pa.OSFile)
    for opened in (local, every, remote):
        assert opened.read(lo, hi)["row_id"].to_pylist() == expected
        assert opened.read(lo, hi)["value"].to_pylist() == list(range(10, 17))
        opened.close()


@pytest.mark.parametrize("passes", [1, 2, 3, 7])
def test_passes_read_every_row_once_from_any_batches(tmp_path, monkeypatch, passes):
    monkeypatch.setattr(write, "PART_GROUP_ROWS", 3)
    ids = sorted(content_id(i) for i in range(50))
    part = part_of(tmp_path, "p.arrow", [row(i) for i in ids])
    opened = write._Part(part["path"], "row_id", part["bounds"])
    seen = []
    for lo, hi in write._bounds(passes):
        table = opened.read(lo, hi)
        got = [] if table is None else table["row_id"].to_pylist()
        assert all((lo is None or i >= lo) and (hi is None or i < hi) for i in got)
        seen += got
    assert seen == ids
    opened.close()


def test_rows_whose_ids_straddle_the_pass_bounds(tmp_path, monkeypatch):
    """Batches that span a cut between passes: each side goes to its own pass, none twice or lost."""
    monkeypatch.setattr(write, "PART_GROUP_ROWS", 4)
    monkeypatch.setattr(write, "MERGE_ROWS", 5)  # 11 rows: 3 passes
    cuts = [lo for lo, _ in write._bounds(3)[1:]]
    ids = []
    for cut in cuts:  # just below, at, and just above the cut
        below = f"{int(cut, 16) - 1:08x}"
        ids += [below + "ffffffff", cut + "00000000", cut + "00000001", below + "fffffffe"]
    ids += ["0000000000000001", "ffffffffffffffff"]
    a = part_of(tmp_path, "a.arrow", [row(i, value=1) for i in ids[::2]])
    b = part_of(tmp_path, "b.arrow", [row(i, value=2, index=1) for i in ids[1::2]] + [row(ids[2], value=3, index=9)])
    assert any(lo < cut <= hi for cut in cuts for lo, hi in a["bounds"] + b["bounds"])  # a batch straddles
    seen = []
    original = write._Part.read

    def read(self, lo, hi):
        table = original(self, lo, hi)
        seen.append((lo, hi, [] if table is None else table["row_id"].to_pylist()))
        return table

    monkeypatch.setattr(write._Part, "read", read)
    stats = write.merge_shard(str(tmp_path / "o"), "t", 0, 1, SCHEMA, "row_id", [a, b])
    table = pq.read_table(stats["path"])
    assert table["row_id"].to_pylist() == sorted(ids) and stats["rows"] == len(ids)
    assert table["value"].to_pylist() == [1 if i in ids[::2] else 2 for i in sorted(ids)]
    assert len({(lo, hi) for lo, hi, _ in seen}) == 3
    for lo, hi, got in seen:
        assert all((lo is None or i >= lo) and (hi is None or i < hi) for i in got)


def test_dedupe_keeps_the_first_read_row_across_parts(tmp_path):
    same, other = content_id("same"), content_id("other")
    # the parts' order (by path) is not the read order: the first read is in the last part
    parts = [
        part_of(tmp_path, "a.arrow", [row(same, value=1, file="0b.jsonl", index=0), row(other, value=1)]),
        part_of(tmp_path, "b.arrow", [row(same, value=2, file="1", index=write._LAST)]),  # no file: last
        part_of(tmp_path, "c.arrow", [row(same, value=3, file="0a.jsonl", index=10)]),
        part_of(tmp_path, "d.arrow", [row(same, value=4, file="0a.jsonl", index=3)]),  # 3 < 10 as numbers
    ]
    dropped = []
    stats = write.merge_shard(str(tmp_path / "o"), "t", 0, 1, SCHEMA, "row_id", parts,
                              lambda kept, gone: dropped.extend(gone["value"].to_pylist()) or [])
    table = pq.read_table(stats["path"]).to_pylist()
    assert {r["row_id"]: r["value"] for r in table} == {same: 4, other: 1}
    assert sorted(dropped) == [1, 2, 3] and stats["rows"] == 2
