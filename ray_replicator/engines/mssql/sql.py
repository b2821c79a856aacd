"""T-SQL text: bracketed identifiers, typed literals and the predicate that selects a key range.

Range bounds become typed T-SQL literals (``CAST(N'...' AS type)``), so the server compares them with the column's
own type and collation; no parameter typing by a driver can change the order.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any

from ray_replicator.catalog import Table
from ray_replicator.engines.base import EngineError, KeyRange, UsageError
from ray_replicator.engines.mssql.types import base_name

INSERT_ROWS = 1000
"""SQL Server's limit of rows in one VALUES list."""


def quote_ident(name: str) -> str:
    """[name] with ] doubled: spaces, dots, quotes, unicode and reserved words all survive."""
    return "[" + name.replace("]", "]]") + "]"


def qualified(schema: str, name: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def n_literal(text: str) -> str:
    """An N'...' literal; U+0000 is spliced in with NCHAR(0) because a literal cannot hold it."""
    parts = text.replace("'", "''").split("\x00")
    return " + NCHAR(0) + ".join(f"N'{p}'" for p in parts) if len(parts) > 1 else f"N'{parts[0]}'"


def _iso(value: dt.datetime | dt.date | dt.time) -> str:
    return value.isoformat()


def sql_literal(value: Any, native: str) -> str:
    """A T-SQL expression of type `native` for a Python value (range bounds, which come from the server)."""
    if value is None:
        return f"CAST(NULL AS {native})"
    base = base_name(native)
    if isinstance(value, bool):
        text = "1" if value else "0"
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise EngineError(f"float value {value!r} has no SQL Server form")
        text = repr(value)
    elif isinstance(value, decimal.Decimal):
        text = format(value, "f")
    elif isinstance(value, bytes | bytearray | memoryview):
        text = "0x" + bytes(value).hex() if value else "CAST('' AS varbinary(1))"
    elif isinstance(value, uuid.UUID):
        text = f"'{value}'"
    elif isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            return f"CAST('{value.isoformat(sep=' ')}' AS {native})"
        text = f"CAST('{value.replace(tzinfo=None).isoformat(timespec='microseconds')}' AS datetime2(7))"
    elif isinstance(value, dt.date | dt.time):
        text = f"'{_iso(value)}'"
    elif isinstance(value, str):
        text = n_literal(value)
    else:
        raise EngineError(f"cannot write {type(value).__name__} value {value!r} as a {native} literal")
    if base in ("int", "bigint", "smallint", "tinyint", "bit") and not isinstance(value, str):
        return text
    return f"CAST({text} AS {native})"


def range_predicate(table: Table, rng: KeyRange) -> str:
    """The rows of `rng` as T-SQL. SQL Server has no row comparison, so (a, b) >= (x, y) is expanded to
    (a > x OR (a = x AND b >= y)); NULL keys belong to the "null" range only."""
    if rng.kind == "full":
        return "1 = 1"
    if rng.kind == "physical":
        raise UsageError(f"{table.qualified}: SQL Server ranges are by key; physical range {rng.range_id} unsupported")
    cols = rng.columns or table.split_key
    if not cols:
        raise UsageError(f"{table.qualified}: range {rng.range_id} has kind {rng.kind!r} but no key columns")
    idents = [quote_ident(c) for c in cols]
    if rng.kind == "null":
        return "(" + " OR ".join(f"{i} IS NULL" for i in idents) + ")"
    types = [table.column(c).native_type for c in cols]
    parts: list[str] = []
    for bound, lower in ((rng.lower, True), (rng.upper, False)):
        if bound is None:
            continue
        if len(bound) != len(cols):
            raise UsageError(f"{table.qualified}: range {rng.range_id} bound {bound!r} does not match key {cols}")
        lits = [sql_literal(v, t) for v, t in zip(bound, types, strict=True)]
        ors = []
        for i in range(len(cols)):
            eq = [f"{idents[j]} = {lits[j]}" for j in range(i)]
            last = i == len(cols) - 1
            op = (">=" if last else ">") if lower else ("<" if last else "<")
            ors.append("(" + " AND ".join([*eq, f"{idents[i]} {op} {lits[i]}"]) + ")")
        parts.append("(" + " OR ".join(ors) + ")")
    parts += [f"{quote_ident(c)} IS NOT NULL" for c in cols if table.column(c).nullable]
    return " AND ".join(parts) if parts else "1 = 1"


def one_line(text: str) -> str:
    """A driver message on one line."""
    return " ".join(str(text).split())
