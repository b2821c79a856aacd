"""A key range as a WHERE clause whose bound values are never SQL text.

Range bounds are stored in session settings with a bound `set_config($1, ...)` call and the data query reads them
back with `(SELECT current_setting(...)::type)`. That keeps the data query free of parameters, which ADBC needs to
stream (with bind parameters it buffers the whole result) and COPY needs anyway (COPY takes no parameters). The
scalar subquery makes each bound an InitPlan: computed once and usable as an index bound (a bare current_setting()
in the filter is re-evaluated per row: 1.7x slower on a full scan).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from ray_replicator.catalog import Table
from ray_replicator.engines.base import KeyRange, UsageError
from ray_replicator.engines.postgres.sql import quote_ident

_GUC_PREFIX = "ray_replicator.p"


def _param_text(value: Any) -> str:
    """A key value as PostgreSQL input text; the query casts it back to the column's type."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return f"{value.days} days {value.seconds} seconds {value.microseconds} microseconds"
    if isinstance(value, float):
        return repr(value)
    return str(value)


@dataclass(frozen=True)
class Predicate:
    """A WHERE clause with `current_setting` references and the texts those settings must hold."""

    sql: str
    values: tuple[str, ...]


def _physical(rng: KeyRange) -> Predicate:
    lo = int(rng.lower[0]) if rng.lower else 0
    sql = f"ctid >= '({lo},0)'::tid"
    if rng.upper is not None and rng.upper[0] is not None:
        sql += f" AND ctid < '({int(rng.upper[0])},0)'::tid"
    return Predicate(sql, ())


def range_predicate(table: Table, rng: KeyRange, types: dict[str, str] | None = None) -> Predicate:
    """The rows of `rng` as SQL; values are never part of the text.

    Bound values are cast to `types[column]` when given (the database's own column types), else to the
    catalog's native types.
    """
    if rng.kind == "full":
        return Predicate("true", ())
    if rng.kind == "physical":
        return _physical(rng)
    cols = rng.columns or table.split_key
    if not cols:
        raise UsageError(f"{table.qualified}: range {rng.range_id} has kind {rng.kind!r} but no key columns")
    idents = [quote_ident(c) for c in cols]
    if rng.kind == "null":
        return Predicate("(" + " OR ".join(f"{i} IS NULL" for i in idents) + ")", ())
    values: list[str] = []
    parts: list[str] = []
    key_types = [(types or {}).get(c) or table.column(c).native_type for c in cols]
    for bound, op in ((rng.lower, ">="), (rng.upper, "<")):
        if bound is None:
            continue
        if len(bound) != len(cols):
            raise UsageError(f"{table.qualified}: range {rng.range_id} bound {bound!r} does not match key {cols}")
        refs = []
        for value, typ in zip(bound, key_types, strict=True):
            values.append(_param_text(value))
            # a scalar subquery is an InitPlan: evaluated once (not per row) and usable as an index bound
            refs.append(f"(SELECT current_setting('{_GUC_PREFIX}{len(values)}')::{typ})")
        parts.append(f"({', '.join(idents)}) {op} ({', '.join(refs)})")
    # NULL keys belong to the "null" range only: a row comparison can be true despite a NULL in a later column
    # ((1, NULL) < (2, 0) is true), so non-NULL is stated for every column whose key allows NULL.
    nullable = [quote_ident(c) for c in cols if table.column(c).nullable]
    parts += [f"{i} IS NOT NULL" for i in nullable]
    return Predicate(" AND ".join(parts) if parts else "true", tuple(values))


def set_config_sql(n: int, local: bool = False) -> str:
    """Store n range values in session (or transaction-local) settings with bound parameters."""
    scope = "true" if local else "false"
    return "SELECT " + ", ".join(f"set_config('{_GUC_PREFIX}{i}', ${i}, {scope})" for i in range(1, n + 1))


async def set_bounds(c: Any, values: tuple[str, ...]) -> None:
    """Store a predicate's values in transaction-local settings on asyncpg connection `c` (inside a transaction)."""
    if values:
        await c.fetch(set_config_sql(len(values), local=True), *values)
