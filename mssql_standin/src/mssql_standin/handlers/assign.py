"""Storing a computed value into a column (UPDATE's SET, MERGE's branches) with SQL Server's conversions and checks,
and running a change that may break a unique key, undone when it does."""

from __future__ import annotations

import contextlib

import duckdb
import pyarrow as pa
from sqlglot import exp

from ..results import SqlServerError
from ..session import fetch_first, sql_string, storage_arrow_type
from ..sqlexpr import duck_sql, storage_literal, type_of
from ..syscatalog import Column, Table, quote
from ..translate import Translator
from ..types import TICKS_PER_DAY, duck_type, out_of_range, scalar_to_storage, to_storage_array
from .output import OutputStatements


class Assignments(OutputStatements):
    """Column assignments and key-checked changes."""

    def _assign_expr(self, t: Table, c: Column, val: exp.Expression) -> str:
        """The DuckDB expression that stores val into column c (storage form, exact checks where possible)."""
        full = f"{self.database}.{t.two_part}"
        vt = type_of(val)
        if (
            val.meta
            and "ss_const" in val.meta
            and not (val.meta.get("ss_raw") and vt is not None and vt.name == c.type.name)
        ):
            v = val.meta["ss_const"]
            if isinstance(val, (exp.Literal, exp.Null, exp.Neg)) or val.meta.get("ss_raw") is not True:
                st = scalar_to_storage(v, c.type, self.state.dateformat)
                if st is not None and (c.type.is_string or c.type.name in ("binary", "varbinary")):
                    st = to_storage_array(pa.array([st], storage_arrow_type(c.type)), c.type, full, c.name)[0].as_py()
                return storage_literal(st, c.type).sql("duckdb")
        if val.meta.get("ss_raw") and vt is not None and vt.name == c.type.name:
            unit = 10 ** (7 - c.type.scale)
            if vt.name == "datetime2" and vt.scale > c.type.scale:
                msg = "__ss_242: " + out_of_range("datetime2", "datetime2").message
                return f"__ss_round_dt2({duck_sql(val)}, {unit}, {sql_string(msg)})"
            if vt.name == "time" and vt.scale > c.type.scale:
                return f"__ss_round_ticks({duck_sql(val)}, {unit}) % {TICKS_PER_DAY}"
            if vt.name == "datetimeoffset" and vt.scale > c.type.scale:
                return f"__ss_dto_round({duck_sql(val)}, {unit})"
            return duck_sql(val)
        n = c.type.name
        native = val
        if val.meta.get("ss_raw"):
            native = Translator(self._context())._native(val)
        body = duck_sql(native)
        if n == "datetime2":
            src = vt.name if vt is not None else "varchar"
            msg = sql_string("__ss_242: " + out_of_range(src, "datetime2").message)
            return f"__ss_round_dt2(__ss_ts_dt2(CAST({body} AS TIMESTAMP)), {10 ** (7 - c.type.scale)}, {msg})"
        if n == "time":
            return f"__ss_round_ticks(__ss_t_time(CAST({body} AS TIME)), {10 ** (7 - c.type.scale)})"
        if n == "datetimeoffset":
            return duck_sql(Translator(self._context())._to_storage_form(native, vt, c.type, False))
        if n == "uniqueidentifier":
            return f"__ss_guid_key({body})"
        if n == "datetime":
            return f"__ss_dt_round(CAST({body} AS TIMESTAMP))"
        if n == "smalldatetime":
            return f"__ss_sdt_round(CAST({body} AS TIMESTAMP))"
        if c.type.is_string and c.type.length > 0:
            msg = f"__ss_trunc: String or binary data would be truncated in table '{full}', column '{c.name}'."
            return (
                f"(SELECT CASE WHEN length(__ss_v) > {c.type.length} THEN error({sql_string(msg)}) ELSE __ss_v "
                "END "
                f"FROM (SELECT CAST({body} AS VARCHAR) AS __ss_v))"
            )
        return f"CAST({body} AS {duck_type(c.type)})"

    def _update_sql(self, t: Table, alias: str, sets: list[tuple[Column, str]]) -> tuple[str, Table | None]:
        """UPDATE t AS alias SET each column to its DuckDB expression (and a new rowversion), without WHERE; and t
        when the change touches a unique key (to be checked after it)."""
        key_cols = {k.lower() for i in t.indexes if i.unique for k, _ in i.columns}
        touches_key = any(c.name.lower() in key_cols for c, _ in sets)
        rv = next((c for c in t.columns if c.is_rowversion), None)
        set_sql = ", ".join(f"{quote(c.name)} = {v}" for c, v in sets)
        if rv is not None:
            with self.engine.lock:
                self.engine.dbts += 1
                stamp = self.engine.dbts
            set_sql += f", {quote(rv.name)} = unhex('{stamp.to_bytes(8, 'big').hex()}')"
        return f"UPDATE {t.physical} AS {quote(alias)} SET {set_sql}", t if touches_key else None

    def _guarded(self, sql: str, key_table: Table | None) -> int:
        """Run a DML statement; if it changed key columns, check uniqueness after it and undo a violation."""
        own_txn = key_table is not None and self.trancount == 0
        if own_txn:
            self._duck("BEGIN TRANSACTION")
        try:
            r = fetch_first(self._duck(sql))
        except SqlServerError:
            if own_txn:
                self.cur.execute("ROLLBACK")
            raise
        n = int(r[0]) if r else 0  # type: ignore[call-overload]
        if key_table is not None:
            self._check_changed_keys(key_table, own_txn)
        if own_txn:
            self.cur.execute("COMMIT")
        return n

    def _check_changed_keys(self, key_table: Table, own_txn: bool) -> None:
        """Error 2627/2601 for a unique key a change just broke, the change (and an open transaction) undone."""
        for idx in key_table.indexes:
            if not idx.unique:
                continue
            cols = ", ".join(quote(key_table.column(k).name) for k, _ in idx.columns)
            dup = fetch_first(
                self.cur.execute(f"SELECT {cols} FROM {key_table.physical} GROUP BY ALL HAVING count(*) > 1 LIMIT 1")
            )
            if dup is not None:
                with contextlib.suppress(duckdb.Error):
                    self.cur.execute("ROLLBACK")
                if not own_txn:
                    self.trancount = 0
                    self._discard_ddl()
                self._raise_duplicate(key_table, idx, [k for k, _ in idx.columns], tuple(dup))
