"""Parquet shards with an explicit schema and reproducible contents.

Beam's WriteToParquet spreads rows over shards at random; here a row goes to shard
``int(id, 16) % num_shards`` and is sorted by id within it, so the same input gives byte-for-byte the
same rows in the same files, however the runner bundled them. Each shard is written to a temporary
name and renamed when complete. Rows reach the shards through part files (see "streamed writing").
"""

from __future__ import annotations

import uuid
from typing import NamedTuple

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindows

from prmflow.sources.base import clean_text

# zstd at level 1 (Arrow's default): a 200k-trajectory import's shards (problems, trajectories,
# steps) rewritten at level 1 and at level 3 took 2.07 vs 2.45 CPU seconds and came to 53.6 vs 55.4 MB:
# level 3 was slower and, on rows sorted by a hashed id, no smaller
PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 1}
# Columns written without a dictionary: content ids (one value per row, or per few rows) and free
# text. Parquet writers try a dictionary on every column and drop it once it outgrows its page; on
# these it only cost time and bytes. A 200k-trajectory import's shards (steps in trajectory order),
# rewritten with a dictionary on every column and with these options, median CPU s of 5: problems
# 0.17 -> 0.10 s and 6.4 -> 5.0 MB, trajectories 0.41 -> 0.37 s and 12.7 -> 12.5 MB, steps 0.57 ->
# 0.47 s and 19.5 -> 15.5 MB. Every other column (labels, sources, answers, small numbers) keeps its
# dictionary.
PLAIN_TEXT_COLUMNS = frozenset({
    "prompt", "demonstration", "demonstration_steps", "rubric", "tests", "text", "steps", "thinking",
    "response", "step_text", "prefix", "completion", "raw", "detail", "metadata", "source_index",
})


def _leaf_paths(field: pa.Field, prefix: str = "") -> list[str]:
    """The Parquet column paths of ``field``'s leaves (``steps.list.element`` for a list of strings)."""
    path = prefix + field.name
    if pa.types.is_list(field.type) or pa.types.is_large_list(field.type):
        return _leaf_paths(pa.field("element", field.type.value_type), path + ".list.")
    if pa.types.is_struct(field.type):
        return [p for child in field.type for p in _leaf_paths(child, path + ".")]
    return [path]


def dictionary_columns(schema: pa.Schema) -> list[str]:
    """The leaf columns of ``schema`` that Parquet files write with a dictionary: all but ids
    (``*_id``) and free text (PLAIN_TEXT_COLUMNS)."""
    return [path for field in schema
            if not field.name.endswith("_id") and field.name not in PLAIN_TEXT_COLUMNS
            for path in _leaf_paths(field)]


def parquet_options(schema: pa.Schema) -> dict:
    """How every shard of a table with ``schema`` is written (the same options give the same bytes)."""
    return {**PARQUET_OPTIONS, "use_dictionary": dictionary_columns(schema)}


def shard_path(out_dir: str, table: str, shard: int, num_shards: int) -> str:
    return FileSystems.join(out_dir, table, f"{table}-{shard:05d}-of-{num_shards:05d}.parquet")


def write_rows(path: str, rows: list[dict], schema: pa.Schema) -> dict:
    """Write one Parquet file atomically; returns its stats for the manifest."""
    table = rows_table(rows, schema)
    tmp = path + ".tmp"
    with FileSystems.create(tmp) as f:
        pq.write_table(table, f, **parquet_options(schema))
    FileSystems.rename([tmp], [path])
    return {"path": path, "rows": table.num_rows}


