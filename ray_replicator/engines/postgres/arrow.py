"""ADBC's record batches made meaningful to any engine: numeric text as decimals, opaque values as their text,
and a refusal where ADBC wrapped a time value around."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ray_replicator.catalog import Column, Table
from ray_replicator.engines.base import EngineError
from ray_replicator.engines.postgres.types import decimal_arrow

if TYPE_CHECKING:  # imported where used: a raw COPY worker never loads Arrow (~60 MB of RSS)
    import pyarrow as pa

# PostgreSQL's earliest timestamp/date (4714-11-24 BC, Julian day 0) in Arrow's units since 1970.
_PG_MIN_US = -210_866_803_200_000_000
_PG_MIN_DAYS = -2_440_588
_PLAIN_NUMBER = r"^-?[0-9]*\.?[0-9]*$"


def normalize(table: Table, batch: pa.RecordBatch) -> pa.RecordBatch:
    """Turn ADBC's opaque numeric strings into decimals where Arrow can hold them; plain strings else."""
    import pyarrow as pa

    arrays = []
    fields = []
    changed = False
    for i, col in enumerate(table.copy_columns):
        arr = batch.column(i)
        field = batch.schema.field(i)
        if col.logical.kind in ("decimal", "money") and not pa.types.is_decimal(arr.type):
            storage = arr.storage if isinstance(arr, pa.ExtensionArray) else arr
            arr, field = _decimal(table, col, storage), None
            changed = True
        elif isinstance(arr, pa.ExtensionArray) and arr.type.extension_name == "arrow.opaque":
            arr, field, changed = arr.storage, None, True
        elif pa.types.is_timestamp(arr.type) or pa.types.is_date32(arr.type):
            _check_time_range(table, col, arr, batch)
        arrays.append(arr)
        fields.append(field if field is not None else pa.field(col.name, arr.type))
    if not changed:
        return batch
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


def _check_time_range(table: Table, col: Column, arr: pa.Array, batch: pa.RecordBatch) -> None:
    """ADBC wraps around silently where Arrow's int64 microseconds / int32 days since 1970 end: infinity,
    -infinity and timestamps after 294246 AD come out as values before PostgreSQL's own minimum (4714 BC)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if arr.null_count == len(arr):
        return
    ints = arr.cast(pa.int64() if pa.types.is_timestamp(arr.type) else pa.int32())
    floor = _PG_MIN_US if pa.types.is_timestamp(arr.type) else _PG_MIN_DAYS
    wrapped = pc.fill_null(pc.less(ints, floor), False)
    if pc.any(wrapped).as_py():
        row = int(pc.index(wrapped, True).as_py())
        keys = [k for k in table.split_key if k in batch.schema.names]
        where = (
            "key " + ", ".join(f"{k}={batch.column(batch.schema.get_field_index(k))[row].as_py()!r}" for k in keys)
            if keys
            else f"row {row + 1} of its batch (the table has no key)"
        )
        raise EngineError(
            f"{table.qualified}.{col.name} at {where}: value infinity, -infinity or after 294246 AD, which Arrow "
            "cannot carry; PostgreSQL→PostgreSQL copies use the raw COPY path, otherwise change the value "
            "or exclude the table"
        )


def _decimal(table: Table, col: Column, text: pa.Array) -> pa.Array:
    """A numeric or money column's text as the Arrow decimal the type table gives it (unbounded: the text)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    digits = decimal_arrow(col.logical)
    if digits is None:
        return text  # unbounded numeric: exact as text; a PostgreSQL target casts it back
    finite = pc.match_substring_regex(text, _PLAIN_NUMBER)
    if pc.all(finite).as_py() is not False:
        try:
            return pc.cast(text, pa.decimal128(*digits))
        except pa.ArrowInvalid:
            pass
    bad = next((v for v in text.to_pylist() if v is not None and not re.match(_PLAIN_NUMBER, v)), None)
    raise EngineError(
        f"{table.qualified}.{col.name}: numeric value {bad!r} has no Arrow decimal form; "
        "PostgreSQL→PostgreSQL copies use the raw COPY path, otherwise change the value or exclude the table"
    ) from None
