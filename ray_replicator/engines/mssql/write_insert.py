"""writer=insert: multi-row ``INSERT ... VALUES`` statements under ``SET IDENTITY_INSERT ON``, the literals built
column-wise by Arrow compute; the rows commit with the range's ledger mark. Also the writer of tables with
datetimeoffset, which travels as text that the bulk copy's Arrow writer refuses."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ray_replicator.catalog import Column, Table
from ray_replicator.engines.mssql.sql import INSERT_ROWS, qualified, quote_ident
from ray_replicator.engines.mssql.values import as_text
from ray_replicator.engines.mssql.variant import variant_literals


def insert(cur: Any, table: Table, batches: Iterator[pa.RecordBatch]) -> None:
    """INSERT the batches on `cur` (in its transaction), identity values as they are."""
    cols = table.copy_columns
    rel = qualified(table.schema, table.name)
    names = ", ".join(quote_ident(c.name) for c in cols)
    identity = any(c.identity is not None for c in cols)
    if identity:
        cur.execute(f"SET IDENTITY_INSERT {rel} ON")
    try:
        for b in batches:
            rows = _value_rows(table, b, cols)
            for start in range(0, len(rows), INSERT_ROWS):
                chunk = rows[start : start + INSERT_ROWS]
                cur.execute(f"INSERT INTO {rel} ({names}) VALUES {', '.join(chunk)}")
    finally:
        if identity:
            cur.execute(f"SET IDENTITY_INSERT {rel} OFF")


def _value_rows(table: Table, batch: pa.RecordBatch, cols: list[Column]) -> list[str]:
    """Each row as '(lit, lit, ...)' built column-wise: Arrow compute makes the literals, one join per row."""
    lits = []
    for col in cols:
        arr = batch.column(batch.schema.get_field_index(col.name))
        lits.append(variant_literals(arr) if col.logical.kind == "variant" else _literals(arr))
    joined = pc.binary_join_element_wise(*lits, _ls(", ")) if len(lits) > 1 else lits[0]
    return ["(" + s + ")" for s in joined.to_pylist()]


def _ls(text: str) -> pa.Scalar:
    return pa.scalar(text, pa.large_string())


def _literals(arr: pa.Array) -> pa.Array:
    t = arr.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        quoted = pc.replace_substring(arr.cast(pa.large_string()), "'", "''")
        quoted = pc.replace_substring(quoted, "\x00", "' + NCHAR(0) + N'")
        lit = pc.binary_join_element_wise(_ls("N'"), quoted, _ls("'"), _ls(""))
    elif pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        hexed = as_text(arr)
        lit = pc.binary_join_element_wise(_ls("0x"), hexed.cast(pa.large_string()), _ls(""))
        # `0x` alone is SQL Server's empty binary; the CAST says the same to parsers that miss that form
        lit = pc.if_else(pc.equal(lit, _ls("0x")), _ls("CAST('' AS varbinary(1))"), lit)
    elif pa.types.is_integer(t) or pa.types.is_decimal(t):
        lit = arr.cast(pa.large_string())
    elif pa.types.is_boolean(t):
        lit = arr.cast(pa.uint8()).cast(pa.large_string())
    else:
        text = as_text(arr).cast(pa.large_string())
        lit = pc.binary_join_element_wise(_ls("'"), text, _ls("'"), _ls(""))
    return pc.fill_null(lit.cast(pa.large_string()), "NULL")
