"""One source of truth per record: a dataclass whose fields carry their Arrow type and doc.

The pyarrow schema, the README's column reference and ``prmflow schema`` are all derived from the
dataclass, so a column can't be added in one place and forgotten in another.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from typing import Any

import pyarrow as pa

from prmflow.schemas.version import SCHEMA_VERSION

_ARROW = "arrow_type"
_DOC = "doc"
_JSON = "json"


def col(arrow_type: pa.DataType, doc: str, *, default: Any = dataclasses.MISSING, json_encoded: bool = False):
    """A dataclass field that is also a Parquet column."""
    meta = {_ARROW: arrow_type, _DOC: doc, _JSON: json_encoded}
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata=meta)
    if isinstance(default, (list, dict)):
        raise TypeError("mutable defaults are not allowed; use None")
    return dataclasses.field(default=default, metadata=meta)


def arrow_schema(cls: type, table: str) -> pa.Schema:
    """The explicit Parquet schema of a record class; SCHEMA_VERSION goes into the file metadata."""
    fields = [
        pa.field(f.name, f.metadata[_ARROW], nullable=True, metadata={"doc": f.metadata[_DOC]})
        for f in dataclasses.fields(cls)
    ]
    return pa.schema(
        fields,
        metadata={"prmflow.schema_version": str(SCHEMA_VERSION), "prmflow.table": table},
    )


@functools.cache
def _columns(cls: type) -> tuple[tuple[str, bool], ...]:
    """(name, JSON-encoded?) per column of a record class, computed once per class: ``to_row`` runs
    for every row of every table, and reflecting on the dataclass each time dominated it."""
    return tuple((f.name, bool(f.metadata.get(_JSON))) for f in dataclasses.fields(cls))


# The last object JSON-encoded and its text: the steps of a run share one provenance dict, so most
# rows hit it. A tuple is swapped in whole, so a thread never pairs one object with another's text.
_last_json: tuple[Any, str] = (None, "null")


def _encoded(value: Any) -> str:
    global _last_json
    last = _last_json
    if last[0] is value:
        return last[1]
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    _last_json = (value, text)
    return text


def to_row(record: Any) -> dict[str, Any]:
    """A record as a plain dict in column order (JSON-encoded columns serialised, sorted keys)."""
    row = {}
    for name, encoded in _columns(type(record)):
        value = getattr(record, name)
        if encoded and value is not None and not isinstance(value, str):
            value = _encoded(value)
        elif isinstance(value, tuple):
            value = list(value)
        row[name] = value
    return row


def column_docs(cls: type) -> list[tuple[str, str, str]]:
    """(name, arrow type, doc) for each column, for documentation."""
    return [(f.name, str(f.metadata[_ARROW]), f.metadata[_DOC]) for f in dataclasses.fields(cls)]
