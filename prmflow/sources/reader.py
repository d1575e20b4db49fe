"""Split a file into raw records without trusting it: every failure becomes a record with an error.

Takes an open binary stream so the caller chooses the filesystem (Beam's FileSystems in pipelines,
plain ``open`` in tests); this module never imports apache_beam.

Nothing read is lost without a count: every record carries its byte span, and ``read_file`` ends
each file with a ``FileCount`` whose byte total and row count come from a meter on the stream, not
from the splitter, so that a splitter which merges or drops rows shows up in the manifest's
reconciliation (``pipelines/common.reconcile``).
"""

from __future__ import annotations

import bz2
import codecs
import io
import json
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from prmflow.sources.base import MAX_DEPTH, BadRecord, RawRecord, clean_value

CHUNK = 1 << 20
HEAD = 4096
"""Characters of an oversized or unreadable row kept in its dead letter."""
BOM = b"\xef\xbb\xbf"

#: file name suffix -> compression; the suffix is removed to find the layout (``x.jsonl.gz`` is JSONL)
COMPRESSIONS = {".gz": "gzip", ".gzip": "gzip", ".bz2": "bz2", ".zst": "zstd", ".zstd": "zstd", ".deflate": "deflate"}


@dataclass(frozen=True)
class FileCount:
    """What one file held, counted beside the splitter: the last item ``read_file`` yields per file."""

    source_file: str
    layout: str
    """jsonl | json | parquet"""
    bytes_read: int
    """Decompressed bytes consumed, counted by a meter on the stream (0 for Parquet, a binary layout)."""
    separator_bytes: int
    """Bytes between rows: blank lines, line ends, whitespace, a BOM, a JSON array's brackets and commas."""
    rows_counted: int
    """Rows by a count that does not use the splitter: non-blank lines for JSONL (counted on the raw
    chunks), the footer's row count for Parquet. For a JSON document, which has no such count, the
    splitter's; its byte spans still have to cover the file. For a file that fails part-way, the
    records it gave, the last being the ``unreadable_file`` dead letter that stands for the rest."""


def split_compression(name: str) -> tuple[str, str | None]:
    """``("x.jsonl", "gzip")`` for ``"x.jsonl.gz"``; ``(name, None)`` when uncompressed."""
    lower = name.lower()
    for suffix, kind in COMPRESSIONS.items():
        if lower.endswith(suffix):
            return name[: -len(suffix)], kind
    return name, None


def layout_of(source_file: str, fmt: str) -> str:
    """The file layout: the name (without a compression suffix) decides, else the format's default
    (JSONL for gsm8k/math500/humaneval/jsonl; JSON, which also reads JSONL as concatenated objects, for
    the others; Parquet for parquet)."""
    name = split_compression(source_file)[0].lower()
    if name.endswith(".parquet") or (fmt == "parquet" and not name.endswith((".json", ".jsonl"))):
        return "parquet"
    if name.endswith(".jsonl") or (fmt in ("gsm8k", "math500", "jsonl", "humaneval") and not name.endswith(".json")):
        return "jsonl"
    return "json"


def _decompressor(kind: str):
    if kind == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if kind == "deflate":
        return zlib.decompressobj(zlib.MAX_WBITS)
    if kind == "bz2":
        return bz2.BZ2Decompressor()
    import zstandard

    return zstandard.ZstdDecompressor().decompressobj()


class _Decompressed:
    """A compressed stream, decompressed incrementally. Unlike ``gzip.GzipFile`` (or a BufferedReader
    over anything), which raise before returning what they decompressed, a damaged file gives out
    every byte it holds, and the error comes on the next read; so the rows before the damage are
    kept. Concatenated members (``cat a.gz b.gz``, pbzip2, zstd frames) are read one after another."""

    def __init__(self, stream: IO[bytes], kind: str) -> None:
        self.stream, self.kind = stream, kind
        self.d, self.pending, self.started = _decompressor(kind), b"", False
        self.error: Exception | None = None

    def _more(self) -> bool:
        """Fill ``pending``; False at the end of the stream."""
        if self.d.eof and self.d.unused_data:  # the next member starts in the bytes already read
            rest, self.d = self.d.unused_data, _decompressor(self.kind)
            self.pending = self.d.decompress(rest)
            return True
        chunk = self.stream.read(CHUNK)
        if not chunk:
            if self.started and not self.d.eof:
                raise EOFError(f"the {self.kind} stream ends before its end marker (a truncated file)")
            return False
        if self.d.eof:  # a new member after a finished one
            self.d = _decompressor(self.kind)
        self.started = True
        self.pending = self.d.decompress(chunk)
        return True

    def read(self, n: int = -1) -> bytes:
        if self.error is not None:
            raise self.error
        out, got = [], 0
        try:
            while n < 0 or got < n:
                if not self.pending and not self._more():
                    break
                take = self.pending if n < 0 else self.pending[: n - got]
                self.pending = self.pending[len(take):]
                out.append(take)
                got += len(take)
        except Exception as e:  # noqa: BLE001 - reported on the next read, after the good bytes
            if not out:
                raise
            self.error = e
        return b"".join(out)


