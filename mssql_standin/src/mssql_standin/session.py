"""One client session's core: its DuckDB cursor, transaction and DDL state, SET options and variables, name
resolution, and queries turned into result sets; the statement handlers (handlers/) build on it."""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from . import functions, persist
from .results import BulkLoadRequest, Done, Result, ResultSet, RowCount, SqlServerError
from .sqlexpr import Context, OutCol, duck_sql, type_of, view_table_name
from .sqltext import SPECIAL_STORAGE, Statement, parse_statement, split_batch, syntax_error, unsupported
from .syscatalog import Catalog, Table, ViewContext, data_bytes_sql, view_arrow
from .translate import Translator
from .types import SqlType, arrow_type, storage_to_result, to_storage_array, type_from_arrow

if TYPE_CHECKING:
    from .engine import Engine

BATCH_ROWS = 65_536
RAW_TYPES = {"datetime2", "time", "datetimeoffset", "uniqueidentifier"}


@dataclass
class _SessionState:
    nocount: bool = False
    fmtonly: bool = False
    identity_insert: int | None = None
    dateformat: str = "mdy"
    textsize: int = 2147483647
    isolation: str = "READ COMMITTED"
    xact_abort: bool = False
    variables: dict[str, tuple[SqlType | None, object]] = field(default_factory=dict)


