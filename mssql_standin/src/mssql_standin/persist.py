"""--data-dir: the stand-in's database in a DuckDB file, with the declared-type catalog kept inside it.

DuckDB forgets declared T-SQL types, so the side catalog (syscatalog.Table: types, identity, defaults, keys,
checks, views ...) is stored as JSON rows in the hidden schema __ss_meta of the same file. A session writes the
rows of the tables its DDL changed inside the DuckDB transaction that makes the change (an explicit transaction
at COMMIT; a DDL statement in autocommit gets a transaction of its own), so the file's data and catalog never
disagree, even after a crash, and are as durable as DuckDB makes a commit.

Counters that SQL Server itself keeps outside transactions (identity current values, @@DBTS, the object id
sequence) are saved when the engine closes. After a crash they are rebuilt from the data instead: an identity
continues after the largest value in its column (a gap is possible, as after a SQL Server restart), @@DBTS after
the largest rowversion.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import duckdb

from .aliastypes import AliasType
from .syscatalog import Catalog, Table, quote

META = "__ss_meta"
_SCHEMA_DDL = [
    f"CREATE SCHEMA IF NOT EXISTS {META}",
    f"CREATE TABLE IF NOT EXISTS {META}.tables (schema_key VARCHAR NOT NULL, name_key VARCHAR NOT NULL, "
    "body VARCHAR NOT NULL)",
    f"CREATE TABLE IF NOT EXISTS {META}.schemas (name VARCHAR NOT NULL, schema_id INTEGER NOT NULL)",
    f"CREATE TABLE IF NOT EXISTS {META}.state (key VARCHAR NOT NULL, value VARCHAR NOT NULL)",
    f"CREATE TABLE IF NOT EXISTS {META}.alias_types (key VARCHAR NOT NULL, body VARCHAR NOT NULL)",
]


class StoreError(Exception):
    """The data directory cannot be used: str() is the one line to show."""


# ------------------------------------------------------------------------------------ dataclass <-> JSON


def to_plain(obj: Any) -> Any:
    """A catalog object as JSON-ready values (dataclasses by field name; every field is kept)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dt.datetime):
        return obj.isoformat()
    if isinstance(obj, (list, tuple)):
        return [to_plain(x) for x in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted(to_plain(x) for x in obj)
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise TypeError(f"cannot persist a dict keyed by {type(next(iter(obj))).__name__}")
        return {k: to_plain(v) for k, v in obj.items()}
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    raise TypeError(f"cannot persist a {type(obj).__name__} in the catalog")


def from_plain(tp: Any, data: Any) -> Any:
    """The inverse of to_plain, led by the declared field types (a field missing from older rows keeps its
    default; a key no field has any more is ignored)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if data is None:
            return None
        return from_plain(next(a for a in args if a is not type(None)), data)
    if origin is list:
        return [from_plain(args[0], x) for x in data]
    if origin in (set, frozenset):
        return origin(from_plain(args[0], x) for x in data)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_plain(args[0], x) for x in data)
        return tuple(from_plain(a, x) for a, x in zip(args, data, strict=True))
    if origin is dict:
        return {k: from_plain(args[1], v) for k, v in data.items()}
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        hints = typing.get_type_hints(tp)
        known = {f.name for f in dataclasses.fields(tp) if f.init}
        return tp(**{k: from_plain(hints[k], v) for k, v in data.items() if k in known})
    if tp is dt.datetime:
        return dt.datetime.fromisoformat(data)
    return data


# ------------------------------------------------------------------------------------ the store


def connect(data_dir: str | os.PathLike[str], database: str) -> duckdb.DuckDBPyConnection:
    """Open (or create) DIR/<database>.duckdb; one server at a time may hold it."""
    folder = Path(data_dir)
    if not database or database in (".", "..") or any(ch in database for ch in "/\\\0"):
        raise StoreError(f"cannot keep database {database!r} in --data-dir {folder}: its name is not a file name")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return duckdb.connect(str(folder / f"{database}.duckdb"), config={"default_collation": "nocase"})
    except (OSError, duckdb.Error) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise StoreError(f"cannot open --data-dir {folder} (database {database}): {first}") from None


class Store:
    """The catalog and engine counters of one persistent database."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con
        for sql in _SCHEMA_DDL:
            con.execute(sql)

    def load_catalog(self) -> Catalog:
        cat = Catalog()
        for name, sid in self.con.execute(f"SELECT name, schema_id FROM {META}.schemas").fetchall():
            cat.schemas[name] = sid
        for (body,) in self.con.execute(f"SELECT body FROM {META}.tables").fetchall():
            cat.add(from_plain(Table, json.loads(body)))
        for key, body in self.con.execute(f"SELECT key, body FROM {META}.alias_types").fetchall():
            cat.aliases[key] = from_plain(AliasType, json.loads(body))
        return cat

    def state(self) -> dict[str, Any]:
        rows = self.con.execute(f"SELECT key, value FROM {META}.state").fetchall()
        return {k: json.loads(v) for k, v in rows}

    def save_state(self, values: dict[str, Any]) -> None:
        cur = self.con.cursor()
        try:
            cur.execute("BEGIN TRANSACTION")
            for k, v in values.items():
                cur.execute(f"DELETE FROM {META}.state WHERE key = ?", [k])
                cur.execute(f"INSERT INTO {META}.state VALUES (?, ?)", [k, json.dumps(v)])
            cur.execute("COMMIT")
        finally:
            cur.close()


def write_changes(
    cur: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    table_keys: Iterable[tuple[str, str]],
    schemas: Iterable[str],
    alias_keys: Iterable[str] = (),
) -> None:
    """Write the catalog rows of the tables, schemas and alias types a transaction changed, on its own cursor (so
    inside its DuckDB transaction): present ones replaced, dropped ones deleted. Every row is serialised before the
    first write, so a field the codec cannot store (TypeError) changes nothing."""
    keys = list(table_keys)
    bodies = {k: json.dumps(to_plain(catalog.tables[k]), ensure_ascii=False) for k in keys if k in catalog.tables}
    aliases = {k: json.dumps(to_plain(catalog.aliases.get(k))) for k in alias_keys}
    for skey, nkey in keys:
        cur.execute(f"DELETE FROM {META}.tables WHERE schema_key = ? AND name_key = ?", [skey, nkey])
        if (skey, nkey) in bodies:
            cur.execute(f"INSERT INTO {META}.tables VALUES (?, ?, ?)", [skey, nkey, bodies[skey, nkey]])
    for s in schemas:
        cur.execute(f"DELETE FROM {META}.schemas WHERE name = ?", [s])
        if s in catalog.schemas:
            cur.execute(f"INSERT INTO {META}.schemas VALUES (?, ?)", [s, catalog.schemas[s]])
    for key, body in aliases.items():
        cur.execute(f"DELETE FROM {META}.alias_types WHERE key = ?", [key])
        if key in catalog.aliases:
            cur.execute(f"INSERT INTO {META}.alias_types VALUES (?, ?)", [key, body])


def object_ids(cat: Catalog) -> Iterable[int]:
    """Every object id the catalog uses (tables, views, constraints, defaults)."""
    for t in cat.tables.values():
        yield t.object_id
        yield from (i.object_id for i in t.indexes)
        yield from (c.default_id for c in t.columns)
        yield from (f.object_id for f in t.fks)
        yield from (k.object_id for k in t.checks)


def rebuilt_identity(con: duckdb.DuckDBPyConnection, cat: Catalog) -> tuple[dict[int, int], dict[int, bool]]:
    """Identity current values after a crash: the largest (or, counting down, smallest) value in each identity
    column; a table without rows starts again at its seed."""
    current: dict[int, int] = {}
    used: dict[int, bool] = {}
    for t in cat.tables.values():
        col = t.identity
        if t.view or col is None or col.identity is None:
            continue
        edge = "max" if col.identity[1] > 0 else "min"
        row = con.execute(f"SELECT {edge}({quote(col.name)}) FROM {t.physical}").fetchone()
        if row is None or row[0] is None:
            current[t.object_id], used[t.object_id] = col.identity[0], False
        else:
            current[t.object_id], used[t.object_id] = int(row[0]), True
    return current, used


def rebuilt_dbts(con: duckdb.DuckDBPyConnection, cat: Catalog, floor: int) -> int:
    """@@DBTS after a crash: past the largest rowversion stored in any table."""
    best = floor
    for t in cat.tables.values():
        for c in t.columns:
            if t.view or not c.is_rowversion or c.computed is not None:
                continue
            row = con.execute(f"SELECT max({quote(c.name)}) FROM {t.physical}").fetchone()
            if row is not None and row[0] is not None:
                best = max(best, int.from_bytes(bytes(row[0])[:8].rjust(8, b"\0"), "big"))
    return best


def reopen(engine: Any, store: Store) -> None:
    """Give a just-built Engine the catalog and counters its file holds, and mark the file open (so a crash
    before close() is noticed at the next start)."""
    engine.catalog = store.load_catalog()
    state = store.state()
    if state.get("clean"):
        engine.identity = {int(k): v for k, v in state.get("identity", {}).items()}
        engine.ident_used = {int(k): v for k, v in state.get("ident_used", {}).items()}
        engine.dbts = state.get("dbts", engine.dbts)
    else:
        engine.identity, engine.ident_used = rebuilt_identity(store.con, engine.catalog)
        engine.dbts = rebuilt_dbts(store.con, engine.catalog, state.get("dbts", engine.dbts))
    engine._next_id = max([engine._next_id, state.get("next_id", 0), *object_ids(engine.catalog)])
    store.save_state({"clean": False})


def close(engine: Any, store: Store) -> None:
    """Save the counters kept outside transactions, checkpoint and close the file."""
    with engine.lock:
        store.save_state(
            {
                "identity": {str(k): int(v) for k, v in engine.identity.items()},
                "ident_used": {str(k): bool(v) for k, v in engine.ident_used.items()},
                "dbts": int(engine.dbts),
                "next_id": engine._next_id,
                "clean": True,
            }
        )
        with contextlib.suppress(duckdb.Error):  # a session still open: its committed work is in the WAL anyway
            store.con.execute("CHECKPOINT")
        store.con.close()


__all__ = [
    "close",
    "reopen",
    "META",
    "Store",
    "StoreError",
    "connect",
    "from_plain",
    "object_ids",
    "rebuilt_dbts",
    "rebuilt_identity",
    "to_plain",
    "write_changes",
]