def decompressed(stream: IO[bytes], source_file: str) -> IO[bytes]:
    """The stream decompressed by the file name's suffix (gzip, bz2, zstd, deflate), else as is."""
    kind = split_compression(source_file)[1]
    return stream if kind is None else _Decompressed(stream, kind)


class _Meter:
    """Counts the bytes and the non-blank lines (ends: \\n, \\r\\n or a lone \\r) of what passes through
    ``read``; the line count is the independent count of JSONL rows."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream, self.bytes, self.lines = stream, 0, 0
        self._open = False  # the current, unfinished line has non-whitespace bytes
        self._at_start = True

    def read(self, n: int = -1) -> bytes:
        data = self.stream.read(n)
        if not data:
            self.finish()
            return data
        lines = data
        if self._at_start:
            self._at_start = False
            if data.startswith(BOM):  # the splitter drops a leading BOM too (a BOM alone is a blank line)
                lines = data[3:]
        self.bytes += len(data)
        self._count(lines)
        return data

    def _count(self, data: bytes) -> None:
        # whitespace other than line ends removed, a line is blank iff it is empty: all in C, no
        # Python loop per line, and none of the splitter's code
        s = data.translate(None, b" \t\x0b\x0c")
        if not s:
            return
        parts = s.splitlines()
        if s.endswith((b"\n", b"\r")):
            finished, unfinished = parts, b""
        else:
            finished, unfinished = parts[:-1], parts[-1]
        if finished:
            first_open = self._open or bool(finished[0])  # the first part ends the line already open
            self.lines += first_open + len(finished) - 1 - finished[1:].count(b"")
            self._open = bool(unfinished)
        else:
            self._open = self._open or bool(unfinished)

    def finish(self) -> None:
        self.lines += self._open
        self._open = False


def _decode(data: bytes) -> tuple[str, BadRecord | None]:
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as e:
        return data.decode("utf-8", "backslashreplace"), BadRecord(
            "not_utf8", f"invalid UTF-8 byte {data[e.start]:#04x} at offset {e.start}"
        )


def _too_large(size: int, limit: int) -> BadRecord:
    return BadRecord("too_large", f"row is {size} bytes, over limits.max_record_bytes = {limit}")


def _loads_error(e: Exception) -> BadRecord:
    """A decoder failure as a reason: syntax (bad_json), nesting beyond the stack (too_deep), or a
    value Python refuses to build (an integer over 4300 digits: bad_value)."""
    if isinstance(e, RecursionError):
        return BadRecord("too_deep", "the row nests too deeply to decode")
    if isinstance(e, json.JSONDecodeError):
        return BadRecord("bad_json", f"{e.msg} at column {e.colno}")
    return BadRecord("bad_value", f"the row holds a value that cannot be decoded: {str(e)[:200]}")


def decode_row(raw: RawRecord) -> tuple[Any, int]:
    """The row's value, made safe to carry (see ``clean_value``), and the number of lone surrogates
    replaced in it; raises BadRecord."""
    if raw.error is not None:
        raise raw.error
    obj = raw.value
    if obj is None:
        try:
            obj = json.loads(raw.text)
        except (ValueError, RecursionError) as e:
            raise _loads_error(e) from None
        text = raw.text
        # Text decoded from UTF-8 holds no surrogate, so one can come only from a \u escape; and
        # a row with fewer brackets than MAX_DEPTH cannot nest deeper. Most rows need no walk.
        if "\\u" not in text and text.count("{") + text.count("[") < MAX_DEPTH:
            return obj, 0
    return clean_value(obj)


def _lines(stream: IO[bytes], cap: int) -> Iterator[tuple[int, bytes, int, int]]:
    """(offset, content, content length, line-end length) per line, split at \n, \r\n or a lone \r
    (old Mac files) by ``bytes.splitlines``. Content longer than ``cap`` is cut to HEAD bytes (its
    length stays exact), so an endless line never sits in memory whole."""
    buf, pos = b"", 0  # pos: file offset of buf[0]
    long_head, long_len = None, 0  # a line over the cap being skipped: its head and length so far
    eof = False
    while not eof:
        chunk = stream.read(CHUNK)
        eof = not chunk
        pieces = (buf + chunk).splitlines(keepends=True)
        buf = b""
        if pieces and not eof and not pieces[-1].endswith(b"\n"):
            buf = pieces.pop()  # unfinished, or a \r that may be the first half of \r\n
        for piece in pieces:
            content = piece.rstrip(b"\r\n")  # splitlines leaves at most one line end on a piece
            end = len(piece) - len(content)
            if long_head is not None:
                yield pos - long_len, long_head, long_len + len(content), end
                long_head, long_len = None, 0
            else:
                yield pos, content, len(content), end
            pos += len(piece)
        if long_head is not None:
            long_len, pos, buf = long_len + len(buf), pos + len(buf), b""
        elif len(buf) > cap:
            long_head, long_len, pos, buf = buf[:HEAD], len(buf), pos + len(buf), b""
    if long_head is not None:
        yield pos - long_len, long_head, long_len, 0


def iter_jsonl(stream: IO[bytes], source_file: str, max_record_bytes: int, counts: dict | None = None) -> Iterator[RawRecord]:
    counts = {} if counts is None else counts
    counts.setdefault("separator_bytes", 0)
    for line_no, (offset, content, size, end) in enumerate(_lines(stream, max_record_bytes), start=1):
        counts["separator_bytes"] += end
        if offset == 0 and content.startswith(BOM):  # written by Windows tools; not part of the row
            content, offset, size = content[3:], 3, size - 3
            counts["separator_bytes"] += 3
        if not content or content.isspace():
            counts["separator_bytes"] += size  # blank lines are not rows
            continue
        if size > max_record_bytes:
            text, _ = _decode(content[:HEAD])
            yield RawRecord(source_file, line_no, text, error=_too_large(size, max_record_bytes), size=size, offset=offset)
            continue
        text, err = _decode(content)
        yield RawRecord(source_file, line_no, text, error=err, size=size, offset=offset)


_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")  # an undecodable byte, as "surrogateescape" decodes it
_SPACE = re.compile(r"[ \t\n\r]*")  # JSON's whitespace: one byte each, unlike \s
_BRACKETS = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]]|"', re.S)
_SCALAR_END = re.compile(r"[,\]\n\r{\[]")  # after junk, a bracket may start the next good value


def _resync(text: str, pos: int) -> int:
    """Where a value that failed to decode at ``pos`` ends: its brackets balanced (strings skipped),
    for an object or array; the next comma, bracket or line end for anything else; else the text's end
    (a truncated last element). Later elements then decode on their own, not as part of this one."""
    if text[pos] in "{[":
        depth = 0
        for m in _BRACKETS.finditer(text, pos):
            token = m.group()
            if token[0] == '"':
                if len(token) == 1:
                    return len(text)  # an unterminated string runs to the end
                continue
            depth += 1 if token in "{[" else -1
            if depth <= 0:
                return m.end()
        return len(text)
    m = _SCALAR_END.search(text, pos + 1)
    return m.start() if m else len(text)


def _json_error(e: Exception) -> BadRecord:
    if isinstance(e, json.JSONDecodeError):
        return BadRecord("bad_json", f"{e.msg} (line {e.lineno} column {e.colno} of the file)")
    return _loads_error(e)


class _JsonText:
    """A JSON document's text, decoded and held a window at a time: ``text`` from absolute character
    ``base`` on, read in chunks as the splitter needs more (so a 150 MB array is never whole in
    memory: at most the elements not yet given out and the one being read)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        self.text, self.base, self.eof = "", 0, False
        self.lines, self.column = 0, 0  # newlines in the dropped text, characters after its last one
        self.chunk = CHUNK
        first = stream.read(CHUNK)
        while 0 < len(first) < len(BOM):  # a stream may give fewer bytes than asked
            more = stream.read(CHUNK)
            if not more:
                break
            first += more
        self.bom = first.startswith(BOM)
        self._append(first[3:] if self.bom else first, eof=not first)

    def _append(self, data: bytes, eof: bool) -> None:
        self.eof = eof
        self.text += self.decoder.decode(data, final=eof)

    def more(self) -> bool:
        """Read another chunk (a bigger one each time an element needs more); False at the end."""
        if self.eof:
            return False
        data = self.stream.read(self.chunk)
        self._append(data, eof=not data)
        self.chunk = min(self.chunk * 2, 64 * CHUNK)
        return True

    def drop(self, pos: int) -> int:
        """Forget the text before ``pos`` (given out already); returns the new position of ``pos``."""
        if pos < CHUNK:
            return pos
        gone = self.text[:pos]
        newlines = gone.count("\n")
        self.column = len(gone) - gone.rfind("\n") - 1 if newlines else self.column + len(gone)
        self.lines += newlines
        self.text, self.base, self.chunk = self.text[pos:], self.base + pos, CHUNK
        return 0

    def error(self, e: Exception) -> BadRecord:
        """A decode error, its line and column counted from the start of the file."""
        if not isinstance(e, json.JSONDecodeError):
            return _loads_error(e)
        before = self.text.rfind("\n", 0, e.pos)
        line = self.lines + self.text.count("\n", 0, e.pos) + 1
        column = e.pos - before if before >= 0 else self.column + e.pos + 1
        return BadRecord("bad_json", f"{e.msg} (line {line} column {column} of the file)")