class SessionCore:
    """What every statement handler uses: the session's state, DuckDB, the catalog and queries."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.cur = engine.con.cursor()
        self.database = engine.database
        self.trancount = 0
        self.spid = engine.next_spid()
        self.state = _SessionState()
        self.scope_identity: int | None = None
        self.rowcount = 0
        self._txn_catalog: Catalog | None = None
        self._txn_tables: set[tuple[str, str]] = set()
        self._txn_schemas: set[str] = set()
        self._txn_aliases: set[str] = set()
        self._descriptor = b"\0" * 8
        self._stream: _Stream | None = None
        self._registered: set[str] = set()
        #: a persistent database: the DuckDB transaction opened for one autocommit DDL statement and its catalog rows
        self._ddl_tx = False

    @property
    def catalog(self) -> Catalog:
        return self._txn_catalog if self._txn_catalog is not None else self.engine.catalog

    def _ddl(self) -> Catalog:
        """A private copy of the catalog to change; published on commit (or at once in autocommit)."""
        if self._txn_catalog is None:
            if self.trancount == 0 and self.engine.store is not None and not self._ddl_tx:
                self._duck("BEGIN TRANSACTION")
                self._ddl_tx = True
            self._txn_catalog = copy.deepcopy(self.engine.catalog)
        return self._txn_catalog

    def _ddl_done(
        self, keys: Iterable[tuple[str, str]] = (), schemas: Iterable[str] = (), aliases: Iterable[str] = ()
    ) -> None:
        self._txn_tables.update(keys)
        self._txn_schemas.update(schemas)
        self._txn_aliases.update(aliases)
        if self.trancount == 0:
            if self._ddl_tx:
                self._ddl_tx = False
                self._store_ddl()
                try:
                    self.cur.execute("COMMIT")
                except duckdb.Error as e:
                    self._end_ddl_tx()
                    raise self._map_error(e) from e
            self._publish()

    def _store_ddl(self) -> None:
        """A persistent database: write the catalog rows this transaction's DDL changed, inside its DuckDB
        transaction, so the file's data and catalog commit together (or, failing, neither)."""
        if self.engine.store is None or self._txn_catalog is None:
            return
        try:
            persist.write_changes(self.cur, self._txn_catalog, self._txn_tables, self._txn_schemas, self._txn_aliases)
        except (duckdb.Error, TypeError) as e:
            self._end_ddl_tx()
            self.trancount = 0
            raise SqlServerError(
                40517, f"The SQL Server stand-in could not save its catalog, nothing was committed: {e}"
            ) from e

    def _end_ddl_tx(self) -> None:
        """A DDL statement in autocommit stopped before its end: undo it in DuckDB and in the catalog."""
        self._ddl_tx = False
        with contextlib.suppress(duckdb.Error):
            self.cur.execute("ROLLBACK")
        self._discard_ddl()

    def _publish(self) -> None:
        mine = self._txn_catalog
        if mine is None:
            return
        with self.engine.lock:
            base = copy.copy(self.engine.catalog)
            base.tables = dict(base.tables)
            base.schemas = dict(base.schemas)
            base.aliases = dict(base.aliases)
            for k in self._txn_tables:
                if k in mine.tables:
                    base.tables[k] = mine.tables[k]
                else:
                    base.tables.pop(k, None)
            for s in self._txn_schemas:
                if s in mine.schemas:
                    base.schemas[s] = mine.schemas[s]
                else:
                    base.schemas.pop(s, None)
            for a in self._txn_aliases:
                if a in mine.aliases:
                    base.aliases[a] = mine.aliases[a]
                else:
                    base.aliases.pop(a, None)
            self.engine.catalog = base
        self._discard_ddl()

    def _discard_ddl(self) -> None:
        self._txn_catalog = None
        self._txn_tables.clear()
        self._txn_schemas.clear()
        self._txn_aliases.clear()

    def begin(self) -> bytes:
        """BEGIN TRANSACTION (also the TM begin request); returns the 8-byte transaction descriptor."""
        self._close_reader()
        if self.trancount == 0:
            self._duck("BEGIN TRANSACTION")
            self._descriptor = self.engine.next_tran().to_bytes(8, "little")
        self.trancount += 1
        return self._descriptor

    def commit(self) -> None:
        self._close_reader()
        if self.trancount == 0:
            raise SqlServerError(3902, "The COMMIT TRANSACTION request has no corresponding BEGIN TRANSACTION.")
        self.trancount -= 1
        if self.trancount == 0:
            try:
                self._store_ddl()
                self.cur.execute("COMMIT")
            except duckdb.Error as e:
                self._discard_ddl()
                raise SqlServerError(
                    3960,
                    "Snapshot isolation transaction aborted due to update conflict. " + str(e).split("\n")[0],
                ) from e
            self._publish()

    def rollback(self) -> None:
        self._close_reader()
        if self.trancount == 0:
            raise SqlServerError(3903, "The ROLLBACK TRANSACTION request has no corresponding BEGIN TRANSACTION.")
        self.trancount = 0
        with contextlib.suppress(duckdb.Error):
            self.cur.execute("ROLLBACK")
        self._discard_ddl()

    def close(self) -> None:
        self._drop_reader()
        if self.trancount:
            with contextlib.suppress(SqlServerError):
                self.rollback()
        with contextlib.suppress(duckdb.Error):
            self.cur.close()

    def _close_reader(self) -> None:
        """Free the cursor for the next statement of a batch: an unread result is buffered, not lost."""
        if self._stream is not None:
            self._stream.detach()
            self._stream = None

    def _drop_reader(self) -> None:
        """A new batch (or the end of the session): an abandoned result (ATTENTION) is discarded."""
        if self._stream is not None:
            self._stream.drop()
            self._stream = None

    def _duck(self, sql: str, params: list[object] | None = None) -> duckdb.DuckDBPyConnection:
        self._close_reader()
        try:
            return self.cur.execute(sql, params) if params else self.cur.execute(sql)
        except duckdb.Error as e:
            raise self._map_error(e) from e

    def _arrow(self, sql: str) -> pa.Table:
        self._close_reader()
        try:
            return self.cur.sql(sql).to_arrow_table()
        except duckdb.Error as e:
            raise self._map_error(e) from e

    def _map_error(self, e: duckdb.Error) -> SqlServerError:
        """Turn a DuckDB error into SQL Server's; inside a transaction DuckDB has aborted it, so roll back."""
        msg = str(e)
        first = msg.split("\n")[0]
        if self.trancount:
            self.trancount = 0
            with contextlib.suppress(duckdb.Error):
                self.cur.execute("ROLLBACK")
            self._discard_ddl()
        if "__ss_8134" in msg or "Division by zero" in msg:
            return SqlServerError(8134, "Divide by zero error encountered.")
        if coded := re.search(r"__ss_e?(\d+): (.*)", first):  # error('__ss_e<number>: <text>') from a statement
            return SqlServerError(int(coded.group(1)), coded.group(2).strip())
        if "__ss_trunc" in msg:
            return SqlServerError(2628, first.split("__ss_trunc:", 1)[-1].strip())
        if isinstance(e, duckdb.ConversionException) or "Conversion Error" in msg:
            if "out of range" in msg or "overflow" in msg.lower():
                return SqlServerError(
                    8115,
                    "Arithmetic overflow error converting expression to data type " + _duck_target(msg) + ".",
                )
            return SqlServerError(245, "Conversion failed: " + first.replace("Conversion Error: ", ""))
        if isinstance(e, duckdb.OutOfRangeException) or "Overflow" in msg:
            return SqlServerError(8115, "Arithmetic overflow error converting expression to data type int.")
        if isinstance(e, duckdb.ConstraintException) and "CHECK constraint" in msg:
            return SqlServerError(
                547, f"The INSERT or UPDATE statement conflicted with a CHECK constraint in database "
                f"\"{self.database}\". ({first})"
            )  # fmt: skip
        if isinstance(e, duckdb.ConstraintException) and "NOT NULL" in msg:
            return SqlServerError(515, "Cannot insert the value NULL into a column that does not allow nulls. " + first)
        if isinstance(e, duckdb.TransactionException) or "Conflict" in msg:
            return SqlServerError(
                1205,
                "Transaction was deadlocked on lock resources with another process and has "
                "been chosen as the deadlock victim. Rerun the transaction. (" + first + ")",
                severity=13,
            )
        if isinstance(e, duckdb.ParserException):
            return SqlServerError(102, "Incorrect syntax (" + first + ")", severity=15)
        if isinstance(e, duckdb.BinderException) and "not found" in msg:
            return SqlServerError(207, "Invalid column name (" + first + ")")
        if "Collation with name" in msg:
            return unsupported("COLLATE")
        if isinstance(e, duckdb.CatalogException):
            return SqlServerError(208, "Invalid object name (" + first + ")")
        return SqlServerError(40517, "The SQL Server stand-in could not run this statement: " + first)

    @property
    def nocount(self) -> bool:
        """SET NOCOUNT ON: DML yields Done instead of RowCount (a front end may also drop SELECT counts)."""
        return self.state.nocount

    def _batch(self, sql: str) -> Iterator[Result | BulkLoadRequest]:
        for st in split_batch(sql):
            try:
                for r in self._statement(st):
                    yield Done(r.statement) if isinstance(r, RowCount) and self.state.nocount else r
            except SqlServerError as e:
                if e.line == 1 and st.line != 1:
                    e.line = st.line
                raise
            finally:
                if self._ddl_tx:
                    self._end_ddl_tx()
                elif self.trancount == 0 and self._txn_catalog is not None:
                    self._discard_ddl()  # a DDL statement failed in autocommit: no private catalog outlives it

    def _context(self) -> Context:
        return Context(
            catalog=self.catalog,
            database=self.database,
            now=dt.datetime.now().astimezone(),
            variables=self.state.variables,
            system_value=functools.partial(functions.system_value, self),
            function_value=functools.partial(functions.function_value, self),
            dateformat=self.state.dateformat,
        )

    def _object_id(self, name: str, kind: str | None) -> int | None:
        parts = split_name(name)
        if len(parts) >= 3 and parts[-3].lower() not in (
            self.database.lower(),
            self.engine.database.lower(),
            "tempdb",
            "master",
        ):
            return None
        obj = parts[-1]
        schema = parts[-2] if len(parts) >= 2 and parts[-2] else "dbo"
        cat = self.catalog
        t = cat.table(schema, obj)
        if t is not None and (kind is None or kind.strip().upper() == "U"):
            return t.object_id
        if schema.lower() == "sys":
            return {"all_columns": -167, "columns": -410, "tables": -386, "objects": -385}.get(obj.lower())
        sname = cat.schema_name(schema)
        sid = cat.schemas.get(sname) if sname else None
        for o in cat.objects():
            if o[2] == sid and o[1].lower() == obj.lower() and (kind is None or o[3].strip() == kind.strip().upper()):
                return o[0]
        return None

    def _maybe_table(self, name: str) -> Table | None:
        parts = split_name(name)
        schema = parts[-2] if len(parts) >= 2 and parts[-2] else "dbo"
        return self.catalog.table(schema, parts[-1])

    def _table(self, parts: list[str]) -> Table:
        if (
            len(parts) >= 3
            and parts[-3]
            and parts[-3].lower() not in (self.database.lower(), self.engine.database.lower(), "master", "tempdb")
        ):
            raise SqlServerError(208, f"Invalid object name '{'.'.join(parts)}'.")
        schema = parts[-2] if len(parts) >= 2 and parts[-2] else "dbo"
        t = self.catalog.table(schema, parts[-1])
        if t is None:
            raise SqlServerError(208, f"Invalid object name '{'.'.join(parts)}'.")
        return t

    def _table_by_text(self, name: str) -> Table:
        t = self._maybe_table(name)
        if t is None:
            raise SqlServerError(
                2501, f'Cannot find a table or object with the name "{name}". Check the system catalog.'
            )
        return t

    def _count(self, t: Table) -> int:
        r = fetch_first(self.cur.execute(f"SELECT count(*) FROM {t.physical}"))
        return int(r[0]) if r else 0  # type: ignore[call-overload]

    def _data_bytes(self, t: Table) -> tuple[int, int]:
        r = fetch_first(self.cur.execute(data_bytes_sql(t)))
        return (int(r[0]), int(r[1])) if r else (0, 0)  # type: ignore[call-overload]

    def _translate_query(self, tree: exp.Expression) -> tuple[str, list[OutCol], Context]:
        ctx = self._context()
        tr = Translator(ctx)
        cols = tr.query(tree, [])
        self._register_views(ctx)
        return duck_sql(tree), cols, ctx

    def _register_views(self, ctx: Context) -> None:
        if not ctx.views:
            return
        vctx = ViewContext(self.database, self._count, self.engine.identity_current, self._data_bytes)
        for v in ctx.views:
            tbl = view_arrow(v, self.catalog, vctx)
            self._close_reader()
            self.cur.register(view_table_name(v), tbl)
            self._registered.add(view_table_name(v))

    def _select(self, st: Statement) -> Iterator[Result]:
        tree = parse_statement(st.text, st.tokens)
        if isinstance(tree, exp.Select) and any(
            isinstance(e, exp.EQ) and isinstance(e.this, exp.Parameter) for e in tree.expressions
        ):
            yield from self._select_assign(tree)
            return
        if not isinstance(tree, (exp.Select, exp.SetOperation, exp.Subquery)):
            raise syntax_error(st.tokens[0].text)
        sql, cols, _ctx = self._translate_query(tree)
        yield self._result_set(sql, cols)

    def _select_assign(self, tree: exp.Select) -> Iterator[Result]:
        targets = []
        for e in tree.expressions:
            if not (isinstance(e, exp.EQ) and isinstance(e.this, exp.Parameter)):
                raise SqlServerError(
                    141,
                    "A SELECT statement that assigns a value to a variable must not be combined with "
                    "data-retrieval operations.",
                )
            targets.append("@" + e.this.name)
        tree.set("expressions", [e.expression for e in tree.expressions])
        sql, cols, _ = self._translate_query(tree)
        rows = self._duck(sql).fetchall()
        if rows:
            for name, v in zip(targets, rows[-1], strict=True):
                t, _old = self.state.variables.get(name.lower(), (None, None))
                self.state.variables[name.lower()] = (t, v)
        self.rowcount = len(rows)
        yield Done("SELECT")

    def _scalar(self, tree: exp.Expression) -> object:
        """Evaluate a one-value SELECT (DECLARE/SET/PRINT initialisers) to a Python value in client form."""
        sql, cols, _ = self._translate_query(tree)
        sel = tree.expressions[0] if isinstance(tree, exp.Select) and tree.expressions else None
        inner = sel.this if isinstance(sel, exp.Alias) else sel
        if inner is not None and inner.meta and "ss_const" in inner.meta and not inner.meta.get("ss_raw"):
            return inner.meta["ss_const"]
        tbl = self._arrow(sql)
        if tbl.num_rows == 0:
            return None
        t = cols[0].type or type_from_arrow(tbl.schema.field(0).type)
        arr = self._to_result(tbl.column(0).combine_chunks(), t)
        return arr[0].as_py()

    def _result_set(self, sql: str, cols: list[OutCol]) -> ResultSet:
        if self.state.fmtonly:
            sql = f"SELECT * FROM ({sql}) AS __ss_q LIMIT 0"
        try:
            self._close_reader()
            rel = self.cur.sql(sql)
            reader = rel.to_arrow_reader(BATCH_ROWS) if rel is not None else None
        except duckdb.Error as e:
            raise self._map_error(e) from e
        if reader is None:
            raise syntax_error("SELECT")
        schema = reader.schema
        types = [c.type or type_from_arrow(schema.field(i).type) for i, c in enumerate(cols)]
        specs = [
            t.column_spec(c.name, nullable=c.nullable, identity=c.identity, computed=c.computed)
            for c, t in zip(cols, types, strict=True)
        ]
        stream = _Stream(reader)
        self._stream = stream

        def batches() -> Iterator[pa.RecordBatch]:
            n = 0
            try:
                while True:
                    try:
                        b = stream.next()
                    except StopIteration:
                        break
                    except (duckdb.Error, pa.ArrowInvalid) as e:
                        if isinstance(e, duckdb.Error):
                            raise self._map_error(e) from e
                        raise SqlServerError(245, "Conversion failed: " + str(e)) from e
                    n += b.num_rows
                    arrays = [self._to_result(b.column(i), t) for i, t in enumerate(types)]
                    yield pa.RecordBatch.from_arrays(arrays, names=[s.name for s in specs])
            finally:
                if self._stream is stream:
                    self._stream = None
                stream.drop()
                self.rowcount = n

        return ResultSet(specs, batches())

    def _to_result(self, arr: pa.Array, t: SqlType) -> pa.Array:
        target = arrow_type(t)
        if arr.type == target and t.name != "uniqueidentifier":
            return arr
        if t.name == "uniqueidentifier" and (
            pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type) or pa.types.is_binary_view(arr.type)
        ):
            return storage_to_result(arr.cast(pa.binary()), t)
        if pa.types.is_string_view(arr.type) or pa.types.is_large_string(arr.type):
            arr = arr.cast(pa.string())
            if arr.type == target:
                return arr
        if t.name == "sql_variant":
            return storage_to_result(arr, t)  # stored values; catalog numbers and text keep their Arrow type
        if t.is_string and not pa.types.is_string(arr.type):
            return pc.cast(arr, pa.string()) if not pa.types.is_binary(arr.type) else arr.cast(pa.string())
        if pa.types.is_decimal(target) and pa.types.is_decimal(arr.type):
            return arr.cast(target, safe=False)
        if pa.types.is_integer(target) and pa.types.is_integer(arr.type):
            return arr.cast(target)
        st = to_storage_array(arr, t, "", "")
        return storage_to_result(st, t)

    def _scalar_node(self, node: exp.Expression, ctx: Context) -> object:
        self._register_views(ctx)
        t = type_of(node)
        sql = "SELECT " + duck_sql(node)
        tbl = self._arrow(sql)
        arr = tbl.column(0).combine_chunks()
        if t is not None:
            if node.meta.get("ss_raw") or t.name in SPECIAL_STORAGE:
                return Stored(arr[0].as_py())
            return self._to_result(arr, t)[0].as_py()
        return arr[0].as_py()

    def _statement(self, st: Statement) -> Iterator[Result | BulkLoadRequest]:
        """One statement, dispatched on its kind (EngineSession's table of handlers)."""
        raise NotImplementedError