def _without_surrogates(value):
    if isinstance(value, str):
        return clean_text(value)[0]
    if isinstance(value, dict):
        return {k: _without_surrogates(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_without_surrogates(v) for v in value]
    return value


# -- streamed writing: part files per bundle, then one merge per shard ----------------------------
# Rows are never grouped as Python objects. Each worker buffers the rows it produced (``PartWriter``),
# and every PART_ROWS rows writes them, split by shard and sorted by id, as part files under
# ``out_dir/_parts/``: Arrow IPC files (uncompressed, record batches of PART_GROUP_ROWS rows); it
# passes on only the parts' paths, with each batch's first and last id. Once every part is written,
# each shard is merged from its parts in passes over id ranges of about MERGE_ROWS rows, reading
# only the batches that overlap the pass, so neither step holds more than a bounded number of rows,
# whatever the input size. The merge also keeps one row per id (the first read: ``READ_FILE``/
# ``READ_INDEX``, hidden columns that never reach the shard), and counts the shard's rows for the
# manifest from what it wrote. Parts live only for one run: their format can change at any time.

PARTS_DIR = "_parts"
PART_ROWS = 50_000
MERGE_ROWS = 25_000
READ_FILE, READ_INDEX = "_read_file", "_read_index"
HIDDEN = (READ_FILE, READ_INDEX)
_LAST = 2**62  # read_order(): a row without a file or an index sorts after those with one


def _read_file(problem) -> str:
    return "1" if problem.source_file is None else "0" + problem.source_file


def _read_index(problem) -> int:
    return _LAST if problem.source_index is None else problem.source_index


def read_key(problem) -> dict:
    """The hidden read-order columns of a row derived from ``problem`` (``sources.duplicates.read_order``)."""
    return {READ_FILE: _read_file(problem), READ_INDEX: _read_index(problem)}


def read_key_columns(problems: list) -> list[pa.Array]:
    """``read_key`` of each problem, as the two hidden columns."""
    return [pa.array([_read_file(p) for p in problems], pa.string()),
            pa.array([_read_index(p) for p in problems], pa.int64())]


def part_schema(schema: pa.Schema) -> pa.Schema:
    return schema.append(pa.field(READ_FILE, pa.string())).append(pa.field(READ_INDEX, pa.int64()))


class RowOrder(NamedTuple):
    """How a table's rows are sharded, merged and ordered: shard ``int(column, 16) % num_shards``,
    sorted by ``column`` then ``then`` (then read order), one row kept per ``unique`` (default:
    ``column``). ``unique`` must be a function of (``column``, *``then``), so that rows sharing it
    sort next to each other: steps go with their trajectory (``trajectory_id``, ``step_index``) and
    a step id is the hash of those two."""

    column: str
    then: tuple[str, ...] = ()
    unique: str | None = None

    @property
    def key(self) -> str:
        return self.unique or self.column


def row_order(order: str | RowOrder) -> RowOrder:
    """``order`` as a RowOrder; a plain column name shards, sorts and dedupes by that one column."""
    return order if isinstance(order, RowOrder) else RowOrder(order)


def _sort_keys(order: str | RowOrder) -> list[tuple[str, str]]:
    order = row_order(order)
    return [(order.column, "ascending"), *((c, "ascending") for c in order.then),
            (READ_FILE, "ascending"), (READ_INDEX, "ascending")]


def rows_table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    """Dict rows as a table of ``schema``; a lone surrogate in some text is written as U+FFFD."""
    try:
        return pa.Table.from_pylist(rows, schema=schema)
    except UnicodeEncodeError:
        # a lone surrogate that got past the sources' cleaning (they replace them at the edge): the
        # rows are still written, with U+FFFD in its place, rather than the job failing at the end
        return pa.Table.from_pylist([_without_surrogates(r) for r in rows], schema=schema)


class PartWriter:
    """One table's rows -> part files (each one shard's rows of one flush, sorted by id); no Beam, so
    that a DoFn can own one per table. ``add`` and ``close`` return the stats of the parts they wrote:
    ``{"table", "shard", "path", "rows", "bounds"}``, ``bounds`` the first and last id of each batch.

    Rows wait as dicts only until ARROW_ROWS of them arrive, then as Arrow columns (a few hundred
    bytes a row), until PART_ROWS rows make a part per shard. A flush finds every row's shard from
    its id column at once (``shard_numbers``) and sorts the flush's rows by (shard, id, read order)
    in one pass, so no Python work is done per row beyond buffering it. Columns that no row of a
    flush has a value in are left out of its parts (``_empty_columns``; the merge restores them).
    Each row carries the hidden ``READ_FILE``/``READ_INDEX`` keys (``read_key``)."""

    def __init__(self, out_dir: str, table: str, schema: pa.Schema, order: str | RowOrder,
                 num_shards: int) -> None:
        self.out_dir, self.table, self.schema = out_dir, table, part_schema(schema)
        self.order, self.num_shards = row_order(order), num_shards
        self.rows: list[dict] = []
        self.tables: list[pa.Table] = []

    def add(self, row: dict) -> list[dict]:
        self.rows.append(row)
        if len(self.rows) >= ARROW_ROWS:
            return self._spill()
        return []

    def add_many(self, rows) -> list[dict]:
        self.rows.extend(rows)
        if len(self.rows) >= ARROW_ROWS:
            return self._spill()
        return []

    def add_table(self, table: pa.Table) -> list[dict]:
        """Rows already in Arrow, in the part schema (``part_schema``: the table's, with the hidden keys)."""
        if not table.schema.equals(self.schema):
            raise ValueError(f"{self.table}: rows in schema {table.schema} are not the part schema {self.schema}")
        if not table.num_rows:
            return []
        self.tables.append(table)
        return self._spill()

    def close(self) -> list[dict]:
        """Write what is buffered (the writer can take rows again afterwards)."""
        self._to_arrow()
        return self._flush()

    def _spill(self) -> list[dict]:
        self._to_arrow()
        return self._flush() if sum(t.num_rows for t in self.tables) >= PART_ROWS else []

    def _to_arrow(self) -> None:
        if self.rows:
            self.tables.append(rows_table(self.rows, self.schema))
            self.rows = []

    def _flush(self) -> list[dict]:
        tables, self.tables = self.tables, []
        if not tables:
            return []
        table = pa.concat_tables(tables)  # chunked: take() gathers from the chunks, no copy first
        del tables
        table = table.drop_columns(self._empty_columns(table))
        shards = shard_numbers(table[self.order.column], self.num_shards)
        keyed = table.append_column(_SHARD, pa.array(shards))
        table = table.take(pc.sort_indices(keyed, sort_keys=[(_SHARD, "ascending"), *_sort_keys(self.order)]))
        del keyed
        written, start = [], 0
        for shard, n in enumerate(np.bincount(shards, minlength=self.num_shards).tolist()):
            if n:
                path = FileSystems.join(self.out_dir, PARTS_DIR, self.table, f"{shard:05d}-{uuid.uuid4().hex}.arrow")
                written.append({"table": self.table, "shard": shard, "path": path, "rows": n,
                                "bounds": write_part(path, table.slice(start, n), self.order.column)})
                start += n
        del table
        return_freed_memory()
        return written

    def _empty_columns(self, table: pa.Table) -> list[str]:
        """The columns without a value in ``table`` (an import's MC, judge and PRM columns): its parts
        leave them out, and the merge puts them back as nulls (``conform``). At 200k trajectories that
        was 16 of 32 steps columns, a quarter of the parts' bytes, sorted, written and read for nothing."""
        keys = {self.order.column, *self.order.then, self.order.key, *HIDDEN}
        return [name for name in table.column_names
                if name not in keys and table[name].null_count == table.num_rows and table.num_rows]


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with ``schema``'s columns, in its order and types; a column it lacks (left out of a
    part because no row had a value) comes back as nulls."""
    have = set(table.column_names)
    columns = [table[f.name] if f.name in have else pa.nulls(table.num_rows, f.type) for f in schema]
    return pa.Table.from_arrays(columns, names=schema.names).cast(schema)


_SHARD = "_shard"
_HEX_DIGITS = np.full(256, 255, dtype=np.uint8)
for _value, _char in enumerate(b"0123456789abcdef"):
    _HEX_DIGITS[_char] = _value
for _value, _char in enumerate(b"ABCDEF", start=10):
    _HEX_DIGITS[_char] = _value


def shard_numbers(ids: pa.Array | pa.ChunkedArray, num_shards: int) -> np.ndarray:
    """``int(id, 16) % num_shards`` of every id, as an int64 array. Ids of one width in plain hex
    digits (content ids: ``prmflow.ids``) are read straight from the Arrow buffer, a digit column at
    a time; any other id takes Python's ``int(id, 16)``, so the rule (and its errors) stay Python's."""
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    n = len(ids)
    if n and ids.type == pa.string() and ids.null_count == 0 and num_shards < 2**32:
        offsets = np.frombuffer(ids.buffers()[1], dtype=np.int32, count=n + 1, offset=ids.offset * 4)
        width = int(offsets[1] - offsets[0])
        if 0 < width <= 64 and int(offsets[-1] - offsets[0]) == width * n and bool((np.diff(offsets) == width).all()):
            data = np.frombuffer(ids.buffers()[2], dtype=np.uint8, count=width * n, offset=int(offsets[0]))
            digits = _HEX_DIGITS[data.reshape(n, width)]
            if not bool((digits == 255).any()):
                shard = np.zeros(n, dtype=np.uint64)
                for column in digits.T:
                    shard = (shard * 16 + column) % num_shards
                return shard.astype(np.int64)
    return np.array([int(i, 16) % num_shards for i in ids.to_pylist()], dtype=np.int64)


def write_part(path: str, table: pa.Table, id_column: str) -> list[list[str]]:
    """Write ``table`` (sorted by ``id_column``) as a part file; returns each batch's [first id, last id]."""
    bounds = []
    sink = pa.BufferOutputStream()  # then one write: a Python file object gets one call per buffer
    with ipc.new_file(sink, table.schema, options=PART_OPTIONS) as writer:
        for batch in table.to_batches(max_chunksize=PART_GROUP_ROWS):
            if batch.num_rows:
                writer.write_batch(batch)
                ids = batch.column(id_column)
                bounds.append([ids[0].as_py(), ids[-1].as_py()])
    data = sink.getvalue()
    with FileSystems.create(path) as f:
        f.write(data)
    return bounds