def iter_json(stream: IO[bytes], source_file: str, max_record_bytes: int, counts: dict | None = None) -> Iterator[RawRecord]:
    """A JSON array (one record per element), one object, or several concatenated objects. An element
    that does not decode is one ``bad_json`` record and the elements after it are still read. The
    file is read in chunks: memory holds the element being read, not the document."""
    counts = {} if counts is None else counts
    doc = _JsonText(stream)
    sep = bom = 3 if doc.bom else 0
    # undecodable bytes become lone surrogates, one per byte, so offsets still map to bytes and only
    # the elements that hold such bytes are refused
    decoder, pos, index = json.JSONDecoder(), 0, 0
    offset = bom  # byte offset of text[pos]
    in_array = False
    while True:
        # the separators before the next value: whitespace, commas; in an array also its ``[`` and ``]``
        start = pos
        while True:
            text = doc.text
            pos = _SPACE.match(text, pos).end()
            if pos >= len(text) and doc.more():
                continue  # the separators may go on in the next chunk
            if in_array and pos < len(text) and text[pos] in ",]":
                in_array = text[pos] == ","  # "]" closes the array; what follows is read as objects
                pos += 1
            elif pos < len(text) and text[pos] == "," and index > 0:  # objects separated by commas, no brackets
                pos += 1
            elif pos < len(text) and text[pos] == "[" and index == 0 and not in_array and doc.base + start == 0:
                in_array = True
                pos += 1
            else:
                break
        sep += pos - start  # ASCII only: one byte per character
        offset += pos - start
        if pos >= len(doc.text):
            break
        while True:  # the element, complete: it ends before the text read so far does, or at the file's end
            text = doc.text
            try:
                value, end = decoder.raw_decode(text, pos)
                err = None
            except (ValueError, RecursionError) as e:
                end, value, err = _resync(text, pos), None, doc.error(e)
            if end < len(text) or not doc.more():
                break
        raw = text[pos:end]
        ascii_only = raw.isascii()
        size = len(raw) if ascii_only else len(raw.encode("utf-8", "surrogateescape"))
        if err is None and not ascii_only and _ESCAPED_BYTE.search(raw):
            bad = raw.encode("utf-8", "surrogateescape")
            err = _decode(bad)[1]
        shown = raw if ascii_only or err is None else raw.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        if err is None and size > max_record_bytes:
            err = _too_large(size, max_record_bytes)
        if err is None:
            try:
                clean_value(value)  # refuses too_deep now; decode_row replaces (and counts) surrogates
            except BadRecord as e:
                err = e
        if err is not None:
            value, shown = None, shown[:HEAD] if err.reason in ("too_large", "too_deep") else shown
        counts["separator_bytes"] = sep
        yield RawRecord(source_file, index, shown, value=value, error=err, size=size, offset=offset)
        offset += size
        pos, index = doc.drop(end), index + 1
    counts["separator_bytes"] = sep