class _Stream:
    """A DuckDB Arrow stream a ResultSet reads lazily; detach() buffers the rest so the cursor can move on.

    An exhausted reader is simply dropped, never close()d: close() releases the GIL and then needs it back
    for DuckDB's clean-up, which deadlocks against an in-process client that blocks on its socket while
    holding the GIL (mssql-python does). Only an abandoned, unfinished stream (ATTENTION) is closed.
    """

    def __init__(self, reader: pa.RecordBatchReader):
        self.reader: pa.RecordBatchReader | None = reader
        self.buffered: list[pa.RecordBatch] = []

    def next(self) -> pa.RecordBatch:
        if self.buffered:
            return self.buffered.pop(0)
        if self.reader is None:
            raise StopIteration
        try:
            return self.reader.read_next_batch()
        except StopIteration:
            self.reader = None
            raise

    def detach(self) -> None:
        if self.reader is not None:
            try:
                while True:
                    self.buffered.append(self.reader.read_next_batch())
            except StopIteration:
                self.reader = None

    def drop(self) -> None:
        self.buffered.clear()
        if self.reader is not None:
            with contextlib.suppress(Exception):  # an abandoned stream must never fail the next statement
                self.reader.close()
            self.reader = None


@dataclass
class Stored:
    value: object


def bracket(name: str) -> str:
    return "[" + name.replace("]", "]]") + "]"


