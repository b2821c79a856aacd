"""The SQL engine of the SQL Server stand-in: T-SQL batches run on DuckDB with SQL Server's types and errors.

One Engine holds one DuckDB database and the side catalog of declared T-SQL types; each client session
gets an EngineSession on its own DuckDB cursor (its own transaction context).

Behaviour that differs from SQL Server, on purpose and documented here:
- DuckDB aborts a whole transaction on any error. Errors the engine detects itself (name resolution
  207/208, NULL into NOT NULL 515, truncation 2628, overflow, duplicate keys 2627 on INSERT, identity 544)
  are raised *before* anything changes, so an open transaction survives them as in SQL Server. An error
  raised by DuckDB while a statement runs inside an explicit transaction rolls the transaction back
  (as SQL Server does with XACT_ABORT ON); `trancount` then reads 0.
- PRIMARY KEY / UNIQUE are enforced by the engine on INSERT, bulk loads and UPDATEs of key columns; CHECK
  constraints are enforced by DuckDB (error 547); FOREIGN KEYs are recorded in the catalog, not enforced.
- Supported T-SQL beyond SELECT/INSERT/UPDATE/DELETE and DDL: single-statement `IF ... [ELSE ...]`,
  `EXEC(N'...')`, `EXEC sp_executesql` (input parameters), DECLARE/SET/SELECT @variable, views that
  are plain projections (insertable, as BULK INSERT targets). Anything else fails with error 40517 naming it.
- Strings compare case-insensitively (DuckDB's NOCASE collation stands in for SQL_Latin1_General_CP1_CI_AS)
  and comparisons ignore trailing spaces; ordering of punctuation and accents can differ from SQL Server's
  dictionary order, and GROUP BY/DISTINCT do not merge values that differ only in trailing spaces.
- One database per Engine: USE of master/tempdb/model/msdb is accepted and sees the same tables.
- Unsupported on purpose (error 40517): temporary tables, MERGE, OUTPUT, cursors, WHILE/BEGIN...END, SAVE
  TRANSACTION, CHECKSUM/BINARY_CHECKSUM (SQL Server's hash is not reproduced), COLLATE, FOR XML/JSON.
- Identity values are not transactional (a rolled-back insert leaves a gap), exactly as in SQL Server.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import decimal
import hashlib
import os
import string
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp
from sqlglot.tokens import Token, TokenType

from . import ddl
from .results import (
    BulkLoadRequest,
    ColumnSpec,
    Done,
    EnvChange,
    Info,
    Result,
    ResultSet,
    RowCount,
    SqlServerError,
)
from .syscatalog import (
    Catalog,
    Check,
    Column,
    ForeignKey,
    Index,
    Table,
    ViewContext,
    data_bytes_sql,
    quote,
    view_arrow,
)
from .translate import (
    SPECIAL_STORAGE,
    STATEMENT_STARTS,
    Context,
    OutCol,
    Statement,
    Translator,
    duck_sql,
    parse_statement,
    split_batch,
    syntax_error,
    tokenize,
    type_of,
    unsupported,
    view_table_name,
)
from .translate import _read_type as read_type
from .types import (
    END_TICKS,
    EPOCH_TICKS,
    EXACT,
    TICKS_PER_DAY,
    TYPE_IDS,
    SqlType,
    arrow_type,
    display_value,
    duck_type,
    from_column_spec,
    make_type,
    out_of_range,
    parse_type,
    scalar_to_storage,
    storage_to_result,
    to_storage_array,
    type_from_arrow,
)

VERSION = (
    "Microsoft SQL Server 2022 (RTM) - 16.0.1000.6 (X64) \n\tOct  8 2022 05:58:25 \n\t"
    "Copyright (C) 2022 Microsoft Corporation\n\tDeveloper Edition (64-bit) — mssql_standin, a DuckDB-backed "
    "stand-in for tests, not SQL Server"
)
COLLATION = "SQL_Latin1_General_CP1_CI_AS"
BATCH_ROWS = 65_536
_RAW_TYPES = {"datetime2", "time", "datetimeoffset", "uniqueidentifier"}

_MACROS = [
    # storage forms -> DuckDB-native values (see types.py); parameter names cannot capture caller columns
    f"CREATE MACRO __ss_dt2_ts(__ss_x) AS make_timestamp((__ss_x - {EPOCH_TICKS} - (((__ss_x % 10) + 10) % 10)) // 10)",
    f"CREATE MACRO __ss_ts_dt2(__ss_x) AS epoch_us(CAST(__ss_x AS TIMESTAMP)) * 10 + {EPOCH_TICKS}",
    "CREATE MACRO __ss_time_t(__ss_x) AS TIME '00:00:00' + to_microseconds(__ss_x // 10)",
    "CREATE MACRO __ss_t_time(__ss_x) AS CAST(epoch_us(TIMESTAMP '1970-01-01' + __ss_x) AS BIGINT) * 10",
    f"CREATE MACRO __ss_dto_tz(__ss_x) AS make_timestamp((__ss_x.utc + CAST(__ss_x.offset_min AS BIGINT) * "
    f"600000000 - {EPOCH_TICKS}) // 10)",
    f"CREATE MACRO __ss_tz_dto(__ss_x) AS {{'utc': epoch_us(__ss_x) * 10 + {EPOCH_TICKS}, "
    "'offset_min': CAST(0 AS SMALLINT)}",
    "CREATE MACRO __ss_round_ticks(__ss_x, __ss_u) AS ((__ss_x + __ss_u // 2) // __ss_u) * __ss_u",
    # the same for datetime2, raising __ss_e (error 242) where rounding up reaches the year 10000
    "CREATE MACRO __ss_round_dt2(__ss_x, __ss_u, __ss_e) AS (SELECT CASE WHEN __ss_r >= "
    f"{END_TICKS} THEN error(__ss_e) ELSE __ss_r END FROM (SELECT ((__ss_x + __ss_u // 2) // __ss_u) * __ss_u "
    "AS __ss_r))",
    "CREATE MACRO __ss_dto_add(__ss_x, __ss_d) AS {'utc': __ss_x.utc + __ss_d, 'offset_min': __ss_x.offset_min}",
    "CREATE MACRO __ss_time_add(__ss_x, __ss_d) AS ((__ss_x + __ss_d) % 864000000000 + 864000000000) % 864000000000",
    "CREATE MACRO __ss_dto_round(__ss_x, __ss_u) AS {'utc': ((__ss_x.utc + __ss_u // 2) // __ss_u) * __ss_u, "
    "'offset_min': __ss_x.offset_min}",
    "CREATE MACRO __ss_hexkey(__ss_h) AS unhex(substr(__ss_h,21,12) || substr(__ss_h,17,4) || "
    "substr(__ss_h,15,2) || "
    "substr(__ss_h,13,2) || substr(__ss_h,11,2) || substr(__ss_h,9,2) || substr(__ss_h,7,2) || "
    "substr(__ss_h,5,2) || "
    "substr(__ss_h,3,2) || substr(__ss_h,1,2))",
    "CREATE MACRO __ss_guid_key(__ss_u) AS __ss_hexkey(replace(CAST(CAST(__ss_u AS UUID) AS VARCHAR), '-', ''))",
    "CREATE MACRO __ss_newid() AS __ss_guid_key(gen_random_uuid())",
    "CREATE MACRO __ss_guid_hex(__ss_k) AS hex(__ss_k)",
    # comparison-order key -> SQL Server's storage bytes (uuid.bytes_le): key = b10..b15 b8 b9 b7 b6 b5 b4 b3..b0
    "CREATE MACRO __ss_guid_le(__ss_k) AS (SELECT unhex(substr(__ss_h,25,8)||substr(__ss_h,21,4)||"
    "substr(__ss_h,17,4)||substr(__ss_h,13,4)||substr(__ss_h,1,12)) FROM (SELECT hex(__ss_k) AS __ss_h))",
    # and back: 16 storage bytes (shorter is zero-padded, longer cut) -> comparison-order key
    "CREATE MACRO __ss_le_guid(__ss_b) AS (SELECT unhex(substr(__ss_h,21,12)||substr(__ss_h,17,4)||"
    "substr(__ss_h,13,4)||substr(__ss_h,9,4)||substr(__ss_h,1,8)) FROM (SELECT rpad(left(hex(__ss_b), 32), 32, "
    "'0') AS __ss_h))",
    "CREATE MACRO __ss_guid_str(__ss_k) AS (SELECT "
    "substr(__ss_h,31,2)||substr(__ss_h,29,2)||substr(__ss_h,27,2)||"
    "substr(__ss_h,25,2)||'-'||substr(__ss_h,23,2)||substr(__ss_h,21,2)||'-'||substr(__ss_h,19,2)||substr(__ss_h,17,2)||"
    "'-'||substr(__ss_h,13,4)||'-'||substr(__ss_h,1,12) FROM (SELECT hex(__ss_k) AS __ss_h))",
    "CREATE MACRO __ss_dt_round(__ss_x) AS make_timestamp((epoch_us(__ss_x) // 86400000000) * 86400000000 + "
    "((((epoch_us(__ss_x) % 86400000000 + 86400000000) % 86400000000) * 3 + 5000) // 10000 * 20 + 3) // 6 * "
    "1000)",
    "CREATE MACRO __ss_sdt_round(__ss_x) AS make_timestamp(((epoch_us(__ss_x) + 30000000 - 1000) // "
    "60000000) * 60000000)",
    # SQL Server's default (style 0 / 121) text forms of temporal values, from the storage forms
    "CREATE MACRO __ss_frac(__ss_t, __ss_s) AS CASE WHEN __ss_s > 0 THEN '.' || substr(lpad(CAST("
    "((__ss_t % 10000000) + 10000000) % 10000000 AS VARCHAR), 7, '0'), 1, __ss_s) ELSE '' END",
    "CREATE MACRO __ss_dt2_str(__ss_x, __ss_s) AS strftime(__ss_dt2_ts(__ss_x), '%Y-%m-%d %H:%M:%S') || "
    "__ss_frac(__ss_x, __ss_s)",
    "CREATE MACRO __ss_time_str(__ss_x, __ss_s) AS strftime(TIMESTAMP '2000-01-01' + to_microseconds(__ss_x "
    "// 10), "
    "'%H:%M:%S') || __ss_frac(__ss_x, __ss_s)",
    "CREATE MACRO __ss_dto_str(__ss_x, __ss_s) AS __ss_dt2_str(__ss_x.utc + CAST(__ss_x.offset_min AS "
    "BIGINT) * "
    "600000000, __ss_s) || ' ' || CASE WHEN __ss_x.offset_min < 0 THEN '-' ELSE '+' END || "
    "lpad(CAST(abs(__ss_x.offset_min) // 60 AS VARCHAR), 2, '0') || ':' || "
    "lpad(CAST(abs(__ss_x.offset_min) % 60 AS VARCHAR), 2, '0')",
    "CREATE MACRO __ss_dt_str(__ss_x) AS strftime(__ss_x, '%b') || ' ' || lpad(strftime(__ss_x, '%-d'), 2, ' "
    "') || "
    "' ' || strftime(__ss_x, '%Y') || ' ' || lpad(strftime(__ss_x, '%-I'), 2, ' ') || strftime(__ss_x, "
    "':%M%p')",
    "CREATE MACRO __ss_nz(__ss_x) AS CASE WHEN __ss_x = 0 THEN error('__ss_8134') ELSE __ss_x END",
]


def _hash(alg: str, data: bytes) -> bytes:
    name = {"MD5": "md5", "SHA": "sha1", "SHA1": "sha1", "SHA2_256": "sha256", "SHA2_512": "sha512"}[alg]
    return hashlib.new(name, data).digest()


def _udf_hash(encoding: str | None) -> Callable[[pa.Array, pa.Array], pa.Array]:
    def fn(alg: pa.Array, x: pa.Array) -> pa.Array:
        out: list[bytes | None] = []
        for a, v in zip(alg.to_pylist(), x.to_pylist(), strict=True):
            if v is None or a is None:
                out.append(None)
            else:
                data = v if encoding is None else v.encode(encoding, errors="replace")
                out.append(_hash(a, data))
        return pa.array(out, pa.binary())

    return fn


def _udf_utf16_bytes(x: pa.Array) -> pa.Array:
    lens = pc.utf8_length(x)
    four = pc.utf8_length(pc.replace_substring_regex(x, r"[^\x{10000}-\x{10FFFF}]", ""))
    return pc.multiply(pc.add(lens, four), 2).cast(pa.int64())


@dataclass
class _Bulk:
    request: BulkLoadRequest
    table: Table
    columns: list[Column]


class Engine:
    """One per server: a DuckDB database plus the side catalog of declared T-SQL types."""

    def __init__(self, database: str = "master", bulk_dir: str | None = None):
        self.database = database
        self.bulk_dir = os.path.realpath(bulk_dir) if bulk_dir else None
        self.con = duckdb.connect(":memory:", config={"default_collation": "nocase"})
        for m in _MACROS:
            self.con.execute(m)
        v, b, i = duckdb.sqltypes.VARCHAR, duckdb.sqltypes.BLOB, duckdb.sqltypes.BIGINT
        udf: Any = self.con.create_function  # pyarrow UDFs are not in DuckDB's stub overloads
        udf("__ss_hash_n", _udf_hash("utf-16-le"), [v, v], b, type="arrow")
        udf("__ss_hash_v", _udf_hash("cp1252"), [v, v], b, type="arrow")
        udf("__ss_hash_b", _udf_hash(None), [v, b], b, type="arrow")
        udf("__ss_utf16_bytes", _udf_utf16_bytes, [v], i, type="arrow")
        self.con.execute("CREATE SCHEMA dbo; CREATE SCHEMA guest")
        self.catalog = Catalog()
        self.lock = threading.RLock()
        self._next_id = 1_000_000
        self.identity: dict[int, int] = {}
        self.ident_used: dict[int, bool] = {}
        self.dbts = 2000
        self._spid = 50
        self._tran_id = 0

    def new_id(self) -> int:
        with self.lock:
            self._next_id += 7919
            return self._next_id

    def next_spid(self) -> int:
        with self.lock:
            self._spid += 1
            return self._spid

    def next_tran(self) -> int:
        with self.lock:
            self._tran_id += 1
            return self._tran_id

    def session(self) -> EngineSession:
        return EngineSession(self)

    def identity_current(self, t: Table) -> int | None:
        col = t.identity
        if col is None or col.identity is None:
            return None
        if not self.ident_used.get(t.object_id):
            return None
        return self.identity.get(t.object_id)

    def take_identity(self, t: Table, n: int) -> np.ndarray:
        """Reserve n identity values (not transactional, as in SQL Server)."""
        col = t.identity
        assert col is not None and col.identity is not None
        seed, inc = col.identity
        with self.lock:
            if self.ident_used.get(t.object_id):
                start = self.identity[t.object_id] + inc
            else:
                start = self.identity.get(t.object_id, seed)
            if n:
                self.identity[t.object_id] = start + inc * (n - 1)
                self.ident_used[t.object_id] = True
        return np.arange(n, dtype=np.int64) * inc + start

    def saw_identity(self, t: Table, values: pa.Array) -> None:
        """Explicit identity values (IDENTITY_INSERT / KEEPIDENTITY) move the current value past them."""
        col = t.identity
        if col is None or col.identity is None or len(values) == 0:
            return
        inc = col.identity[1]
        mm = pc.min_max(values)
        if not mm["max"].is_valid:
            return
        edge = int(mm["max"].as_py()) if inc > 0 else int(mm["min"].as_py())
        with self.lock:
            cur = self.identity.get(t.object_id) if self.ident_used.get(t.object_id) else None
            if cur is None or (edge > cur if inc > 0 else edge < cur):
                self.identity[t.object_id] = edge
            self.ident_used[t.object_id] = True

    def take_rowversions(self, n: int) -> pa.Array:
        with self.lock:
            start = self.dbts + 1
            self.dbts += n
        raw = (np.arange(n, dtype=np.uint64) + np.uint64(start)).astype(">u8").tobytes()
        return pa.array([raw[8 * i : 8 * i + 8] for i in range(n)], pa.binary())

    def load_arrow(
        self,
        table: str,
        columns: list[ColumnSpec],
        data: pa.Table | Iterable[pa.RecordBatch],
        *,
        schema: str = "dbo",
        primary_key: list[str] | None = None,
        identity: tuple[int, int] | None = None,
    ) -> int:
        """Create `schema.table` with these declared types and load Arrow data into it, vectorised.

        identity applies to the first integer column named in primary_key (or the first column); values for it
        come from the data (as with KEEPIDENTITY) when present, else are generated.
        """
        s = self.session()
        try:
            defs = []
            id_col = None
            if identity is not None:
                id_col = (primary_key or [columns[0].name])[0]
            for c in columns:
                part = f"{_bracket(c.name)} {from_column_spec(c)}"
                if identity is not None and c.name == id_col:
                    part += f" IDENTITY({identity[0]},{identity[1]})"
                part += " NULL" if c.nullable and not (primary_key and c.name in primary_key) else " NOT NULL"
                defs.append(part)
            if primary_key:
                keys = ", ".join(_bracket(k) for k in primary_key)
                defs.append(f"CONSTRAINT {_bracket('PK_' + table)} PRIMARY KEY CLUSTERED ({keys})")
            list(s.execute(f"CREATE TABLE {_bracket(schema)}.{_bracket(table)} ({', '.join(defs)})"))
            t = s.catalog.table(schema, table)
            assert t is not None
            batches: Iterable[pa.RecordBatch] = data.to_batches() if isinstance(data, pa.Table) else data
            total = 0
            names = [c.name for c in columns]
            for b in batches:
                arrays = [b.column(i) for i in range(b.num_columns)]
                # columns by name when the batch's names are the table's, else by position
                bnames = list(b.schema.names) if all(t.col(x) for x in b.schema.names) else names
                total += s.insert_arrow(
                    t,
                    bnames,
                    arrays,
                    explicit_identity=True,
                    check_keys=bool(primary_key),
                    keep_rowversion=True,
                )
            return total
        finally:
            s.close()


def _bracket(name: str) -> str:
    return "[" + name.replace("]", "]]") + "]"


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


class EngineSession:
    """One client session: its own DuckDB cursor, transaction state, SET options and variables."""

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
        self._descriptor = b"\0" * 8
        self._stream: _Stream | None = None
        self._registered: set[str] = set()

    # ------------------------------------------------------------------ catalog & transactions

    @property
    def catalog(self) -> Catalog:
        return self._txn_catalog if self._txn_catalog is not None else self.engine.catalog

    def _ddl(self) -> Catalog:
        """A private copy of the catalog to change; published on commit (or at once in autocommit)."""
        if self._txn_catalog is None:
            self._txn_catalog = copy.deepcopy(self.engine.catalog)
        return self._txn_catalog

    def _ddl_done(self, keys: Iterable[tuple[str, str]] = (), schemas: Iterable[str] = ()) -> None:
        self._txn_tables.update(keys)
        self._txn_schemas.update(schemas)
        if self.trancount == 0:
            self._publish()

    def _publish(self) -> None:
        mine = self._txn_catalog
        if mine is None:
            return
        with self.engine.lock:
            base = copy.copy(self.engine.catalog)
            base.tables = dict(base.tables)
            base.schemas = dict(base.schemas)
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
            self.engine.catalog = base
        self._txn_catalog = None
        self._txn_tables.clear()
        self._txn_schemas.clear()

    def _discard_ddl(self) -> None:
        self._txn_catalog = None
        self._txn_tables.clear()
        self._txn_schemas.clear()

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

    # ------------------------------------------------------------------ running DuckDB

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
        if "__ss_242:" in msg:
            return SqlServerError(242, first.split("__ss_242:", 1)[-1].strip())
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

    # ------------------------------------------------------------------ batches

    def execute(
        self, sql: str, params: dict[str, tuple[ColumnSpec | None, object]] | None = None
    ) -> Iterator[Result | BulkLoadRequest]:
        """Run a T-SQL batch, yielding one result per statement (SqlServerError stops the batch)."""
        self._drop_reader()
        if params:
            for k, (spec, v) in params.items():
                key = (k if k.startswith("@") else "@" + k).lower()
                self.state.variables[key] = (from_column_spec(spec) if spec is not None else None, v)
        try:
            if "sp_tablecollations" in sql.lower() and "@column_names" in sql.lower():
                yield from self._bulkcopy_metadata(sql)
                return
            yield from self._batch(sql)
        finally:
            if params:
                for k in params:
                    self.state.variables.pop((k if k.startswith("@") else "@" + k).lower(), None)

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

    def _if(self, st: Statement) -> Iterator[Result | BulkLoadRequest]:
        """`IF <condition> <statement> [ELSE <statement>]` (one statement per branch; no BEGIN ... END)."""
        toks = st.tokens
        depth = 0
        body = els = None
        for i, t in enumerate(toks[1:], 1):
            if t.token_type == TokenType.L_PAREN:
                depth += 1
            elif t.token_type == TokenType.R_PAREN:
                depth -= 1
            elif depth == 0 and t.token_type != TokenType.IDENTIFIER:
                word = t.text.upper()
                if body is None and word in STATEMENT_STARTS:
                    body = i
                elif body is not None and word == "ELSE":
                    els = i
                    break
        if body is None:
            raise syntax_error(toks[-1].text)
        if toks[body].text.upper() == "BEGIN" and (body + 1 >= len(toks) or toks[body + 1].text.upper() not in
                                                    ("TRAN", "TRANSACTION")):  # fmt: skip
            raise unsupported("BEGIN ... END block")
        base = toks[0].start
        cond = st.text[toks[1].start - base : toks[body].start - base]
        probe = f"SELECT CASE WHEN {cond} THEN 1 ELSE 0 END"
        take = self._scalar(parse_statement(probe, tokenize(probe))) == 1
        end = toks[els].start - base if els is not None else len(st.text)
        if take:
            yield from self._batch(st.text[toks[body].start - base : end])
        elif els is not None and els + 1 < len(toks):
            yield from self._batch(st.text[toks[els + 1].start - base :])

    def _context(self) -> Context:
        return Context(
            catalog=self.catalog,
            database=self.database,
            now=dt.datetime.now().astimezone(),
            variables=self.state.variables,
            system_value=self._system_value,
            function_value=self._function_value,
            dateformat=self.state.dateformat,
        )

    def _statement(self, st: Statement) -> Iterator[Result | BulkLoadRequest]:
        w = st.words + ["", "", "", ""]
        kinds = [t.token_type for t in st.tokens[:4]]
        first = w[0] if kinds[0] != TokenType.IDENTIFIER else ""
        if first == "SET":
            yield from self._set(st)
        elif first == "USE":
            yield from self._use(st)
        elif first == "BEGIN" and w[1] in ("TRAN", "TRANSACTION", "DISTRIBUTED"):
            was = self.trancount
            desc = self.begin()
            if was == 0:
                yield EnvChange("begin_tran", new_value=desc)
            yield Done("BEGIN TRANSACTION")
        elif first == "COMMIT":
            desc = self._descriptor
            self.commit()
            if self.trancount == 0:
                yield EnvChange("commit_tran", old_value=desc)
            yield Done("COMMIT TRANSACTION")
        elif first == "ROLLBACK":
            desc = self._descriptor
            self.rollback()
            yield EnvChange("rollback_tran", old_value=desc)
            yield Done("ROLLBACK TRANSACTION")
        elif first == "SAVE":
            raise unsupported("SAVE TRANSACTION")
        elif first == "INSERT" and w[1] == "BULK":
            yield self._insert_bulk(st)
        elif first == "BULK" and w[1] == "INSERT":
            yield from self._bulk_insert_file(st)
        elif first == "DBCC":
            yield from self._dbcc(st)
        elif first == "CREATE":
            yield from self._create(st)
        elif first == "ALTER" and w[1] == "TABLE":
            yield from self._alter(st)
        elif first == "DROP":
            yield from self._drop(st)
        elif first == "TRUNCATE":
            yield from self._truncate(st)
        elif first == "DECLARE":
            yield from self._declare(st)
        elif first in ("EXEC", "EXECUTE"):
            yield from self._exec(st)
        elif first == "PRINT":
            tree = parse_statement(
                "SELECT " + st.text[len(st.tokens[0].text) :].strip(),
                tokenize("SELECT " + st.text[len(st.tokens[0].text) :].strip()),
            )
            r = self._scalar(tree)
            yield Info(0, "" if r is None else str(r), state=1, severity=0)
        elif first in ("SELECT", "WITH", "(") or kinds[0] == TokenType.L_PAREN:
            yield from self._select(st)
        elif first == "INSERT":
            yield from self._insert(st)
        elif first == "UPDATE":
            yield from self._update(st)
        elif first == "DELETE":
            yield from self._delete(st)
        elif first == "IF":
            yield from self._if(st)
        elif first in (
            "WHILE",
            "BEGIN",
            "MERGE",
            "GRANT",
            "REVOKE",
            "DENY",
            "RAISERROR",
            "THROW",
            "RETURN",
        ):
            raise unsupported(first)
        else:
            raise syntax_error(st.tokens[0].text)

    # ------------------------------------------------------------------ SET / USE / DBCC / DECLARE

    def _set(self, st: Statement) -> Iterator[Result]:
        toks = st.tokens
        words = [t.text.upper() for t in toks]
        if len(words) < 2:
            raise syntax_error("SET")
        if toks[1].token_type == TokenType.PARAMETER or words[1].startswith("@"):
            yield from self._set_variable(st)
            return
        opt = words[1]
        val = words[-1] if len(words) > 2 else ""
        on = val == "ON"
        if opt == "NOCOUNT":
            self.state.nocount = on
        elif opt == "FMTONLY":
            self.state.fmtonly = on
        elif opt == "IDENTITY_INSERT":
            parts = [t.text for t in toks[2:-1] if t.token_type != TokenType.DOT]
            t = self._table(parts)
            if t.identity is None:
                raise SqlServerError(
                    8106,
                    f"Table '{t.two_part}' does not have the identity property. Cannot perform SET operation.",
                )
            if on:
                cur = self.state.identity_insert
                if cur is not None and cur != t.object_id:
                    other = self.catalog.table_by_id(cur)
                    name = f"{self.database}.{other.two_part}" if other else "?"
                    raise SqlServerError(
                        8107,
                        f"IDENTITY_INSERT is already ON for table '{name}'. Cannot perform SET operation for "
                        "table "
                        f"'{t.two_part}'.",
                    )
                self.state.identity_insert = t.object_id
            elif self.state.identity_insert == t.object_id:
                self.state.identity_insert = None
        elif opt == "DATEFORMAT":
            fmt = toks[2].text.lower()
            if fmt not in ("mdy", "dmy", "ymd", "ydm", "myd", "dym"):
                raise SqlServerError(2741, "SET DATEFORMAT date order 'x' is invalid.".replace("x", fmt))
            self.state.dateformat = fmt
        elif opt == "TEXTSIZE":
            self.state.textsize = int(toks[2].text) if toks[2].text.lstrip("-").isdigit() else self.state.textsize
        elif opt == "TRANSACTION":
            self.state.isolation = " ".join(words[4:])
        elif opt == "XACT_ABORT":
            self.state.xact_abort = on
        elif opt in (
            "ANSI_NULLS",
            "ANSI_PADDING",
            "ANSI_WARNINGS",
            "ANSI_NULL_DFLT_ON",
            "ANSI_NULL_DFLT_OFF",
            "QUOTED_IDENTIFIER",
            "CONCAT_NULL_YIELDS_NULL",
            "ARITHABORT",
            "NUMERIC_ROUNDABORT",
            "IMPLICIT_TRANSACTIONS",
            "CURSOR_CLOSE_ON_COMMIT",
            "LOCK_TIMEOUT",
            "LANGUAGE",
            "DATEFIRST",
            "DEADLOCK_PRIORITY",
            "ROWCOUNT",
            "STATISTICS",
            "SHOWPLAN_ALL",
            "NOEXEC",
            "PARSEONLY",
            "ARITHIGNORE",
            "ANSI_DEFAULTS",
            "NO_BROWSETABLE",
            "QUERY_GOVERNOR_COST_LIMIT",
            "CONTEXT_INFO",
            "FORCEPLAN",
            "REMOTE_PROC_TRANSACTIONS",
            "XACT_ABORT",
        ):
            if opt == "ROWCOUNT" and toks[2].text not in ("0",):
                raise unsupported("SET ROWCOUNT")
            if opt == "IMPLICIT_TRANSACTIONS" and on:
                raise unsupported("SET IMPLICIT_TRANSACTIONS ON")
        else:
            raise SqlServerError(195, f"'{toks[1].text}' is not a recognized SET option.", severity=15)
        yield Done("SET")

    def _set_variable(self, st: Statement) -> Iterator[Result]:
        name = "@" + st.tokens[2].text if st.tokens[1].text == "@" else st.tokens[1].text
        key = name.lower()
        if key not in self.state.variables:
            raise SqlServerError(137, f'Must declare the scalar variable "{name}".', severity=15)
        eq = next(i for i, t in enumerate(st.tokens) if t.token_type == TokenType.EQ)
        expr = st.text[st.tokens[eq + 1].start - st.tokens[0].start :]
        tree = parse_statement("SELECT " + expr, tokenize("SELECT " + expr))
        t, _ = self.state.variables[key]
        v = self._scalar(tree)
        self.state.variables[key] = (
            t,
            scalar_to_storage(v, t) if t is not None and t.name not in _RAW_TYPES else v,
        )
        yield Done("SET")

    def _declare(self, st: Statement) -> Iterator[Result]:
        c = ddl.Cursor(st.text, st.tokens)
        c.expect("DECLARE")
        while True:
            t = c.next()
            name = "@" + c.next().text if t.text == "@" else t.text if t.text.startswith("@") else "@" + t.text
            c.accept("AS")
            if c.peek() in ("CURSOR", "TABLE"):
                raise unsupported("DECLARE " + c.peek())
            ty = c.type()
            value: object = None
            if c.kind() == TokenType.EQ:
                c.next()
                start = c.i
                depth = 0
                while not c.at_end() and not (depth == 0 and c.kind() == TokenType.COMMA):
                    k = c.next().token_type
                    depth += 1 if k == TokenType.L_PAREN else -1 if k == TokenType.R_PAREN else 0
                expr = c.raw_from(start)
                value = self._scalar(parse_statement("SELECT " + expr, tokenize("SELECT " + expr)))
                if value is not None and ty.name not in _RAW_TYPES:
                    value = scalar_to_storage(value, ty)
            self.state.variables[name.lower()] = (ty, value)
            if c.kind() == TokenType.COMMA:
                c.next()
                continue
            break
        yield Done("DECLARE")

    def _use(self, st: Statement) -> Iterator[Result]:
        name = st.tokens[1].text if len(st.tokens) > 1 else ""
        known = {self.engine.database.lower(), "master", "tempdb", "model", "msdb"}
        if name.lower() not in known:
            raise SqlServerError(
                911, f"Database '{name}' does not exist. Make sure that the name is entered correctly."
            )
        old = self.database
        self.database = self.engine.database if name.lower() == self.engine.database.lower() else name.lower()
        yield EnvChange("database", new_value=self.database, old_value=old)
        yield Info(5701, f"Changed database context to '{self.database}'.", state=2, severity=0)
        yield Done("USE")

    def _dbcc(self, st: Statement) -> Iterator[Result]:
        words = [t.text.upper() for t in st.tokens]
        if len(words) < 2 or words[1] != "CHECKIDENT":
            raise unsupported("DBCC " + (words[1] if len(words) > 1 else ""))
        close = next((i for i, t in enumerate(st.tokens) if t.token_type == TokenType.R_PAREN), len(st.tokens))
        args = [t for t in st.tokens[3:close] if t.token_type != TokenType.COMMA]
        quiet = "NO_INFOMSGS" in words[close:]
        if not args:
            raise syntax_error("CHECKIDENT")
        name = args[0].text
        t = self._table_by_text(name)
        if t.identity is None or t.identity.identity is None:
            raise SqlServerError(7997, f"'{t.name}' does not contain an identity column.", state=1)
        opt = args[1].text.upper() if len(args) > 1 else "RESEED"
        rest = args[2:]
        cur = self.engine.identity_current(t)
        if opt == "RESEED" and rest:
            sign = -1 if rest[0].text == "-" else 1
            val = int(rest[-1].text) * sign
            with self.engine.lock:
                # after inserts the next value is val + increment; on a new or truncated table it is val
                self.engine.identity[t.object_id] = val
            shown = "NULL" if cur is None else str(cur)
            if not quiet:
                yield Info(2560, f"Checking identity information: current identity value '{shown}'.", severity=10)
        else:
            mx = _first(self.cur.execute(f"SELECT max({quote(t.identity.name)}) FROM {t.physical}"))
            maxv = mx[0] if mx else None
            shown = "NULL" if cur is None else str(cur)
            yield Info(
                2559,
                f"Checking identity information: current identity value '{shown}', current column "
                f"value '{'NULL' if maxv is None else maxv}'.",
                severity=10,
            )
        if not quiet:
            yield Info(
                2528,
                "DBCC execution completed. If DBCC printed error messages, contact your system administrator.",
                severity=10,
            )
        yield Done("DBCC")

    # ------------------------------------------------------------------ system values & functions

    def _system_value(self, name: str) -> tuple[SqlType, object]:
        n = name.upper()
        if n == "VERSION":
            return SqlType("nvarchar", 300), VERSION
        if n == "SPID":
            return make_type("smallint", []), self.spid
        if n == "TRANCOUNT":
            return make_type("int", []), self.trancount
        if n == "IDENTITY":
            return make_type("numeric", ["38", "0"]), self.scope_identity
        if n == "ROWCOUNT":
            return make_type("int", []), self.rowcount
        if n == "SERVERNAME":
            return SqlType("nvarchar", 128), "localhost"
        if n == "SERVICENAME":
            return SqlType("nvarchar", 128), "MSSQLSERVER"
        if n == "LANGUAGE":
            return SqlType("nvarchar", 128), "us_english"
        if n == "TEXTSIZE":
            return make_type("int", []), self.state.textsize
        if n == "ERROR":
            return make_type("int", []), 0
        if n == "DBTS":
            return SqlType("varbinary", 8), self.engine.dbts.to_bytes(8, "big")
        if n == "MAX_PRECISION":
            return make_type("tinyint", []), 38
        if n == "LOCK_TIMEOUT":
            return make_type("int", []), -1
        if n == "OPTIONS":
            return make_type("int", []), 5496 if not self.state.nocount else 5496 | 512
        raise SqlServerError(137, f'Must declare the scalar variable "@@{name}".', severity=15)

    def _function_value(self, fn: str, args: list[object]) -> tuple[SqlType, object]:
        nv = SqlType("nvarchar", 128)
        cat = self.catalog
        if fn == "scope_identity":
            return make_type("numeric", ["38", "0"]), self.scope_identity
        if fn in ("ident_current", "ident_seed", "ident_incr"):
            t = self._maybe_table(str(args[0])) if args and args[0] is not None else None
            if t is None or t.identity is None or t.identity.identity is None:
                return make_type("numeric", ["38", "0"]), None
            seed, inc = t.identity.identity
            if fn == "ident_seed":
                return make_type("numeric", ["38", "0"]), seed
            if fn == "ident_incr":
                return make_type("numeric", ["38", "0"]), inc
            cur = self.engine.identity_current(t)
            return make_type("numeric", ["38", "0"]), seed if cur is None else cur
        if fn == "object_id":
            if args[0] is None:
                return make_type("int", []), None
            return make_type("int", []), self._object_id(
                str(args[0]), str(args[1]) if len(args) > 1 and args[1] else None
            )
        if fn == "object_name":
            o = cat.object_by_id(int(args[0])) if args[0] is not None else None  # type: ignore[call-overload]
            return nv, o[1] if o else None
        if fn == "object_schema_name":
            o = cat.object_by_id(int(args[0])) if args[0] is not None else None  # type: ignore[call-overload]
            names = {v: k for k, v in cat.schemas.items()}
            return nv, names.get(o[2]) if o else None
        if fn == "schema_name":
            if not args:
                return nv, "dbo"
            sid = int(args[0]) if args[0] is not None else None  # type: ignore[call-overload]
            names = {**{v: k for k, v in cat.schemas.items()}, 3: "INFORMATION_SCHEMA", 4: "sys"}
            return nv, names.get(sid) if sid is not None else None
        if fn == "schema_id":
            if not args:
                return make_type("int", []), 1
            s = cat.schema_name(str(args[0]))
            return make_type("int", []), cat.schemas.get(s) if s else {"information_schema": 3, "sys": 4}.get(
                str(args[0]).lower()
            )
        if fn == "type_name":
            rev = {v: k for k, v in TYPE_IDS.items() if k != "sysname"}
            rev[256] = "sysname"
            return nv, rev.get(int(args[0])) if args[0] is not None else None  # type: ignore[call-overload]
        if fn == "type_id":
            try:
                return make_type("int", []), TYPE_IDS[parse_type(str(args[0])).name]
            except SqlServerError:
                return make_type("int", []), None
        if fn == "db_name":
            return nv, self.database if not args or args[0] in (None, 5) else ("master" if args[0] == 1 else None)
        if fn == "db_id":
            return make_type("smallint", []), 5
        if fn == "original_db_name":
            return nv, self.engine.database
        if fn in ("suser_sname", "suser_name", "user_name"):
            return nv, "dbo" if fn == "user_name" else "sa"
        if fn == "host_name":
            return nv, "localhost"
        if fn == "app_name":
            return nv, "mssql_standin"
        if fn == "databasepropertyex":
            prop = str(args[1]).lower()
            val: object = {
                "collation": COLLATION,
                "status": "ONLINE",
                "recovery": "SIMPLE",
                "updateability": "READ_WRITE",
                "useraccess": "MULTI_USER",
                "version": 957,
                "isautoclose": 0,
            }.get(prop)
            return SqlType("sql_variant", 0) if not isinstance(val, str) else nv, val
        if fn == "serverproperty":
            prop = str(args[0]).lower()
            val = {
                "productversion": "16.0.1000.6",
                "productlevel": "RTM",
                "edition": "Developer Edition (64-bit)",
                "engineedition": 3,
                "collation": COLLATION,
                "servername": "localhost",
                "machinename": "localhost",
                "productmajorversion": "16",
                "productminorversion": "0",
                "isclustered": 0,
                "ishadrenabled": 0,
                "instancename": None,
                "isintegratedsecurityonly": 0,
                "productbuild": "1000",
            }.get(prop)
            return nv, val
        if fn == "collationproperty":
            prop = str(args[1]).lower()
            return make_type("int", []), {
                "codepage": 1252,
                "lcid": 1033,
                "comparisonstyle": 196609,
                "version": 0,
            }.get(prop)
        if fn == "columnproperty":
            t = cat.table_by_id(int(args[0])) if args[0] is not None else None  # type: ignore[call-overload]
            c = t.col(str(args[1])) if t else None
            if c is None:
                return make_type("int", []), None
            prop = str(args[2]).lower()
            v = {
                "isidentity": int(c.identity is not None),
                "iscomputed": int(c.computed is not None),
                "allowsnull": int(c.nullable),
                "precision": c.type.precision or c.type.length,
                "scale": c.type.scale,
                "isrowguidcol": int(c.rowguidcol),
                "columnid": c.column_id,
            }.get(prop)
            return make_type("int", []), v
        if fn == "objectproperty":
            t = cat.table_by_id(int(args[0])) if args[0] is not None else None  # type: ignore[call-overload]
            prop = str(args[1]).lower()
            if t is None:
                return make_type("int", []), None
            v = {
                "isusertable": 1,
                "istable": 1,
                "tablehasidentity": int(t.identity is not None),
                "tablehasprimarykey": int(t.pk is not None),
                "ismsshipped": 0,
            }.get(prop)
            return make_type("int", []), v
        if fn == "has_perms_by_name" or fn == "is_srvrolemember":
            return make_type("int", []), 1
        if fn == "sessionproperty":
            return make_type("int", []), 1
        if fn == "error_message":
            return SqlType("nvarchar", 4000), None
        if fn == "col_name":
            t = cat.table_by_id(int(args[0])) if args[0] is not None else None  # type: ignore[call-overload]
            c = next((c for c in t.columns if c.column_id == args[1]), None) if t else None
            return nv, c.name if c else None
        raise unsupported(fn.upper())

    def _object_id(self, name: str, kind: str | None) -> int | None:
        parts = _split_name(name)
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
        parts = _split_name(name)
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
        r = _first(self.cur.execute(f"SELECT count(*) FROM {t.physical}"))
        return int(r[0]) if r else 0  # type: ignore[call-overload]

    def _data_bytes(self, t: Table) -> tuple[int, int]:
        r = _first(self.cur.execute(data_bytes_sql(t)))
        return (int(r[0]), int(r[1])) if r else (0, 0)  # type: ignore[call-overload]

    # ------------------------------------------------------------------ SELECT

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
        if t.name == "sql_variant" and (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)):
            return arr  # the wire sends a sql_variant with the base type of its Arrow type
        if t.is_string and not pa.types.is_string(arr.type):
            return pc.cast(arr, pa.string()) if not pa.types.is_binary(arr.type) else arr.cast(pa.string())
        if pa.types.is_decimal(target) and pa.types.is_decimal(arr.type):
            return arr.cast(target, safe=False)
        if pa.types.is_integer(target) and pa.types.is_integer(arr.type):
            return arr.cast(target)
        st = to_storage_array(arr, t, "", "")
        return storage_to_result(st, t)

    # ------------------------------------------------------------------ INSERT

    def _insert(self, st: Statement) -> Iterator[Result]:
        st = _strip_insert_hints(st)
        fast = self._fast_insert_values(st)
        if fast is not None:
            self.rowcount = fast
            yield RowCount(fast, "INSERT")
            return
        tree = parse_statement(st.text, st.tokens)
        if not isinstance(tree, exp.Insert):
            raise syntax_error("INSERT")
        target = tree.this
        cols_given: list[str] | None = None
        if isinstance(target, exp.Schema):
            cols_given = [i.name for i in target.expressions]
            target = target.this
        if not isinstance(target, exp.Table):
            raise syntax_error("INSERT")
        words = {t.text.upper() for t in st.tokens if t.token_type not in (TokenType.STRING, TokenType.NATIONAL_STRING)}
        if tree.args.get("returning") or "OUTPUT" in words:
            raise unsupported("OUTPUT clause")
        t = self._table(
            [p.name for p in (target.args.get("catalog"), target.args.get("db")) if p is not None] + [target.name]
        )
        names = cols_given or [
            c.name for c in t.columns if c.computed is None and not c.is_rowversion and c.identity is None
        ]
        if cols_given is None and self.state.identity_insert == t.object_id:
            raise SqlServerError(
                8101,
                f"An explicit value for the identity column in table '{t.two_part}' can only be specified "
                "when a "
                "column list is used and IDENTITY_INSERT is ON.",
            )
        src = tree.expression
        if src is None and tree.args.get("default"):
            n = self.insert_arrow(t, [], [], rows=1)
        elif isinstance(src, exp.Values):
            n = self._insert_values(t, names, src)
        elif isinstance(src, (exp.Select, exp.SetOperation, exp.Subquery)):
            sql, cols, _ = self._translate_query(src)
            if len(cols) != len(names):
                raise SqlServerError(
                    121 if len(cols) > len(names) else 120,
                    "The select list for the INSERT statement contains "
                    + ("more" if len(cols) > len(names) else "fewer")
                    + " items than the insert list. The number of SELECT values must match the number of "
                    "INSERT columns.",
                    state=1,
                    severity=15,
                )
            tbl = self._arrow(sql)
            arrays = []
            for i, c in enumerate(cols):
                ty = c.type or type_from_arrow(tbl.schema.field(i).type)
                arrays.append(self._to_result(tbl.column(i).combine_chunks(), ty))
            n = self.insert_arrow(t, names, arrays, rows=tbl.num_rows)
        else:
            raise unsupported("this INSERT form")
        self.rowcount = n
        yield RowCount(n, "INSERT")

    def _fast_insert_values(self, st: Statement) -> int | None:
        """INSERT ... VALUES of plain literals (what bulk-ish clients send, 1000 rows at a time) read straight
        from the tokens; None sends the statement down the general path."""
        c = ddl.Cursor(st.text, st.tokens)
        c.expect("INSERT")
        c.accept("INTO")
        try:
            parts = c.qualified()
        except SqlServerError:
            return None
        names: list[str] | None = None
        if c.kind() == TokenType.L_PAREN:
            c.next()
            names = []
            while c.kind() != TokenType.R_PAREN:
                if c.kind() == TokenType.COMMA:
                    c.next()
                    continue
                if c.kind() not in (TokenType.VAR, TokenType.IDENTIFIER) and not c.peek().isidentifier():
                    return None
                names.append(c.next().text)
            c.next()
        if c.peek() != "VALUES":
            return None
        c.next()
        t = self._table(parts)
        if t.view:
            return None
        if names is None:
            if self.state.identity_insert == t.object_id:
                return None
            names = [x.name for x in t.columns if x.computed is None and not x.is_rowversion and x.identity is None]
        types = [t.column(n).type for n in names]
        cols: list[list[object]] = [[] for _ in names]
        toks = c.toks
        i = c.i
        n = len(toks)
        while i < n:
            if toks[i].token_type != TokenType.L_PAREN:
                return None
            i += 1
            k = 0
            while True:
                if k >= len(names):
                    return None
                v, i = _fast_literal(toks, i, types[k])
                if v is _NOT_LITERAL:
                    return None
                cols[k].append(v)
                k += 1
                if i < n and toks[i].token_type == TokenType.COMMA:
                    i += 1
                    continue
                if i < n and toks[i].token_type == TokenType.R_PAREN and k == len(names):
                    i += 1
                    break
                return None
            if i < n:
                if toks[i].token_type != TokenType.COMMA:
                    return None
                i += 1
        arrays = []
        for k, ty in enumerate(types):
            vals = [scalar_to_storage(v, ty, self.state.dateformat) for v in cols[k]]
            arrays.append(pa.array(vals, _storage_pa(ty)))
        return self.insert_arrow(t, names, arrays, rows=len(cols[0]) if cols else 0, storage=True)

    def _insert_values(self, t: Table, names: list[str], values: exp.Values) -> int:
        rows = values.expressions
        ctx = self._context()
        tr = Translator(ctx)
        width = len(names)
        cols: list[list[object]] = [[] for _ in range(width)]
        col_types: list[SqlType] = []
        for nm in names:
            c = t.col(nm)
            if c is None:
                raise SqlServerError(207, f"Invalid column name '{nm}'.")
            col_types.append(c.type)
        defaults_mask: list[list[bool]] = [[] for _ in range(width)]
        for row in rows:
            exprs = row.expressions if isinstance(row, exp.Tuple) else [row]
            if len(exprs) != width:
                raise SqlServerError(
                    109 if len(exprs) < width else 110,
                    "There are more columns in the INSERT statement than values specified in the VALUES "
                    "clause. The "
                    "number of values in the VALUES clause must match the number of columns specified in the "
                    "INSERT "
                    "statement."
                    if len(exprs) < width
                    else "There are fewer columns in the INSERT statement than values specified in the "
                    "VALUES clause. "
                    "The number of values in the VALUES clause must match the number of columns specified in "
                    "the "
                    "INSERT statement.",
                    severity=15,
                )
            for k, e in enumerate(exprs):
                if (
                    isinstance(e, exp.Var)
                    and e.name.upper() == "DEFAULT"
                    or isinstance(e, exp.Column)
                    and e.name.upper() == "DEFAULT"
                    and not e.table
                ):
                    cols[k].append(None)
                    defaults_mask[k].append(True)
                    continue
                defaults_mask[k].append(False)
                node = tr._rw(e, [], None)
                nt = type_of(node)
                if node.meta and "ss_const" in node.meta and not node.meta.get("ss_raw"):
                    cols[k].append(node.meta["ss_const"])
                elif "ss_storage" in (node.meta or {}) and nt is not None and nt == col_types[k]:
                    cols[k].append(_Stored(node.meta["ss_storage"]))
                else:
                    tr.ctx.views.clear()
                    val = self._scalar_node(node, ctx)
                    cols[k].append(val)
        arrays = []
        for k, ty in enumerate(col_types):
            vals = [
                scalar_to_storage(v, ty, self.state.dateformat) if not isinstance(v, _Stored) else v.value
                for v in cols[k]
            ]
            arrays.append(pa.array(vals, _storage_pa(ty)))
        default_rows = [m for m in defaults_mask]
        return self.insert_arrow(t, names, arrays, rows=len(rows), storage=True, default_rows=default_rows)

    def _scalar_node(self, node: exp.Expression, ctx: Context) -> object:
        self._register_views(ctx)
        t = type_of(node)
        sql = "SELECT " + duck_sql(node)
        tbl = self._arrow(sql)
        arr = tbl.column(0).combine_chunks()
        if t is not None:
            if node.meta.get("ss_raw") or t.name in SPECIAL_STORAGE:
                return _Stored(arr[0].as_py())
            return self._to_result(arr, t)[0].as_py()
        return arr[0].as_py()

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
                arr = pa.array(vals, pa.int64()).cast(_storage_pa(c.type))
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
            v = val.value if isinstance(val, _Stored) else scalar_to_storage(val, c.type, self.state.dateformat)
        arr = pa.array([v], _storage_pa(c.type))
        if c.type.is_string or c.type.name in ("binary", "varbinary"):
            arr = to_storage_array(arr, c.type, f"{self.database}.{c.name}", c.name)
        return pa.repeat(arr[0], n) if n else pa.array([], _storage_pa(c.type))

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
                dup = _first(
                    self.cur.execute(f"SELECT {kcols} FROM __ss_chk{where} GROUP BY ALL HAVING count(*) > 1 LIMIT 1")
                )
                if dup is None and self._count(t):
                    on = " AND ".join(
                        f"n.c{p} IS NOT DISTINCT FROM o.{quote(t.column(k).name)}"
                        for p, k in zip(pos, keys, strict=True)
                    )
                    sel = ", ".join(f"n.c{p}" for p in pos)
                    dup = _first(self.cur.execute(f"SELECT {sel} FROM __ss_chk n JOIN {t.physical} o ON {on} LIMIT 1"))
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

    # ------------------------------------------------------------------ UPDATE / DELETE

    def _dml_target(self, tree: exp.Expression) -> tuple[Table, exp.Table]:
        target = tree.this
        if not isinstance(target, exp.Table):
            raise syntax_error(tree.key.upper())
        parts = [p.name for p in (target.args.get("catalog"), target.args.get("db")) if p is not None] + [target.name]
        return self._table(parts), target

    def _update(self, st: Statement) -> Iterator[Result]:
        tree = parse_statement(st.text, st.tokens)
        if not isinstance(tree, exp.Update):
            raise syntax_error("UPDATE")
        if tree.args.get("from") or tree.args.get("from_") or tree.args.get("returning"):
            raise unsupported("UPDATE ... FROM / OUTPUT")
        t, target = self._dml_target(tree)
        ctx = self._context()
        tr = Translator(ctx)
        src = tr.bind_table(target)
        target.set("alias", None)
        alias_name = src.alias
        scopes = [[src]]
        sets = []
        key_cols = {k.lower() for i in t.indexes if i.unique for k, _ in i.columns}
        touches_key = False
        for e in tree.expressions:
            if not isinstance(e, exp.EQ) or not isinstance(e.this, exp.Column):
                raise syntax_error("SET")
            c = t.col(e.this.name)
            if c is None:
                raise SqlServerError(207, f"Invalid column name '{e.this.name}'.")
            if c.identity is not None:
                raise SqlServerError(8102, f"Cannot update identity column '{c.name}'.")
            if c.computed is not None:
                raise SqlServerError(
                    271,
                    f'The column "{c.name}" cannot be modified because it is either a computed '
                    "column or is the result of a UNION operator.",
                )
            if c.is_rowversion:
                raise SqlServerError(272, "Cannot update a timestamp column.")
            touches_key = touches_key or c.name.lower() in key_cols
            val = tr._rw(e.expression, scopes, None)
            sets.append((c, self._assign_expr(t, c, val)))
        where = tree.args.get("where")
        if where is not None:
            tr._rewrite_tree(where.this, scopes, [src])
        self._register_views(ctx)
        rv = next((c for c in t.columns if c.is_rowversion), None)
        set_sql = ", ".join(f"{quote(c.name)} = {v}" for c, v in sets)
        if rv is not None:
            set_sql += f", {quote(rv.name)} = __ss_rv"
        where_sql = f" WHERE {duck_sql(where.this)}" if where is not None else ""
        sql = f"UPDATE {t.physical} AS {quote(alias_name)} SET {set_sql}{where_sql}"
        if rv is not None:
            with self.engine.lock:
                self.engine.dbts += 1
                stamp = self.engine.dbts
            sql = sql.replace("__ss_rv", f"unhex('{stamp.to_bytes(8, 'big').hex()}')")
        n = self._guarded(sql, t if touches_key else None)
        self.rowcount = n
        yield RowCount(n, "UPDATE")

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
                    st = to_storage_array(pa.array([st], _storage_pa(c.type)), c.type, full, c.name)[0].as_py()
                from .translate import storage_literal

                return storage_literal(st, c.type).sql("duckdb")
        if val.meta.get("ss_raw") and vt is not None and vt.name == c.type.name:
            unit = 10 ** (7 - c.type.scale)
            if vt.name == "datetime2" and vt.scale > c.type.scale:
                msg = "__ss_242: " + out_of_range("datetime2", "datetime2").message
                return f"__ss_round_dt2({duck_sql(val)}, {unit}, {_sqlstr(msg)})"
            if vt.name == "time" and vt.scale > c.type.scale:
                return f"__ss_round_ticks({duck_sql(val)}, {unit}) % {TICKS_PER_DAY}"
            if vt.name == "datetimeoffset" and vt.scale > c.type.scale:
                return f"__ss_dto_round({duck_sql(val)}, {unit})"
            return duck_sql(val)
        n = c.type.name
        native = val
        if val.meta.get("ss_raw"):
            from .translate import Translator as _T

            native = _T(self._context())._native(val)
        body = duck_sql(native)
        if n == "datetime2":
            src = vt.name if vt is not None else "varchar"
            msg = _sqlstr("__ss_242: " + out_of_range(src, "datetime2").message)
            return f"__ss_round_dt2(__ss_ts_dt2(CAST({body} AS TIMESTAMP)), {10 ** (7 - c.type.scale)}, {msg})"
        if n == "time":
            return f"__ss_round_ticks(__ss_t_time(CAST({body} AS TIME)), {10 ** (7 - c.type.scale)})"
        if n == "datetimeoffset":
            return f"__ss_tz_dto(CAST({body} AS TIMESTAMPTZ))"
        if n == "uniqueidentifier":
            return f"__ss_guid_key({body})"
        if n == "datetime":
            return f"__ss_dt_round(CAST({body} AS TIMESTAMP))"
        if n == "smalldatetime":
            return f"__ss_sdt_round(CAST({body} AS TIMESTAMP))"
        if c.type.is_string and c.type.length > 0:
            msg = f"__ss_trunc: String or binary data would be truncated in table '{full}', column '{c.name}'."
            return (
                f"(SELECT CASE WHEN length(__ss_v) > {c.type.length} THEN error({_sqlstr(msg)}) ELSE __ss_v "
                "END "
                f"FROM (SELECT CAST({body} AS VARCHAR) AS __ss_v))"
            )
        return f"CAST({body} AS {duck_type(c.type)})"

    def _guarded(self, sql: str, key_table: Table | None) -> int:
        """Run a DML statement; if it changed key columns, check uniqueness after it and undo a violation."""
        own_txn = key_table is not None and self.trancount == 0
        if own_txn:
            self._duck("BEGIN TRANSACTION")
        try:
            r = _first(self._duck(sql))
        except SqlServerError:
            if own_txn:
                self.cur.execute("ROLLBACK")
            raise
        n = int(r[0]) if r else 0  # type: ignore[call-overload]
        if key_table is not None:
            for idx in key_table.indexes:
                if not idx.unique:
                    continue
                cols = ", ".join(quote(key_table.column(k).name) for k, _ in idx.columns)
                dup = _first(
                    self.cur.execute(
                        f"SELECT {cols} FROM {key_table.physical} GROUP BY ALL HAVING count(*) > 1 LIMIT 1"
                    )
                )
                if dup is not None:
                    with contextlib.suppress(duckdb.Error):
                        self.cur.execute("ROLLBACK")
                    if not own_txn:
                        self.trancount = 0
                        self._discard_ddl()
                    self._raise_duplicate(key_table, idx, [k for k, _ in idx.columns], tuple(dup))
        if own_txn:
            self.cur.execute("COMMIT")
        return n

    def _delete(self, st: Statement) -> Iterator[Result]:
        tree = parse_statement(st.text, st.tokens)
        if not isinstance(tree, exp.Delete):
            raise syntax_error("DELETE")
        if tree.args.get("using") or tree.args.get("returning") or tree.args.get("tables"):
            raise unsupported("DELETE ... FROM join / OUTPUT")
        t, target = self._dml_target(tree)
        ctx = self._context()
        tr = Translator(ctx)
        src = tr.bind_table(target)
        where = tree.args.get("where")
        if where is not None:
            tr._rewrite_tree(where.this, [[src]], [src])
        self._register_views(ctx)
        where_sql = f" WHERE {duck_sql(where.this)}" if where is not None else ""
        top = tree.args.get("limit")
        if top is not None:
            raise unsupported("DELETE TOP")
        r = _first(self._duck(f"DELETE FROM {t.physical} AS {quote(src.alias)}{where_sql}"))
        n = int(r[0]) if r else 0  # type: ignore[call-overload]
        self.rowcount = n
        yield RowCount(n, "DELETE")

    # ------------------------------------------------------------------ DDL

    def _create(self, st: Statement) -> Iterator[Result]:
        w = st.words + ["", "", ""]
        if w[1] == "TABLE":
            yield from self._create_table(ddl.parse_create_table(st.text, st.tokens))
        elif w[1] == "SCHEMA":
            name = st.tokens[2].text
            cat = self._ddl()
            if cat.schema_name(name) is not None:
                raise SqlServerError(2714, f"There is already an object named '{name}' in the database.")
            self._duck(f"CREATE SCHEMA {quote(name)}")
            cat.schemas[name] = max(cat.schemas.values()) + 1 if max(cat.schemas.values()) >= 5 else 5
            self._ddl_done(schemas=[name])
            yield Done("CREATE SCHEMA")
        elif w[1] == "VIEW":
            yield from self._create_view(st)
        elif "INDEX" in w[1:4]:
            yield from self._create_index(ddl.parse_create_index(st.text, st.tokens))
        else:
            raise unsupported("CREATE " + w[1])

    def _create_table(self, ct: ddl.CreateTable) -> Iterator[Result]:
        parts = ct.name
        if parts[-1].startswith("#"):
            raise unsupported("temporary table " + parts[-1])
        schema_in = parts[-2] if len(parts) >= 2 else "dbo"
        cat = self._ddl()
        schema = cat.schema_name(schema_in)
        if schema is None:
            raise SqlServerError(
                2760,
                f'The specified schema name "{schema_in}" either does not exist or you do not have '
                "permission to use it.",
            )
        name = parts[-1]
        if cat.table(schema, name) is not None:
            raise SqlServerError(2714, f"There is already an object named '{name}' in the database.")
        oid = self.engine.new_id()
        cols: list[Column] = []
        for i, cd in enumerate(ct.columns, 1):
            if any(c.name.lower() == cd.name.lower() for c in cols):
                raise SqlServerError(
                    2705,
                    f"Column names in each table must be unique. Column name '{cd.name}' in table '{name}' "
                    "is specified more than once.",
                )
            if cd.identity is not None:
                if (
                    cd.type is None
                    or cd.type.name not in ("int", "bigint", "smallint", "tinyint", "decimal", "numeric")
                    or (cd.type.name in ("decimal", "numeric") and cd.type.scale)
                ):
                    raise SqlServerError(
                        2749,
                        f"Identity column '{cd.name}' must be of data type int, bigint, smallint, tinyint, "
                        "or decimal or numeric with a scale of 0, and constrained to be nonnullable.",
                    )
                if any(c.identity for c in cols):
                    raise SqlServerError(
                        2744,
                        f"Multiple identity columns specified for table '{name}'. Only one identity column "
                        "per table is allowed.",
                    )
            ty = cd.type or make_type("int", [])
            nullable = (
                cd.nullable if cd.nullable is not None else not (cd.identity is not None or ty.name == "timestamp")
            )
            col = Column(cd.name, ty, nullable, cd.identity, column_id=i, rowguidcol=cd.rowguidcol)
            if cd.default is not None:
                col.default = ddl.normalize_default(cd.default)
                col.default_name = cd.default_name or f"DF__{name[:9]}__{cd.name[:5]}__{oid + i:08X}"
                col.default_id = self.engine.new_id()
            cols.append(col)
        t = Table(
            oid,
            schema,
            name,
            cols,
            create_date=dt.datetime.now().replace(microsecond=0),
            data_compression=ct.data_compression,
        )
        for c, cd in zip(cols, ct.columns, strict=True):
            if cd.computed is not None:
                self._computed(t, c, cd.computed)
        self._add_constraints(t, ct.constraints, creating=True)
        defs = []
        for c in cols:
            if c.computed is not None:
                continue
            defs.append(f"{quote(c.name)} {duck_type(c.type)}" + ("" if c.nullable else " NOT NULL"))
        for c in cols:
            if c.computed is not None:
                ctype = c.type
                defs.append(f"{quote(c.name)} {duck_type(ctype)} GENERATED ALWAYS AS ({c.computed_sql}) VIRTUAL")
        for con in ct.constraints:
            if con.kind == "CHECK":
                defs.append(self._check(t, con))
        self._duck(f"CREATE TABLE {t.physical} ({', '.join(defs)})")
        cat.add(t)
        if t.identity is not None and t.identity.identity is not None:
            with self.engine.lock:
                self.engine.identity[oid] = t.identity.identity[0]
                self.engine.ident_used[oid] = False
        self._ddl_done([(schema.lower(), name.lower())])
        yield Done("CREATE TABLE")

    def _create_view(self, st: Statement) -> Iterator[Result]:
        """CREATE VIEW v AS SELECT ...: a DuckDB view over the translated query; a plain projection of one
        table is also an insert target (BULK INSERT into a view that leaves out computed columns)."""
        c = ddl.Cursor(st.text, st.tokens)
        c.expect("CREATE")
        c.expect("VIEW")
        parts = c.qualified()
        if c.kind() == TokenType.L_PAREN:
            raise unsupported("CREATE VIEW with a column list")
        c.expect("AS")
        if c.at_end():
            raise syntax_error("AS")
        body = st.text[c.toks[c.i].start - c.base :]
        body_toks = tokenize(body)
        tree = parse_statement(body, body_toks)
        ctx = self._context()
        tr = Translator(ctx)
        cols = tr.query(tree, [])
        if ctx.views:
            raise unsupported("a view over the system catalog")
        cat = self._ddl()
        schema = cat.schema_name(parts[-2] if len(parts) >= 2 else "dbo")
        if schema is None:
            raise SqlServerError(
                2760,
                f'The specified schema name "{parts[-2]}" either does not exist or you do not have '
                "permission to use it.",
            )
        name = parts[-1]
        if cat.table(schema, name) is not None:
            raise SqlServerError(2714, f"There is already an object named '{name}' in the database.")
        if any(not col.name for col in cols):
            k = next(i for i, col in enumerate(cols, 1) if not col.name)
            raise SqlServerError(
                4511, f"Create View or Function failed because no column name was specified for column {k}."
            )
        view = Table(self.engine.new_id(), schema, name, [], create_date=dt.datetime.now().replace(microsecond=0))
        for col in cols:
            if col.type is not None and col.type.name in SPECIAL_STORAGE and not col.is_raw:
                raise unsupported(f"a view column computing a {col.type.name} value ({col.name})")
        for i, col in enumerate(cols, 1):
            view.columns.append(Column(col.name, col.type or make_type("int", []), col.nullable, None, column_id=i))
        base = self._view_base(tree)
        if base is not None:
            bt, mapping = base
            view.view_base = (bt.schema, bt.name)
            view.view_map = mapping
            for vc in view.columns:
                src = bt.col(mapping[vc.name.lower()])
                if src is not None:
                    vc.identity = src.identity
        view.view = True
        self._duck(f"CREATE VIEW {view.physical} AS {duck_sql(tree)}")
        cat.add(view)
        self._ddl_done([(schema.lower(), name.lower())])
        yield Done("CREATE VIEW")

    def _view_base(self, tree: exp.Expression) -> tuple[Table, dict[str, str]] | None:
        """The base table and column mapping of a view that is a plain projection of one table."""
        if not isinstance(tree, exp.Select):
            return None
        from_ = tree.args.get("from_") or tree.args.get("from")
        if from_ is None or tree.args.get("joins") or tree.args.get("where") or tree.args.get("group"):
            return None
        src = from_.this
        if not isinstance(src, exp.Table):
            return None
        bt = self.catalog.table(src.args["db"].name if src.args.get("db") else "dbo", src.name)
        if bt is None or bt.view:
            return None
        mapping: dict[str, str] = {}
        for e in tree.expressions:
            inner = e.this if isinstance(e, exp.Alias) else e
            if not isinstance(inner, exp.Column):
                return None
            mapping[(e.alias if isinstance(e, exp.Alias) else inner.name).lower()] = inner.name
        return bt, mapping

    def _computed(self, t: Table, c: Column, text: str) -> None:
        """Translate a computed column's expression over the storage columns; its type is the result's."""
        from .translate import Source

        tree = parse_statement("SELECT " + text, tokenize("SELECT " + text))
        ctx = self._context()
        tr = Translator(ctx)
        others = [OutCol(x.name, x.type, x.nullable) for x in t.columns if x.computed is None and x is not c]
        src = Source("__ss_self", others)
        assert isinstance(tree, exp.Select)
        node = tr._rw(tree.expressions[0], [[src]], None)
        if ctx.views:
            raise unsupported("computed column reading the catalog")
        for col in node.find_all(exp.Column):
            col.set("table", None)
        ty = type_of(node)
        if node.meta.get("ss_raw") and ty is not None:
            node = tr._native(node)
        sql = duck_sql(node)
        if ty is None or ty.name in _RAW_TYPES:
            probe_cols = (
                ", ".join(
                    f"CAST(NULL AS {duck_type(x.type)}) AS {quote(x.name)}"
                    for x in t.columns
                    if x.computed is None and x is not c
                )
                or "1 AS __ss_one"
            )
            try:
                tbl = self.cur.sql(f"SELECT {sql} FROM (SELECT {probe_cols}) LIMIT 0").to_arrow_table()
            except duckdb.Error as e:
                raise SqlServerError(
                    4936,
                    f"Computed column '{c.name}' in table '{t.name}' cannot be translated: {str(e).splitlines()[0]}",
                ) from e
            ty = type_from_arrow(tbl.schema.field(0).type)
            if ty.name == "nvarchar":
                ty = SqlType("varchar", -1) if "nvarchar" not in text.lower() and "N'" not in text else ty
        c.type = ty
        c.computed = (
            "(" + text.strip()[1:-1].strip() + ")"
            if text.strip().startswith("(") and ddl._balanced(text.strip()[1:-1])
            else f"({text.strip()})"
        )
        c.computed = ddl.sql_server_definition(text)
        c.computed_sql = sql
        c.nullable = True

    def _add_column(self, t: Table, cd: ddl.ColDef) -> None:
        """ALTER TABLE ADD column: existing rows get NULL, or the DEFAULT when the column is NOT NULL."""
        if t.col(cd.name) is not None:
            raise SqlServerError(
                2705,
                f"Column names in each table must be unique. Column name '{cd.name}' in table '{t.name}' is "
                "specified more than once.",
            )
        if cd.computed is not None or cd.identity is not None or cd.type is None:
            raise unsupported("ALTER TABLE ADD of a computed or identity column")
        nullable = cd.nullable if cd.nullable is not None else cd.type.name != "timestamp"
        col = Column(cd.name, cd.type, nullable, None, column_id=max(c.column_id for c in t.columns) + 1)
        if cd.default is not None:
            col.default = ddl.normalize_default(cd.default)
            col.default_name = cd.default_name or f"DF__{t.name[:9]}__{cd.name[:5]}__{self.engine.new_id():08X}"
            col.default_id = self.engine.new_id()
        rows = self._count(t)
        if not nullable and rows and col.default is None:
            raise SqlServerError(
                4901,
                "ALTER TABLE only allows columns to be added that can contain nulls, or have a DEFAULT "
                "definition specified, or the column being added is an identity or timestamp column, or "
                "alternatively if none of the previous conditions are satisfied the table must be empty to "
                f"allow addition of this column. Column '{cd.name}' cannot be added to non-empty table "
                f"'{t.name}' because it does not satisfy these conditions.",
            )
        self._duck(f"ALTER TABLE {t.physical} ADD COLUMN {quote(col.name)} {duck_type(col.type)}")
        t.columns.append(col)
        if rows and not nullable and col.default is not None:
            value = self._default_values(col, 1, self._context())[0].as_py()
            from .translate import storage_literal

            self._duck(f"UPDATE {t.physical} SET {quote(col.name)} = {duck_sql(storage_literal(value, col.type))}")

    def _check(self, t: Table, cd: ddl.ConstraintDef) -> str:
        """A CHECK constraint, enforced by DuckDB over the storage columns (violations become error 547)."""
        from .translate import Source

        tree = parse_statement("SELECT " + cd.check, tokenize("SELECT " + cd.check))
        ctx = self._context()
        tr = Translator(ctx)
        src = Source("__ss_self", [OutCol(x.name, x.type, x.nullable) for x in t.columns if x.computed is None])
        assert isinstance(tree, exp.Select)
        node = tr._rw(tree.expressions[0], [[src]], None)
        if ctx.views:
            raise unsupported("CHECK constraint reading the catalog")
        for col in node.find_all(exp.Column):
            col.set("table", None)
        name = cd.name or f"CK__{t.name[:9]}__{self.engine.new_id():08X}"
        column = t.col(cd.columns[0][0]) if cd.columns else None
        t.checks.append(
            Check(
                name,
                self.engine.new_id(),
                ddl.sql_server_definition(cd.check),
                column.column_id if column else 0,
            )
        )
        return f"CONSTRAINT {quote(name)} CHECK ({duck_sql(node)})"

    def _add_constraints(self, t: Table, cons: list[ddl.ConstraintDef], creating: bool) -> None:
        for cd in cons:
            if cd.kind == "CHECK":
                if not creating:
                    raise unsupported("ALTER TABLE ADD CHECK constraint")
                continue
            for cname, _d in cd.columns:
                if t.col(cname) is None:
                    raise SqlServerError(1911, f"Column name '{cname}' does not exist in the target table or view.")
            if cd.kind in ("PK", "UQ"):
                if cd.kind == "PK" and t.pk is not None:
                    raise SqlServerError(1779, f"Table '{t.name}' already has a primary key defined on it.")
                name = cd.name or f"{cd.kind}__{t.name[:8]}__{self.engine.new_id():016X}"
                if self._name_taken(name):
                    raise SqlServerError(2714, f"There is already an object named '{name}' in the database.")
                clustered = (
                    cd.clustered
                    if cd.clustered is not None
                    else (cd.kind == "PK" and not any(i.clustered for i in t.indexes))
                )
                if clustered and any(i.clustered for i in t.indexes):
                    raise SqlServerError(
                        1902,
                        f"Cannot create more than one clustered index on table '{t.two_part}'. Drop the "
                        "existing clustered index before creating another.",
                    )
                if cd.kind == "PK":
                    for cname, _d in cd.columns:
                        col = t.col(cname)
                        assert col is not None
                        if col.nullable and not creating:
                            raise SqlServerError(
                                8111,
                                f"Cannot define PRIMARY KEY constraint on nullable column in table '{t.name}'.",
                            )
                        col.nullable = False
                iid = 1 if clustered else max([i.index_id for i in t.indexes] + [1]) + 1
                cols = [(t.column(c).name, d) for c, d in cd.columns]
                t.indexes.append(Index(name, iid, cd.kind, True, clustered, cols, object_id=self.engine.new_id()))
            elif cd.kind == "FK":
                ref_parts = cd.ref
                ref_schema = ref_parts[-2] if len(ref_parts) >= 2 else "dbo"
                cat = self._ddl()
                ref = (
                    cat.table(ref_schema, ref_parts[-1])
                    if not (ref_parts[-1].lower() == t.name.lower() and ref_schema.lower() == t.schema.lower())
                    else t
                )
                if ref is None:
                    raise SqlServerError(
                        1767, f"Foreign key '{cd.name}' references invalid table '{'.'.join(ref_parts)}'."
                    )
                ref_cols = cd.ref_columns or [k for k, _ in (ref.pk.columns if ref.pk else [])]
                for rc in ref_cols:
                    if ref.col(rc) is None:
                        raise SqlServerError(
                            1770,
                            f"Foreign key '{cd.name}' references invalid column '{rc}' in referenced table "
                            f"'{ref.name}'.",
                        )
                if len(ref_cols) != len(cd.columns):
                    raise SqlServerError(
                        8140,
                        "More than one key specified in column level FOREIGN KEY constraint, table '" + t.name + "'.",
                    )
                name = cd.name or f"FK__{t.name[:8]}__{self.engine.new_id():016X}"
                t.fks.append(
                    ForeignKey(
                        name,
                        self.engine.new_id(),
                        [t.column(c).name for c, _ in cd.columns],
                        ref.schema,
                        ref.name,
                        [ref.column(c).name for c in ref_cols],
                        cd.on_delete,
                        cd.on_update,
                    )
                )

    def _name_taken(self, name: str) -> bool:
        return any(o[1].lower() == name.lower() for o in self.catalog.objects())

    def _create_index(self, ci: ddl.CreateIndex) -> Iterator[Result]:
        cat = self._ddl()
        t = self._table(ci.table)
        t = cat.table(t.schema, t.name)  # type: ignore[assignment]
        assert t is not None
        if any(i.name.lower() == ci.name.lower() for i in t.indexes):
            raise SqlServerError(
                1913,
                f"The operation failed because an index or statistics with name '{ci.name}' already exists "
                f"on table '{t.two_part}'.",
            )
        for cname, _d in ci.columns:
            if t.col(cname) is None:
                raise SqlServerError(1911, f"Column name '{cname}' does not exist in the target table or view.")
        for cname in ci.include:
            if t.col(cname) is None:
                raise SqlServerError(1911, f"Column name '{cname}' does not exist in the target table or view.")
        if ci.clustered and any(i.clustered for i in t.indexes):
            raise SqlServerError(
                1902,
                f"Cannot create more than one clustered index on table '{t.two_part}'. Drop the existing "
                "clustered index before creating another.",
            )
        iid = 1 if ci.clustered else max([i.index_id for i in t.indexes] + [1]) + 1
        idx = Index(
            ci.name,
            iid,
            "IX",
            ci.unique,
            ci.clustered,
            [(t.column(c).name, d) for c, d in ci.columns],
            [t.column(c).name for c in ci.include],
            ddl.normalize_filter(ci.filter) if ci.filter else None,
        )
        if ci.unique:
            if ci.filter:
                raise unsupported("filtered UNIQUE index")
            cols = ", ".join(quote(t.column(k).name) for k, _ in ci.columns)
            dup = _first(self._duck(f"SELECT {cols} FROM {t.physical} GROUP BY ALL HAVING count(*) > 1 LIMIT 1"))
            if dup is not None:
                shown = ", ".join(display_value(v, t.column(k).type) for v, (k, _) in zip(dup, ci.columns, strict=True))
                raise SqlServerError(
                    1505,
                    "The CREATE UNIQUE INDEX statement terminated because a duplicate key was found for the "
                    f"object name '{t.two_part}' and the index name '{ci.name}'. The duplicate key value "
                    f"is ({shown}).",
                )
        t.indexes.append(idx)
        self._ddl_done([(t.schema.lower(), t.name.lower())])
        yield Done("CREATE INDEX")

    def _alter(self, st: Statement) -> Iterator[Result]:
        a = ddl.parse_alter_table(st.text, st.tokens)
        cat = self._ddl()
        t0 = self._table(a.table)
        t = cat.table(t0.schema, t0.name)
        assert t is not None
        if a.drop_constraint:
            name = a.drop_constraint.lower()
            before = len(t.indexes) + len(t.fks)
            t.indexes = [i for i in t.indexes if not (i.kind in ("PK", "UQ") and i.name.lower() == name)]
            t.fks = [f for f in t.fks if f.name.lower() != name]
            for c in t.columns:
                if c.default_name and c.default_name.lower() == name:
                    c.default = c.default_name = None
                    c.default_id = 0
                    before += 1
            if before == len(t.indexes) + len(t.fks):
                raise SqlServerError(3728, f"'{a.drop_constraint}' is not a constraint.")
        elif a.drop_column:
            raise unsupported("ALTER TABLE DROP COLUMN")
        elif a.check_toggle:
            pass
        else:
            for newcol in a.columns:
                self._add_column(t, newcol)
            for dname, expr, cname in a.defaults:
                col = t.column(cname)
                if col.default is not None:
                    msg = "Column already has a DEFAULT bound to it. Could not create constraint or index."
                    raise SqlServerError(1781, msg)
                col.default = ddl.normalize_default(expr)
                col.default_name = dname or f"DF__{t.name[:9]}__{col.name[:5]}__{self.engine.new_id():08X}"
                col.default_id = self.engine.new_id()
            for cd in a.constraints:
                if cd.kind in ("PK", "UQ"):
                    keys = [k for k, _ in cd.columns]
                    for k in keys:
                        if t.col(k) is None:
                            raise SqlServerError(1911, f"Column name '{k}' does not exist in the target table or view.")
                    cols = ", ".join(quote(t.column(k).name) for k in keys)
                    if cd.kind == "PK":
                        nulls = _first(
                            self._duck(
                                f"SELECT count(*) FROM {t.physical} WHERE "
                                + " OR ".join(f"{quote(t.column(k).name)} IS NULL" for k in keys)
                            )
                        )
                        if nulls and nulls[0]:
                            raise SqlServerError(
                                8111,
                                f"Cannot define PRIMARY KEY constraint on nullable column in table '{t.name}'.",
                            )
                    dup = _first(
                        self._duck(f"SELECT {cols} FROM {t.physical} GROUP BY ALL HAVING count(*) > 1 LIMIT 1")
                    )
                    if dup is not None:
                        shown = ", ".join(display_value(v, t.column(k).type) for v, k in zip(dup, keys, strict=True))
                        raise SqlServerError(
                            1505,
                            "The CREATE UNIQUE INDEX statement terminated because a duplicate key was found "
                            f"for the object name '{t.two_part}' and the index name '{cd.name}'. The "
                            f"duplicate key value is ({shown}).",
                        )
            self._add_constraints(t, a.constraints, creating=False)
        self._ddl_done([(t.schema.lower(), t.name.lower())])
        yield Done("ALTER TABLE")

    def _drop(self, st: Statement) -> Iterator[Result]:
        c = ddl.Cursor(st.text, st.tokens)
        c.expect("DROP")
        if c.accept("TABLE"):
            if_exists = False
            if c.accept("IF"):
                c.expect("EXISTS")
                if_exists = True
            cat = self._ddl()
            keys = []
            while True:
                parts = c.qualified()
                t = self._maybe_table(".".join(parts)) if len(parts) <= 2 else None
                t = cat.table(parts[-2], parts[-1]) if len(parts) >= 2 else cat.table("dbo", parts[-1])
                if t is not None and t.view:
                    raise SqlServerError(
                        3705,
                        f"Cannot use DROP TABLE with '{t.name}' because '{t.name}' is a view. Use DROP VIEW.",
                    )
                if t is None:
                    if not if_exists:
                        raise SqlServerError(
                            3701,
                            f"Cannot drop the table '{'.'.join(parts)}', because it does not exist or you do "
                            "not have permission.",
                            severity=11,
                        )
                else:
                    for other in cat.tables.values():
                        if other is t:
                            continue
                        for f in other.fks:
                            if f.ref_schema.lower() == t.schema.lower() and f.ref_table.lower() == t.name.lower():
                                raise SqlServerError(
                                    3726,
                                    f"Could not drop object '{t.two_part}' because it is referenced by a "
                                    "FOREIGN KEY constraint.",
                                )
                    self._duck(f"DROP TABLE {t.physical}")
                    cat.remove(t)
                    keys.append((t.schema.lower(), t.name.lower()))
                if c.kind() == TokenType.COMMA:
                    c.next()
                    continue
                break
            self._ddl_done(keys)
            yield Done("DROP TABLE")
        elif c.accept("VIEW"):
            if_exists = c.accept("IF")
            if if_exists:
                c.expect("EXISTS")
            cat = self._ddl()
            parts = c.qualified()
            v = cat.table(parts[-2] if len(parts) >= 2 else "dbo", parts[-1])
            if v is None or not v.view:
                if not if_exists:
                    raise SqlServerError(
                        3701,
                        f"Cannot drop the view '{'.'.join(parts)}', because it does not exist or you do not "
                        "have "
                        "permission.",
                        severity=11,
                    )
            else:
                self._duck(f"DROP VIEW {v.physical}")
                cat.remove(v)
                self._ddl_done([(v.schema.lower(), v.name.lower())])
            yield Done("DROP VIEW")
        elif c.accept("INDEX"):
            cat = self._ddl()
            name = c.ident()
            c.expect("ON")
            parts = c.qualified()
            t0 = self._table(parts)
            t = cat.table(t0.schema, t0.name)
            assert t is not None
            idx = next((i for i in t.indexes if i.name.lower() == name.lower() and i.kind == "IX"), None)
            if idx is None:
                raise SqlServerError(
                    3701,
                    f"Cannot drop the index '{t.two_part}.{name}', because it does not exist or you do not "
                    "have permission.",
                    severity=11,
                )
            t.indexes.remove(idx)
            self._ddl_done([(t.schema.lower(), t.name.lower())])
            yield Done("DROP INDEX")
        elif c.accept("SCHEMA"):
            name = c.ident()
            cat = self._ddl()
            s = cat.schema_name(name)
            if s is None:
                raise SqlServerError(
                    3701,
                    f"Cannot drop the schema '{name}', because it does not exist or you do not have permission.",
                    severity=11,
                )
            if any(t.schema == s for t in cat.tables.values()):
                raise SqlServerError(3729, f"Cannot drop schema '{s}' because it is being referenced by object.")
            self._duck(f"DROP SCHEMA {quote(s)}")
            del cat.schemas[s]
            self._ddl_done(schemas=[s])
            yield Done("DROP SCHEMA")
        else:
            raise unsupported("DROP " + c.peek())

    def _truncate(self, st: Statement) -> Iterator[Result]:
        c = ddl.Cursor(st.text, st.tokens)
        c.expect("TRUNCATE")
        c.expect("TABLE")
        t = self._table(c.qualified())
        for other in self.catalog.tables.values():
            for f in other.fks:
                if f.ref_schema.lower() == t.schema.lower() and f.ref_table.lower() == t.name.lower():
                    raise SqlServerError(
                        4712,
                        f"Cannot truncate table '{t.two_part}' because it is being referenced by a FOREIGN "
                        "KEY constraint.",
                    )
        self._duck(f"DELETE FROM {t.physical}")
        if t.identity is not None and t.identity.identity is not None:
            with self.engine.lock:
                self.engine.identity[t.object_id] = t.identity.identity[0]
                self.engine.ident_used[t.object_id] = False
        yield Done("TRUNCATE TABLE")

    # ------------------------------------------------------------------ EXEC

    def _exec(self, st: Statement) -> Iterator[Result | BulkLoadRequest]:
        toks = st.tokens
        if len(toks) > 1 and toks[1].token_type == TokenType.L_PAREN:
            inner = st.text[toks[1].start - toks[0].start :]
            tree = parse_statement("SELECT " + inner, tokenize("SELECT " + inner))
            sql = self._scalar(tree)
            if not isinstance(sql, str):
                raise syntax_error("EXEC")
            yield from self._batch(sql)
            return
        i = 1
        if toks[i].token_type == TokenType.PARAMETER:
            raise unsupported("EXEC with a return-status variable")
        names: list[str] = []
        while i < len(toks) and (
            toks[i].token_type in (TokenType.DOT,) or not names or toks[i - 1].token_type == TokenType.DOT
        ):
            if toks[i].token_type != TokenType.DOT:
                names.append(toks[i].text)
            i += 1
        proc = names[-1].lower() if names else ""
        args = [
            t.text for t in toks[i:] if t.token_type in (TokenType.STRING, TokenType.NATIONAL_STRING, TokenType.NUMBER)
        ]
        if proc in ("sp_tablecollations_100", "sp_tablecollations_90", "sp_tablecollations"):
            yield self._tablecollations(args[0] if args else "")
        elif proc == "sp_executesql":
            if not args:
                raise syntax_error("sp_executesql")
            yield from self._executesql(toks[i:])
        elif proc in ("sp_reset_connection", "sp_setapprole"):
            yield Done("EXECUTE")
        else:
            raise SqlServerError(2812, f"Could not find stored procedure '{'.'.join(names)}'.")

    def _executesql(self, toks: list[Token]) -> Iterator[Result | BulkLoadRequest]:
        """EXEC sp_executesql N'stmt' [, N'@p type, ...' [, @p = value, ...]] (no OUTPUT parameters)."""
        groups: list[list[Token]] = [[]]
        depth = 0
        for t in toks:
            if t.token_type == TokenType.COMMA and depth == 0:
                groups.append([])
                continue
            depth += 1 if t.token_type == TokenType.L_PAREN else -1 if t.token_type == TokenType.R_PAREN else 0
            groups[-1].append(t)
        if not groups[0] or groups[0][0].token_type not in (TokenType.STRING, TokenType.NATIONAL_STRING):
            raise unsupported("sp_executesql with a statement that is not a literal")
        sql = groups[0][0].text
        declared: dict[str, SqlType] = {}
        if len(groups) > 1:
            decl = groups[1][0].text if groups[1] else ""
            for part in _split_top(decl):
                bits = part.strip().split(None, 1)
                if len(bits) == 2:
                    declared[bits[0].lower()] = parse_type(bits[1].replace("OUTPUT", "").replace("output", ""))
        saved = dict(self.state.variables)
        try:
            for g in groups[2:]:
                words = [t.text for t in g]
                if any(w.upper() in ("OUTPUT", "OUT") for w in words):
                    raise unsupported("sp_executesql OUTPUT parameters")
                if len(g) < 3 or g[0].token_type != TokenType.PARAMETER:
                    raise unsupported("sp_executesql positional parameters")
                name = "@" + g[1].text.lower()
                ty = declared.get(name)
                if g[3:] and g[3].token_type == TokenType.PARAMETER:
                    key = "@" + g[4].text.lower() if len(g) > 4 else ""
                    if key not in saved:
                        raise SqlServerError(137, f'Must declare the scalar variable "{key}".', severity=15)
                    value = saved[key][1]
                else:
                    value, _ = _fast_literal(g, 3, ty or make_type("nvarchar", ["4000"]))
                    if value is _NOT_LITERAL:
                        raise unsupported("sp_executesql parameter value that is not a literal")
                self.state.variables[name] = (ty, value)
            yield from self._batch(sql)
        finally:
            self.state.variables = saved

    def _tablecollations(self, name: str) -> ResultSet:
        t = self._table_by_text(name)
        cols = [
            ColumnSpec("colid", "int", 4, 10, nullable=False),
            ColumnSpec("name", "nvarchar", 256, nullable=False, collation=COLLATION),
            ColumnSpec("tds_collation", "binary", 5),
            ColumnSpec("collation", "nvarchar", 256, collation=COLLATION),
        ]
        rows = [c for c in t.columns]
        tds = bytes.fromhex("0904D00034")
        batch = pa.RecordBatch.from_arrays(
            [
                pa.array([c.column_id for c in rows], pa.int32()),
                pa.array([c.name for c in rows], pa.string()),
                pa.array([tds if c.type.is_string and c.type.name != "xml" else None for c in rows], pa.binary()),
                pa.array(
                    [COLLATION if c.type.is_string and c.type.name != "xml" else None for c in rows],
                    pa.string(),
                ),
            ],
            names=["colid", "name", "tds_collation", "collation"],
        )
        return ResultSet(cols, iter([batch]))

    def _bulkcopy_metadata(self, sql: str) -> Iterator[Result]:
        """SqlBulkCopy's metadata batch (mssql-python): @@TRANCOUNT, the table's FMTONLY shape, collations."""
        import re

        m = re.search(r"sp_tablecollations(?:_100|_90)?\s+N?'((?:[^']|'')*)'", sql, re.I)
        if not m:
            raise unsupported("bulk copy metadata batch")
        name = m.group(1).replace("''", "'")
        t = self._table_by_text(name)
        if re.match(r"\s*select\s+@@trancount", sql, re.I):
            yield self._result_set(f"SELECT CAST({self.trancount} AS INTEGER)", [OutCol("", make_type("int", []))])
        old = self.state.fmtonly
        self.state.fmtonly = True
        try:
            yield from self._select(split_batch(f"SELECT * FROM {_bracket(t.schema)}.{_bracket(t.name)}")[0])
        finally:
            self.state.fmtonly = old
        yield self._tablecollations(name)

    # ------------------------------------------------------------------ bulk load

    def _insert_bulk(self, st: Statement) -> BulkLoadRequest:
        """`INSERT BULK t (col type, ...) WITH (...)`: the rows follow in a BULK_LOAD packet."""
        c = ddl.Cursor(st.text, st.tokens)
        c.expect("INSERT")
        c.expect("BULK")
        parts = c.qualified()
        t = self._table(parts)
        specs: list[ColumnSpec] = []
        if c.kind() == TokenType.L_PAREN:
            c.next()
            while True:
                name = c.ident()
                ty = c.type()
                while c.peek() in ("COLLATE", "NULL", "NOT"):
                    if c.accept("COLLATE"):
                        c.next()
                    elif c.accept("NOT"):
                        c.expect("NULL")
                    else:
                        c.next()
                col = t.col(name)
                if col is None:
                    raise SqlServerError(207, f"Invalid column name '{name}'.")
                specs.append(
                    ty.column_spec(
                        col.name,
                        nullable=col.nullable,
                        identity=col.identity is not None,
                        computed=col.computed is not None,
                    )
                )
                if c.kind() == TokenType.COMMA:
                    c.next()
                    continue
                c.expect(")")
                break
        else:
            specs = [c_.type.column_spec(c_.name, nullable=c_.nullable) for c_ in t.columns if c_.computed is None]
        hints: set[str] = set()
        if c.accept("WITH"):
            raw = c.paren_raw()[1:-1]
            hints = {h.strip().split("=")[0].strip().upper() for h in raw.split(",") if h.strip()}
        return BulkLoadRequest(
            f"{t.schema}.{t.name}",
            specs,
            keep_identity="KEEP_IDENTITY" in hints,
            tablock="TABLOCK" in hints,
            check_constraints="CHECK_CONSTRAINTS" in hints,
            keep_nulls="KEEP_NULLS" in hints,
        )

    def bulk_insert(self, request: BulkLoadRequest, batch: pa.RecordBatch) -> int:
        """Insert one decoded BULK_LOAD batch (ResultSet conventions, columns in request order)."""
        parts = request.table.split(".", 1)
        t = self._table(parts)
        names = [c.name for c in request.columns]
        arrays = [batch.column(i) for i in range(batch.num_columns)]
        # Naming the identity column keeps its values: SqlBulkCopy (KeepIdentity) and FreeTDS
        # (BCPKEEPIDENTITY) send it only then, without a KEEP_IDENTITY hint; otherwise they leave it out.
        id_col = t.identity
        keep_identity = request.keep_identity or (
            id_col is not None and any(nm.lower() == id_col.name.lower() for nm in names)
        )
        n = self.insert_arrow(
            t,
            names,
            arrays,
            rows=batch.num_rows,
            explicit_identity=keep_identity,
            keep_nulls=request.keep_nulls,
            bulk=True,
        )
        self.rowcount = n
        return n

    def _bulk_insert_file(self, st: Statement) -> Iterator[Result]:
        from .bulkfile import parse_bulk_insert, read_bulk_file

        spec = parse_bulk_insert(st.text, st.tokens)
        t = self._table(spec.table)
        if self.engine.bulk_dir is None:
            raise SqlServerError(
                4861,
                f'Cannot bulk load because the file "{spec.path}" could not be opened. Operating system '
                "error code 5(Access is denied.).",
            )
        path = os.path.realpath(os.path.join(self.engine.bulk_dir, spec.path))
        if not (path == self.engine.bulk_dir or path.startswith(self.engine.bulk_dir + os.sep)):
            raise SqlServerError(
                4861,
                f'Cannot bulk load because the file "{spec.path}" could not be opened. Operating system '
                "error code 5(Access is denied.).",
            )
        if not os.path.exists(path):
            raise SqlServerError(
                4860,
                f'Cannot bulk load. The file "{spec.path}" does not exist or you don\'t have file access rights.',
            )
        cols = [c for c in t.columns if c.computed is None]
        rows = read_bulk_file(path, spec, len(cols), shown=spec.path)
        names = [c.name for c in cols]
        keep_id = spec.keep_identity
        arrays: list[pa.Array] = []
        use_names: list[str] = []
        for k, c in enumerate(cols):
            vals = rows[k]
            if c.identity is not None and not keep_id:
                continue
            if c.is_rowversion:
                continue
            try:
                conv = [
                    None
                    if v is None or (v == "" and not c.type.is_string)
                    else scalar_to_storage(_bulk_text(v, c.type), c.type, self.state.dateformat)
                    for v in vals
                ]
            except SqlServerError as e:
                raise SqlServerError(
                    4864,
                    "Bulk load data conversion error (type mismatch or invalid character for the specified "
                    f"codepage) for row {spec.first_row}, column {k + 1} ({c.name}). " + e.message,
                ) from e
            arrays.append(pa.array(conv, _storage_pa(c.type)))
            use_names.append(names[k])
        n = self.insert_arrow(
            t,
            use_names,
            arrays,
            rows=len(rows[0]) if rows else 0,
            storage=True,
            explicit_identity=keep_id,
            keep_nulls=spec.keep_nulls,
        )
        self.rowcount = n
        yield RowCount(n, "BULK INSERT")


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


class _NotLiteral:
    pass


_NOT_LITERAL = _NotLiteral()


def _fast_literal(toks: list[Token], i: int, col: SqlType) -> tuple[object, int]:
    """One literal at toks[i]: number, string, N'', 0x.., NULL, -n, CAST('..' AS <the column's type>)."""
    t = toks[i]
    tt = t.token_type
    if tt == TokenType.NUMBER:
        text = t.text
        if text.isdigit():
            return int(text), i + 1
        if "e" in text.lower():
            return float(text), i + 1
        return decimal.Decimal(text), i + 1
    if tt in (TokenType.STRING, TokenType.NATIONAL_STRING):
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        if nxt is not None and nxt.token_type not in (TokenType.COMMA, TokenType.R_PAREN):
            return _NOT_LITERAL, i
        return t.text, i + 1
    if tt == TokenType.NULL:
        return None, i + 1
    if tt == TokenType.HEX_STRING:
        h = t.text
        return bytes.fromhex(h if len(h) % 2 == 0 else "0" + h), i + 1
    if tt == TokenType.DASH and i + 1 < len(toks) and toks[i + 1].token_type == TokenType.NUMBER:
        v, j = _fast_literal(toks, i + 1, col)
        if isinstance(v, decimal.Decimal):
            return EXACT.minus(v), j
        if isinstance(v, (int, float)):
            return -v, j
        return _NOT_LITERAL, i
    if t.text.upper() == "CAST" and i + 5 < len(toks) and toks[i + 1].token_type == TokenType.L_PAREN:
        s = toks[i + 2]
        if s.token_type not in (TokenType.STRING, TokenType.NATIONAL_STRING) or toks[i + 3].text.upper() != "AS":
            return _NOT_LITERAL, i
        j, ty = read_type(toks, i + 4)
        if ty is None or ty.name != col.name or j >= len(toks) or toks[j].token_type != TokenType.R_PAREN:
            return _NOT_LITERAL, i
        if ty.name in ("time", "datetime2", "datetimeoffset") and ty.scale > col.scale:
            return _NOT_LITERAL, i
        return s.text, j + 1
    return _NOT_LITERAL, i


#: table_hint_limited of SQL Server's INSERT grammar (locking hints; they change nothing here)
_INSERT_HINTS = {
    "HOLDLOCK", "IGNORE_CONSTRAINTS", "IGNORE_TRIGGERS", "KEEPDEFAULTS", "KEEPIDENTITY", "NOWAIT", "PAGLOCK",
    "READCOMMITTED", "READCOMMITTEDLOCK", "READPAST", "REPEATABLEREAD", "ROWLOCK", "SERIALIZABLE", "SNAPSHOT",
    "TABLOCK", "TABLOCKX", "UPDLOCK", "XLOCK",
}  # fmt: skip


def _strip_insert_hints(st: Statement) -> Statement:
    """`INSERT [INTO] t WITH (TABLOCK, ...) ...`: check the target's table hints and drop them."""
    c = ddl.Cursor(st.text, st.tokens)
    c.expect("INSERT")
    c.accept("INTO")
    try:
        c.qualified()
    except SqlServerError:
        return st
    if c.peek() != "WITH" or c.kind(1) != TokenType.L_PAREN:
        return st
    first = c.i
    k = first + 2
    toks = st.tokens
    while k < len(toks) and toks[k].token_type != TokenType.R_PAREN:
        word = toks[k].text.upper()
        if toks[k].token_type != TokenType.COMMA:
            if word in ("NOLOCK", "READUNCOMMITTED"):
                raise SqlServerError(
                    1065,
                    "The NOLOCK and READUNCOMMITTED lock hints are not allowed for target tables of INSERT, "
                    "UPDATE, DELETE or MERGE statements.",
                    state=1,
                    severity=15,
                )
            if word not in _INSERT_HINTS:
                raise SqlServerError(
                    321,
                    f'"{toks[k].text}" is not a recognized table hints option. If it is intended as a parameter to '
                    "a table-valued function or to the CHANGETABLE function, ensure that your database "
                    "compatibility mode is set to 90.",
                    1,
                    15,
                )
        k += 1
    if k >= len(toks):
        raise syntax_error("(")
    base = toks[0].start
    a, b = toks[first].start - base, toks[k].end - base
    text = st.text[:a] + " " * (b + 1 - a) + st.text[b + 1 :]
    return Statement(text, toks[:first] + toks[k + 1 :], st.line)


@dataclass
class _Stored:
    value: object


def _bulk_text(v: str, t: SqlType) -> object:
    if t.name == "bit":
        return v.strip()
    if t.is_string:
        return v
    if t.name in ("binary", "varbinary", "image"):
        # character-mode data files hold binary values as hex digits, without a 0x prefix
        h = v.strip()
        if len(h) % 2 or not all(ch in string.hexdigits for ch in h):
            raise SqlServerError(8114, f"Error converting data type varchar to {t.name}.")
        return bytes.fromhex(h)
    return v.strip()


def _first(rel: duckdb.DuckDBPyConnection) -> tuple[object, ...] | None:
    """The first row, draining the result (DuckDB 2 keeps a half-read result open on the cursor)."""
    rows = rel.fetchall()
    return tuple(rows[0]) if rows else None


def _storage_pa(t: SqlType) -> pa.DataType:
    if t.name == "uniqueidentifier":
        return pa.binary()
    return arrow_type(t)


def _sqlstr(s: str) -> str:
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


def _split_top(text: str) -> list[str]:
    """Split at commas outside parentheses: '@a int, @b decimal(9, 2)' -> ['@a int', ' @b decimal(9, 2)']."""
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
            continue
        depth += 1 if ch == "(" else -1 if ch == ")" else 0
        cur += ch
    if cur.strip():
        out.append(cur)
    return out


def _split_name(name: str) -> list[str]:
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


__all__ = ["Engine", "EngineSession"]