def iter_parquet(stream: IO[bytes], source_file: str, max_record_bytes: int, counts: dict | None = None) -> Iterator[RawRecord]:
    import pyarrow.parquet as pq

    counts = {} if counts is None else counts
    if not (hasattr(stream, "seekable") and stream.seekable()):
        stream = io.BytesIO(stream.read())  # a compressed Parquet file: the footer needs seeking
    pf = pq.ParquetFile(stream)
    counts["rows_counted"] = pf.metadata.num_rows
    index = 0
    for batch in pf.iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            raw = json.dumps(row, ensure_ascii=False, default=str)
            size = len(raw.encode("utf-8", "surrogatepass"))
            err = _too_large(size, max_record_bytes) if size > max_record_bytes else None
            yield RawRecord(source_file, index, raw if not err else raw[:HEAD], value=None if err else row, error=err, size=size)
            index += 1


SPLITTERS = {"jsonl": iter_jsonl, "json": iter_json, "parquet": iter_parquet}


def iter_raw_records(
    stream: IO[bytes], source_file: str, fmt: str, max_record_bytes: int, limit: int | None = None,
    counts: dict | None = None,
) -> Iterator[RawRecord]:
    """Records of one (already decompressed) stream in order, split by ``layout_of(source_file, fmt)``.
    Raises what the stream or the Parquet reader raise; ``read_file`` turns that into a dead letter."""
    it = SPLITTERS[layout_of(source_file, fmt)](stream, source_file, max_record_bytes, counts)
    for n, record in enumerate(it):
        if limit is not None and n >= limit:
            return
        yield record