class WriteParts(beam.DoFn):
    """Rows of one table -> part files (``PartWriter``) -> one stats dict per part."""

    def __init__(self, out_dir: str, table: str, schema: pa.Schema, order: str | RowOrder,
                 num_shards: int) -> None:
        self.out_dir, self.table, self.schema = out_dir, table, schema
        self.order, self.num_shards = order, num_shards

    def start_bundle(self) -> None:
        self.writer = PartWriter(self.out_dir, self.table, self.schema, self.order, self.num_shards)

    def process(self, row: dict):
        yield from self.writer.add(row)

    def finish_bundle(self):
        for stats in self.writer.close():
            yield GlobalWindows.windowed_value(stats)


def return_freed_memory() -> None:
    """Give memory freed by a flush or a merge back to the system: Arrow's allocator keeps freed
    pages for reuse, and glibc's keeps freed heap, so a long run's resident size would creep up with
    each flush although nothing is held."""
    pa.default_memory_pool().release_unused()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _libc():
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim  # noqa: B018 - glibc only
        return libc
    except (OSError, AttributeError):
        return None


_LIBC = _libc()
ARROW_ROWS = 5_000
# Small batches in parts: a merge pass reads only the batches of each part that overlap its id
# range, so a pass over 1/P of the ids reads about 1/P + PART_GROUP_ROWS / (the part's rows in the
# shard) of each part; bigger batches would read (and hold) more rows a pass than they save time.
PART_GROUP_ROWS = 256
# Parts are Arrow IPC files, uncompressed. Per part of 12.4k step rows (30 columns and the 2 hidden
# ones: a shard's share of a 50k-row flush in 4 shards): ms to write it, and to read it back in a
# merge of 1 pass and of 50 passes (a shard of 1.25M rows), best of 40 on one core; its size in MB:
#   format                rows a batch   write   read: 1 pass   50 passes     MB
#   Parquet lz4 (before)           256      43             23         107   1.12
#   IPC uncompressed               256       7.5            3       22-37   4.72  <- parts
#   IPC uncompressed               512       5.5            2       19-29   4.67
#   IPC uncompressed              1024       5              1.7        34   4.65
#   IPC lz4_frame                  256      22             19          60   1.51
#   IPC lz4_frame                  512      18             12          63   1.40
#   IPC lz4_frame                 1024      12.5            7          64   1.33
#   IPC zstd                       256      47             33         114   0.86
#   IPC zstd                       512      28             18          98   0.76
#   IPC zstd                      1024      16             10.5        92   0.72
# Uncompressed parts take about 4x the disk of Parquet ones (about the rows' size in memory, ~12x
# the finished shards), for as long as parts live: one run.
PART_OPTIONS = ipc.IpcWriteOptions(compression=None)
ROW_GROUP_ROWS = 32_768  # a shard's row groups; the merge holds at most one, plus one pass


