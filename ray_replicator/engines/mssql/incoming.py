"""Values from another engine that SQL Server's type holds only in part, made exact or refused before any writer
sends them: an unbounded PostgreSQL numeric (its text) becomes the decimal(38,10) of the column exactly, never
rounded; NaN and infinity, which no SQL Server type holds, are refused naming table, column, key and value."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ray_replicator.catalog import Column, Table
from ray_replicator.engines.base import EngineError
from ray_replicator.engines.mssql.types import target_type, type_args


def _key_of(table: Table, batch: pa.RecordBatch, row: int) -> str:
    keys = [k for k in table.split_key if k in batch.schema.names]
    if not keys:
        return f"row {row + 1} of its batch (the table has no key)"
    return "key " + ", ".join(f"{k}={batch.column(k)[row].as_py()!r}" for k in keys)


def _refuse(table: Table, col: Column, batch: pa.RecordBatch, row: int, value: Any, why: str) -> EngineError:
    return EngineError(
        f"{table.qualified}.{col.name} at {_key_of(table, batch, row)}: value {value!r} {why}; "
        "change the value or exclude the table"
    )


def _decimal(table: Table, col: Column, batch: pa.RecordBatch, arr: pa.Array) -> pa.Array:
    """The numeric text as the target column's decimal, exactly (Arrow refuses a cast that would round)."""
    precision, scale = (int(a) for a in type_args(target_type(col, "postgres").type))
    want = pa.decimal128(precision, scale)
    try:
        return pc.cast(arr, want)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    for row, value in enumerate(arr.to_pylist()):
        if value is None:
            continue
        try:
            pc.cast(pa.array([value]), want)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise _refuse(
                table, col, batch, row, value, f"does not fit SQL Server's decimal({precision},{scale}) exactly"
            ) from None
    raise EngineError(f"{table.qualified}.{col.name}: numeric text does not convert to decimal({precision},{scale})")


def _finite(table: Table, col: Column, batch: pa.RecordBatch, arr: pa.Array) -> None:
    bad = pc.fill_null(pc.invert(pc.is_finite(arr)), False)
    if pc.any(bad).as_py():
        row = int(pc.index(bad, True).as_py())
        raise _refuse(table, col, batch, row, arr[row].as_py(), "has no SQL Server float form")


def exact_for_sql_server(table: Table, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The batches with unbounded numeric text as decimals and every float finite, for all three writers."""
    for batch in batches:
        arrays = list(batch.columns)
        changed = False
        for i, name in enumerate(batch.schema.names):
            arr = arrays[i]
            col = table.column(name)
            if col.logical.kind == "decimal" and (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
                arrays[i], changed = _decimal(table, col, batch, arr), True
            elif pa.types.is_floating(arr.type):
                _finite(table, col, batch, arr)
        yield pa.RecordBatch.from_arrays(arrays, names=batch.schema.names) if changed else batch