def _unreadable(source_file: str, location: int, error: Exception, size: int, offset: int | None) -> RawRecord:
    detail = f"{type(error).__name__}: {str(error)[:500]}"
    return RawRecord(
        source_file, location, "",
        error=BadRecord("unreadable_file", f"the file cannot be read past this point ({detail})"),
        size=size, offset=offset,
    )


def _failed(source_file, layout, e, location, counts, meter, record_bytes, yielded):
    separators = counts.get("separator_bytes", 0) if layout != "parquet" else 0
    read = meter.bytes if meter is not None else 0
    accounted = record_bytes + separators
    # the bytes the splitter had taken in but not yet given out as a record are this record's
    span = max(read - accounted, 0)
    yield _unreadable(source_file, location, e, span, None if layout == "parquet" else accounted)
    yield FileCount(source_file, layout, max(read, accounted), separators, yielded + 1)


def read_file(
    open_fn: Callable[[], IO[bytes]], source_file: str, fmt: str, max_record_bytes: int, limit: int | None = None,
) -> Iterator[RawRecord | FileCount]:
    """Every record of one file, then its ``FileCount``. Never raises: a file that cannot be opened,
    decompressed or parsed (a directory, a truncated gzip or Parquet file, a CSV named ``.parquet``)
    ends with one ``unreadable_file`` record standing for whatever was not read, and the records
    before it stand."""
    layout = layout_of(source_file, fmt)
    counts: dict = {}
    yielded, record_bytes, location = 0, 0, 1 if layout == "jsonl" else 0
    meter = None
    try:
        stream = decompressed(open_fn(), source_file)
        if layout != "parquet":  # Parquet is read by its footer's offsets, not as a stream
            stream = meter = _Meter(stream)
        for raw in iter_raw_records(stream, source_file, fmt, max_record_bytes, limit, counts):
            yielded += 1
            location = raw.location + 1
            if raw.offset is not None:
                record_bytes += raw.size
            yield raw
        if meter is not None and (limit is None or yielded < limit):
            meter.read(CHUNK)  # at the end already; a damaged compressed stream raises its error here
    except Exception as e:  # noqa: BLE001 - any failure of the file is data about the file, not a crash
        yield from _failed(source_file, layout, e, location, counts, meter, record_bytes, yielded)
        return
    separators = counts.get("separator_bytes", 0) if layout != "parquet" else 0
    if layout == "parquet":
        read, rows = 0, counts.get("rows_counted", yielded) if limit is None else yielded
    elif limit is not None and yielded >= limit:
        # the stream was left part-read: count what the records and their separators span
        read, rows = record_bytes + separators, yielded
    else:
        meter.finish()
        read, rows = meter.bytes, meter.lines if layout == "jsonl" else yielded
    yield FileCount(source_file, layout, read, separators, rows)


def read_checks(counts: dict) -> dict[str, tuple[int, int]]:
    """The manifest's reconciliation checks of reading, from its counts (``{metric: {source: n}}``):
    each input's rows against the count beside the splitter (``FileCount.rows_counted``), and the
    bytes read against the bytes inside rows plus those between them. A splitter that merged rows
    (a file with lone-\\r line ends read as one line) fails the first; one that skipped bytes fails
    the second. Inputs without files (generated ones) have no such counts and are not checked."""
    read, counted = counts.get("records_read", {}), counts.get("rows_counted", {})

    def total(metric: str) -> int:
        return sum(counts.get(metric, {}).values())

    return {
        "records_read == rows counted in the input files": (
            sum(read.get(source, 0) for source in counted), total("rows_counted"),
        ),
        "input bytes == bytes in rows + bytes between rows": (
            total("input_bytes"), total("record_bytes") + total("separator_bytes"),
        ),
    }
