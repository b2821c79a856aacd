"""Rows into a table, vectorised: the one writer INSERT, bulk loads and Engine.load_arrow share, with the
identity, default, NOT NULL, length and key checks SQL Server makes before anything changes."""

from __future__ import annotations

import contextlib
import os

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from .results import SqlServerError
from .session import SessionCore, Stored, fetch_first, storage_arrow_type
from .sqlexpr import Context
from .sqltext import parse_statement, tokenize
from .syscatalog import Column, Index, Table, quote
from .translate import Translator
from .types import display_value, scalar_to_storage, to_storage_array


class RowWriter(SessionCore):
    """Arrow rows into a table, checked as SQL Server checks them."""

    def insert_arrow(
        self,
        t: Table,
        names: list[str],
        arrays: list[pa.Array | pa.ChunkedArray],
        *,
        rows: int | None = None,
        storage: bool = False,
        explicit_identity: bool = False,
        keep_nulls: bool = True,
        check_keys: bool = True,
        default_rows: list[list[bool]] | None = None,
        bulk: bool = False,
        keep_rowversion: bool = False,
    ) -> int:
        """Insert columns (ResultSet conventions, or storage form when storage=True) with SQL Server's checks:
        identity, defaults, rowversion, NOT NULL (515), truncation (2628), overflow, duplicate keys (2627).
        """
        n = rows if rows is not None else (len(arrays[0]) if arrays else 0)
        if t.view:
            base = self.catalog.table(*t.view_base) if t.view_base else None
            if base is None:
                raise SqlServerError(
                    4405,
                    f"View or function '{t.two_part}' is not updatable because the modification affects "
                    "multiple "
                    "base tables.",
                )
            names = [t.view_map.get(x.lower(), x) for x in names]
            t = base
        full = f"{self.database}.{t.two_part}"
        by_name: dict[str, tuple[Column, pa.Array]] = {}
        for nm, arr in zip(names, arrays, strict=True):
            c = t.col(nm)
            if c is None:
                raise SqlServerError(207, f"Invalid column name '{nm}'.")
            if c.name in by_name:
                raise SqlServerError(
                    264,
                    f"The column name '{c.name}' is specified more than once in the SET clause "
                    "or column list of an INSERT. A column cannot be assigned more than one value in "
                    "the same clause. Modify the clause to make sure that a column is updated only once.",
                )
            if c.computed is not None:
                if bulk:
                    continue
                raise SqlServerError(
                    271,
                    f'The column "{c.name}" cannot be modified because it is either a computed column or is '
                    "the "
                    "result of a UNION operator.",
                )
            if c.is_rowversion and not keep_rowversion:
                if bulk:
                    continue
                raise SqlServerError(
                    273,
                    "Cannot insert an explicit value into a timestamp column. Use INSERT with a column list "
                    "to "
                    "exclude the timestamp column, or insert a DEFAULT into the timestamp column.",
                )
            if c.identity is not None and not (explicit_identity or self.state.identity_insert == t.object_id):
                raise SqlServerError(
                    544,
                    f"Cannot insert explicit value for identity column in table '{t.name}' when "
                    "IDENTITY_INSERT is "
                    "set to OFF.",
                )
            if isinstance(arr, pa.ChunkedArray):
                arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
            if not storage or c.type.is_string or c.type.name in ("binary", "varbinary"):
                arr = to_storage_array(arr, c.type, full, c.name)
            by_name[c.name] = (c, arr)
        out_names: list[str] = []
        out_arrays: list[pa.Array] = []
        ctx: Context | None = None
        for c in t.columns:
            if c.computed is not None:
                continue
            if c.name in by_name:
                arr = by_name[c.name][1]
                dmask = None
                if default_rows is not None:
                    idx = names.index(next(nm for nm in names if nm.lower() == c.name.lower()))
                    if any(default_rows[idx]):
                        dmask = pa.array(default_rows[idx])
                if (dmask is not None or (not keep_nulls and arr.null_count)) and c.default is not None:
                    ctx = ctx or self._context()
                    dv = self._default_values(c, n, ctx)
                    mask = dmask if dmask is not None else arr.is_null()
                    arr = pc.if_else(mask, dv, arr)
                if c.identity is not None:
                    self.engine.saw_identity(t, arr)
                    if arr.null_count:
                        raise SqlServerError(
                            515,
                            f"Cannot insert the value NULL into column '{c.name}', table '{full}'; column "
                            "does not "
                            "allow nulls. INSERT fails.",
                        )
            elif c.identity is not None:
                vals = self.engine.take_identity(t, n)
                arr = pa.array(vals, pa.int64()).cast(storage_arrow_type(c.type))
                if n:
                    self.scope_identity = int(vals[-1])
            elif c.is_rowversion:
                arr = self.engine.take_rowversions(n)
            elif c.default is not None:
                ctx = ctx or self._context()
                arr = self._default_values(c, n, ctx)
            else:
                if not c.nullable and n:
                    raise SqlServerError(
                        515,
                        f"Cannot insert the value NULL into column '{c.name}', table '{full}'; column does "
                        "not allow "
                        "nulls. INSERT fails.",
                    )
                continue
            if not c.nullable and arr.null_count:
                raise SqlServerError(
                    515,
                    f"Cannot insert the value NULL into column '{c.name}', table '{full}'; column does not "
                    "allow "
                    "nulls. INSERT fails.",
                )
            out_names.append(c.name)
            out_arrays.append(arr)
        if n == 0:
            return 0
        if not out_arrays:
            data = pa.table({"__ss_dummy": pa.nulls(n, pa.int8())})
        else:
            data = pa.Table.from_arrays(out_arrays, names=[f"c{i}" for i in range(len(out_arrays))])
        if check_keys:
            self._check_unique(t, out_names, data)
        self._close_reader()
        reg = "__ss_ins"
        self.cur.register(reg, data)
        try:
            if out_arrays:
                cols_sql = ", ".join(quote(x) for x in out_names)
                sel = ", ".join(f"c{i}" for i in range(len(out_arrays)))
                self._duck(f"INSERT INTO {t.physical} ({cols_sql}) SELECT {sel} FROM {reg}")
            else:
                self._duck(f"INSERT INTO {t.physical} DEFAULT VALUES")
                for _ in range(n - 1):
                    self._duck(f"INSERT INTO {t.physical} DEFAULT VALUES")
        finally:
            with contextlib.suppress(duckdb.Error):
                self.cur.unregister(reg)
        return n

    def _default_values(self, c: Column, n: int, ctx: Context) -> pa.Array:
        assert c.default is not None
        text = c.default
        tree = parse_statement("SELECT " + text, tokenize("SELECT " + text))
        tr = Translator(ctx)
        tr.query(tree, [])
        node = tree.expressions[0]
        inner = node
        while isinstance(inner, exp.Paren):
            inner = inner.this
        if (
            isinstance(inner, exp.Anonymous)
            and inner.name == "__ss_newid"
            or (c.type.name == "uniqueidentifier" and "newid" in text.lower())
        ):
            raw = np.frombuffer(os.urandom(16 * n), dtype=np.uint8).reshape(n, 16).copy()
            raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
            raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
            rfc = pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), n, [None, pa.py_buffer(raw.tobytes())])
            return to_storage_array(rfc, c.type, "", c.name)
        if inner.meta and "ss_const" in inner.meta and not inner.meta.get("ss_raw"):
            v = scalar_to_storage(inner.meta["ss_const"], c.type, self.state.dateformat)
        else:
            val = self._scalar_node(inner, ctx)
            v = val.value if isinstance(val, Stored) else scalar_to_storage(val, c.type, self.state.dateformat)
        arr = pa.array([v], storage_arrow_type(c.type))
        if c.type.is_string or c.type.name in ("binary", "varbinary"):
            arr = to_storage_array(arr, c.type, f"{self.database}.{c.name}", c.name)
        return pa.repeat(arr[0], n) if n else pa.array([], storage_arrow_type(c.type))

    def _check_unique(self, t: Table, names: list[str], data: pa.Table) -> None:
        lower = [x.lower() for x in names]
        for idx in t.indexes:
            if not idx.unique:
                continue
            keys = [k for k, _ in idx.columns]
            pos = [lower.index(k.lower()) if k.lower() in lower else -1 for k in keys]
            if any(p < 0 for p in pos):
                continue
            kcols = ", ".join(f"c{p}" for p in pos)
            self._close_reader()
            self.cur.register("__ss_chk", data)
            try:
                where = ""
                dup = fetch_first(
                    self.cur.execute(f"SELECT {kcols} FROM __ss_chk{where} GROUP BY ALL HAVING count(*) > 1 LIMIT 1")
                )
                if dup is None and self._count(t):
                    on = " AND ".join(
                        f"n.c{p} IS NOT DISTINCT FROM o.{quote(t.column(k).name)}"
                        for p, k in zip(pos, keys, strict=True)
                    )
                    sel = ", ".join(f"n.c{p}" for p in pos)
                    dup = fetch_first(
                        self.cur.execute(f"SELECT {sel} FROM __ss_chk n JOIN {t.physical} o ON {on} LIMIT 1")
                    )
            finally:
                self.cur.unregister("__ss_chk")
            if dup is not None:
                self._raise_duplicate(t, idx, keys, tuple(dup))

    def _raise_duplicate(self, t: Table, idx: Index, keys: list[str], dup: tuple[object, ...]) -> None:
        shown = ", ".join(display_value(v, t.column(k).type) for v, k in zip(dup, keys, strict=True))
        if idx.kind in ("PK", "UQ"):
            kind = "PRIMARY KEY" if idx.kind == "PK" else "UNIQUE KEY"
            raise SqlServerError(
                2627,
                f"Violation of {kind} constraint '{idx.name}'. Cannot insert duplicate key in object "
                f"'{t.two_part}'. The duplicate key value is ({shown}).",
                severity=14,
            )
        raise SqlServerError(
            2601,
            f"Cannot insert duplicate key row in object '{t.two_part}' with unique index '{idx.name}'. The "
            f"duplicate key value is ({shown}).",
            severity=14,
        )