def _bounds(passes: int) -> list[tuple[str | None, str | None]]:
    """``passes`` consecutive ranges of 16-hex-digit ids, split on their first 8 digits."""
    cuts = [f"{(i << 32) // passes:08x}" for i in range(1, passes)]
    return list(zip([None, *cuts], [*cuts, None], strict=True))


class _Part:
    """One part file, opened once for all merge passes, with its batches' id ranges (``bounds``, from
    the part's stats; None: read every batch), so a pass reads only the batches that overlap its range."""

    def __init__(self, path: str, id_column: str, bounds: list | None = None) -> None:
        if is_local_path(path):
            self.source = pa.OSFile(path)  # not a memory map: its pages would count in the worker's RSS
        else:
            with FileSystems.open(path, mime_type="application/octet-stream") as f:  # a part is small
                self.source = pa.BufferReader(f.read())
        self.file = ipc.open_file(self.source)
        self.id_column = id_column
        if bounds is None:
            self.ranges = [(None, None)] * self.file.num_record_batches
        else:
            self.ranges = [tuple(b) for b in bounds]

    def read(self, lo: str | None, hi: str | None) -> pa.Table | None:
        batches = [b for b, (low, high) in enumerate(self.ranges)
                   if low is None or ((lo is None or high >= lo) and (hi is None or low < hi))]
        if not batches:
            return None
        table = pa.Table.from_batches([self.file.get_batch(b) for b in batches], schema=self.file.schema)
        # the part is sorted by id, so the rows in [lo, hi) are one run of rows: a zero-copy slice
        ids = table[self.id_column]
        start = 0 if lo is None else pc.sum(pc.less(ids, lo)).as_py() or 0
        stop = table.num_rows if hi is None else pc.sum(pc.less(ids, hi)).as_py() or 0
        return table.slice(start, stop - start)

    def close(self) -> None:
        self.source.close()


