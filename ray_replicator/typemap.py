"""Engine-neutral type decisions: which columns a copy between two engines cannot carry as typed values, what
the unsupported_types and sql_variant policies do with them (each on the record as a SchemaChange), and
datetimeoffset's parts. Each engine's own type table lives in its
engine (engines/postgres/types.py for PostgreSQL)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ray_replicator.catalog import Catalog, Column, LogicalType, Table
from ray_replicator.engines.base import Capabilities, UsageError
from ray_replicator.record import SchemaChange

if TYPE_CHECKING:  # a raw COPY worker imports this module and never loads Arrow
    import pyarrow as pa


def is_sql_variant(column: Column) -> bool:
    return column.native_type.split("(", 1)[0].strip().lower() == "sql_variant"


def unsupported_reason(column: Column, source: Capabilities, target: Capabilities) -> str | None:
    """Why `column` cannot be copied from `source` to `target` as a typed value, or None when it can.

    A type outside the logical model (kind "other": SQL Server CLR user-defined types or types newer than its type
    table; PostgreSQL's inet, tsvector, ranges, geometric types, bit strings, timetz ...) is read only by an engine
    that reads such values as text, and then has a type only in the same engine. sql_variant has its own source URL
    policy (the catalog refuses it unless sql_variant = text) and is not judged here.
    """
    if column.logical.kind != "other" or is_sql_variant(column):
        return None
    if not source.text_for_other_types:
        return f"{source.title} type {column.native_type} has no mapping in ray-replicator"
    if source.name != target.name:
        return f"{source.title} type {column.native_type} has no {target.title} type"
    return None


def _without(table: Table, name: str) -> Table:
    """The table without column `name` and without the indexes and foreign keys that use it."""
    return replace(
        table,
        columns=[c for c in table.columns if c.name != name],
        indexes=[ix for ix in table.indexes if name not in ix.columns and name not in ix.include],
        foreign_keys=[fk for fk in table.foreign_keys if name not in fk.columns],
    )


def _as_text(table: Table, column: Column, target: Capabilities, reason: str) -> SchemaChange:
    return SchemaChange(table.qualified, column.name, "type_text", column.native_type, target.text_type, reason)


def _refuse_or_drop(table: Table, column: Column, why: str, policy: str, text_ok: bool) -> Table:
    """unsupported_types = fail (or text where the source has no text form) refuses; skip-column leaves the
    column out unless a key needs it."""
    where = f"{table.qualified}.{column.name}"
    if policy == "fail" or (policy == "text" and not text_ok):
        hint = "skip-column to leave the column out" + (" or text to copy its text form" if text_ok else "")
        raise UsageError(
            f"{where}: {why} (unsupported_types = {policy}); set unsupported_types = {hint}, or exclude the table"
        )
    keyed = [k.name for k in (table.primary_key, *table.unique_keys) if k is not None and column.name in k.columns]
    if keyed:
        raise UsageError(
            f"{where}: {why} and it is in key {keyed[0]}, so it cannot be left out "
            "(unsupported_types = skip-column); exclude the table"
        )
    return _without(table, column.name)


def apply_type_policy(
    catalog: Catalog, source: Capabilities, target: Capabilities, policy: str
) -> tuple[Catalog, list[SchemaChange]]:
    """Apply the `unsupported_types` setting before anything is written: 'fail' refuses the first unsupported
    column; 'skip-column' leaves such columns out; 'text' copies PostgreSQL's text form. A sql_variant column read
    under sql_variant = text is carried as text too; one kept with its base types (sql_variant = keep, logical kind
    'variant') stays sql_variant. Returns the catalog to copy and one SchemaChange per column left out
    (column_dropped) or carried as text (type_text, in target.text_type)."""
    changes: list[SchemaChange] = []
    tables: list[Table] = []
    for table in catalog.tables:
        for column in list(table.columns):
            if is_sql_variant(column) and column.logical.kind != "variant":  # variant: kept (sql_variant = keep)
                changes.append(_as_text(table, column, target, "sql_variant = text: each value's base type is lost"))
                continue
            why = unsupported_reason(column, source, target)
            if why is None:
                continue
            if policy == "text" and source.text_for_other_types:
                changes.append(_as_text(table, column, target, f"{why}; unsupported_types = text"))
                continue
            table = _refuse_or_drop(table, column, why, policy, source.text_for_other_types)
            changes.append(
                SchemaChange(
                    table.qualified,
                    column.name,
                    "column_dropped",
                    column.native_type,
                    "",
                    f"{why}; unsupported_types = skip-column",
                )
            )
        tables.append(table)
    return replace(catalog, tables=tables), changes


def text_twin(table: Table, changes: list[SchemaChange]) -> Table:
    """The table as the target holds it: each column a type_text change names gets that change's target type, as
    unbounded text, so the target's DDL and writers treat it as the text it now is."""
    as_text = {c.column: c.target for c in changes if c.kind == "type_text" and c.table == table.qualified}
    if not as_text:
        return table
    columns = [
        replace(c, native_type=as_text[c.name], logical=LogicalType("string")) if c.name in as_text else c
        for c in table.columns
    ]
    return replace(table, columns=columns)


def datetimeoffset_parts(text: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(UTC instant in 100 ns ticks since 1970 as int64, offset in minutes as int64) of datetimeoffset text
    ('YYYY-MM-DD hh:mm:ss[.fffffff] +hh:mm', as the reader produces it): every digit SQL Server holds, vectorised.
    int64 ticks cover 0001..9999 (nanoseconds would overflow past 2262)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    s = text.cast(pa.string())
    whole = pc.utf8_slice_codeunits(s, 0, 19)
    secs = pc.cast(pc.strptime(whole, format="%Y-%m-%d %H:%M:%S", unit="s"), pa.int64())
    frac = pc.extract_regex(s, r"^.{19}(?:\.(?P<f>\d{1,7}))? (?P<sign>[+-])(?P<h>\d\d):(?P<m>\d\d)$")
    digits = pc.utf8_rpad(pc.struct_field(frac, "f"), 7, "0")
    ticks = pc.cast(pc.if_else(pc.equal(digits, "0000000"), "0", digits), pa.int64())
    minutes = pc.add(
        pc.multiply(pc.cast(pc.struct_field(frac, "h"), pa.int64()), 60),
        pc.cast(pc.struct_field(frac, "m"), pa.int64()),
    )
    signed = pc.if_else(pc.equal(pc.struct_field(frac, "sign"), "-"), pc.negate(minutes), minutes)
    utc = pc.subtract(pc.add(pc.multiply(secs, 10_000_000), ticks), pc.multiply(signed, 600_000_000))
    return utc, signed