def fetch_first(rel: duckdb.DuckDBPyConnection) -> tuple[object, ...] | None:
    """The first row, draining the result (DuckDB 2 keeps a half-read result open on the cursor)."""
    rows = rel.fetchall()
    return tuple(rows[0]) if rows else None


def storage_arrow_type(t: SqlType) -> pa.DataType:
    if t.name == "uniqueidentifier":
        return pa.binary()
    return arrow_type(t)


def sql_string(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _duck_target(msg: str) -> str:
    for k, v in (
        ("INT8", "tinyint"),
        ("UINT8", "tinyint"),
        ("INT16", "smallint"),
        ("INT32", "int"),
        ("INT64", "bigint"),
        ("DECIMAL", "numeric"),
    ):
        if f"destination type {k}" in msg or f"to {k}" in msg:
            return v
    return "int"


def split_name(name: str) -> list[str]:
    """Split a possibly bracketed multi-part name: [dbo].[my.table] -> ['dbo', 'my.table']."""
    parts: list[str] = []
    cur = ""
    i = 0
    s = name.strip()
    while i < len(s):
        ch = s[i]
        if ch == "[":
            j = i + 1
            buf = ""
            while j < len(s):
                if s[j] == "]":
                    if j + 1 < len(s) and s[j + 1] == "]":
                        buf += "]"
                        j += 2
                        continue
                    break
                buf += s[j]
                j += 1
            cur += buf
            i = j + 1
        elif ch == '"':
            j = s.index('"', i + 1) if '"' in s[i + 1 :] else len(s)
            cur += s[i + 1 : j]
            i = j + 1
        elif ch == ".":
            parts.append(cur)
            cur = ""
            i += 1
        else:
            cur += ch
            i += 1
    parts.append(cur.strip())
    return parts