def is_local_path(path: str) -> bool:
    return FileSystems.get_filesystem(path).scheme() is None


def first_per_id(table: pa.Table, id_column: str) -> tuple[pa.Table, pa.Table]:
    """(rows kept: the first of each id in sort order, rows dropped); ``table`` is sorted by id."""
    ids = table[id_column]
    if table.num_rows < 2:
        return table, table.slice(0, 0)
    same = pc.equal(ids.slice(1), ids.slice(0, table.num_rows - 1))
    if not pc.any(same).as_py():  # the usual case: no copy of the rows
        return table, table.slice(0, 0)
    dropped = pa.concat_arrays([pa.array([False]), same.combine_chunks()])
    return table.filter(pc.invert(dropped)), table.filter(dropped)


def merge_shard(out_dir: str, table: str, shard: int, num_shards: int, schema: pa.Schema, order: str | RowOrder,
                parts: list[dict], count_fn=None, dedupe: bool = True) -> dict:
    """Merge one shard's part files into ``table-SSSSS-of-NNNNN.parquet``; returns its stats, with
    ``tallies`` from ``count_fn(kept, dropped)`` (pyarrow tables) for the manifest."""
    order = row_order(order)
    mine = sorted((p for p in parts if p["table"] == table and p["shard"] == shard), key=lambda p: p["path"])
    passes = max(1, -(-sum(p["rows"] for p in mine) // MERGE_ROWS))
    with_keys = part_schema(schema)
    path = shard_path(out_dir, table, shard, num_shards)
    tmp = path + ".tmp"
    rows, tallies, carry = 0, [], None
    with FileSystems.create(tmp) as f:
        writer = pq.ParquetWriter(f, schema, **parquet_options(schema))
        opened = [_Part(p["path"], order.column, p.get("bounds")) for p in mine]
        for lo, hi in _bounds(passes):
            pieces = [t for t in (part.read(lo, hi) for part in opened) if t is not None]
            if not pieces:
                continue
            # sorted with the columns some piece has; those no piece has are added after, as nulls
            present = {name for t in pieces for name in t.column_names}
            some = pa.schema([field for field in with_keys if field.name in present])
            merged = conform(pa.concat_tables([conform(t, some) for t in pieces]).sort_by(_sort_keys(order)), with_keys)
            del pieces
            kept, dropped = first_per_id(merged, order.key) if dedupe else (merged, merged.slice(0, 0))
            if count_fn is not None:
                tallies.extend(count_fn(kept, dropped))
            kept = kept.drop_columns(list(HIDDEN))
            rows += kept.num_rows
            # row groups of a fixed size, whatever the passes: the bytes do not depend on MERGE_ROWS
            carry = kept if carry is None else pa.concat_tables([carry, kept])
            while carry.num_rows >= ROW_GROUP_ROWS:
                writer.write_table(carry.slice(0, ROW_GROUP_ROWS), row_group_size=ROW_GROUP_ROWS)
                carry = carry.slice(ROW_GROUP_ROWS)
        if carry is not None and carry.num_rows:
            writer.write_table(carry, row_group_size=ROW_GROUP_ROWS)
        if not rows:
            writer.write_table(schema.empty_table())  # the same file write_rows() gives an empty shard
        writer.close()
        for part in opened:
            part.close()
    FileSystems.rename([tmp], [path])
    return_freed_memory()  # the next shard's merge starts from a small heap
    return {"table": table, "shard": shard, "path": path, "rows": rows, "tallies": tallies}
