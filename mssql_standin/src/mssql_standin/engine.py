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
- INSERT/UPDATE/DELETE take TOP (n) [PERCENT] and OUTPUT (to the client or INTO a table; table variables
  do not exist here, so OUTPUT INTO @t is error 1087); UPDATE/DELETE take FROM with joins; MERGE runs all its
  WHEN branches, with TOP (n) and OUTPUT $action (TOP ... PERCENT on MERGE is error 40517).
- Unsupported on purpose (error 40517): temporary tables, cursors, WHILE/BEGIN...END, SAVE
  TRANSACTION, CHECKSUM/BINARY_CHECKSUM (SQL Server's hash is not reproduced), COLLATE, FOR XML/JSON.
- Identity values are not transactional (a rolled-back insert leaves a gap), exactly as in SQL Server.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot.tokens import TokenType

from . import clrtypes, persist, variant
from .exactnum import register_exact_udfs
from .functions import register_string_codecs
from .handlers.bulk import BulkStatements
from .handlers.ddl import DdlStatements
from .handlers.drop import DropStatements
from .handlers.merge import MergeStatements
from .handlers.procedural import ProceduralStatements
from .handlers.set_options import SetOptions
from .handlers.tx import TransactionStatements
from .results import BulkLoadRequest, ColumnSpec, Result
from .session import bracket
from .sqltext import Statement, syntax_error, unsupported
from .syscatalog import Catalog, Column, Table
from .types import END_TICKS, EPOCH_TICKS, from_column_spec
from .utf16text import register_utf16_udfs

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
    "CREATE MACRO __ss_int_range(__ss_x, __ss_lo, __ss_hi, __ss_m) AS CASE WHEN __ss_x < __ss_lo OR __ss_x > "
    "__ss_hi THEN error(__ss_m) ELSE __ss_x END",
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

    def __init__(self, database: str = "master", bulk_dir: str | None = None, data_dir: str | None = None):
        self.database = database
        self.bulk_dir = os.path.realpath(bulk_dir) if bulk_dir else None
        #: with a data directory, the database and its catalog live in a DuckDB file there (persist.py)
        self.store = persist.Store(persist.connect(data_dir, database)) if data_dir is not None else None
        self.con = self.store.con if self.store else duckdb.connect(":memory:", config={"default_collation": "nocase"})
        for m in _MACROS:
            # a reopened file's table (computed column, CHECK) may depend on the macro: it keeps the one it has
            with contextlib.suppress(duckdb.DependencyException):
                self.con.execute(m.replace("CREATE MACRO", "CREATE OR REPLACE MACRO", 1))
        v, b, i = duckdb.sqltypes.VARCHAR, duckdb.sqltypes.BLOB, duckdb.sqltypes.BIGINT
        udf: Any = self.con.create_function  # pyarrow UDFs are not in DuckDB's stub overloads
        udf("__ss_hash_n", _udf_hash("utf-16-le"), [v, v], b, type="arrow")
        udf("__ss_hash_v", _udf_hash("cp1252"), [v, v], b, type="arrow")
        udf("__ss_hash_b", _udf_hash(None), [v, b], b, type="arrow")
        udf("__ss_utf16_bytes", _udf_utf16_bytes, [v], i, type="arrow")
        register_string_codecs(self.con)
        register_exact_udfs(self.con)
        register_utf16_udfs(self.con)
        variant.register_udfs(self.con)
        clrtypes.register_udfs(self.con)
        self.con.execute("CREATE SCHEMA IF NOT EXISTS dbo; CREATE SCHEMA IF NOT EXISTS guest")
        self.catalog = Catalog()
        self.lock = threading.RLock()
        self._next_id = 1_000_000
        self.identity: dict[int, int] = {}
        self.ident_used: dict[int, bool] = {}
        self.dbts = 2000
        self._spid = 50
        self._tran_id = 0
        if self.store is not None:
            persist.reopen(self, self.store)

    def close(self) -> None:
        """Save what lives outside transactions (identity, @@DBTS) and close a persistent database cleanly."""
        if self.store is not None:
            persist.close(self, self.store)
            self.store = None

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
                part = f"{bracket(c.name)} {from_column_spec(c)}"
                if identity is not None and c.name == id_col:
                    part += f" IDENTITY({identity[0]},{identity[1]})"
                part += " NULL" if c.nullable and not (primary_key and c.name in primary_key) else " NOT NULL"
                defs.append(part)
            if primary_key:
                keys = ", ".join(bracket(k) for k in primary_key)
                defs.append(f"CONSTRAINT {bracket('PK_' + table)} PRIMARY KEY CLUSTERED ({keys})")
            list(s.execute(f"CREATE TABLE {bracket(schema)}.{bracket(table)} ({', '.join(defs)})"))
            t = s.catalog.table(schema, table)
            assert t is not None
            batches: Iterable[pa.RecordBatch] = data.to_batches() if isinstance(data, pa.Table) else data
            total = 0
            names = [c.name for c in columns]
            if self.store is not None:
                s.begin()  # one DuckDB transaction: a file database then writes the table's blocks once
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
            if self.store is not None:
                s.commit()
            return total
        finally:
            s.close()


class EngineSession(
    SetOptions,
    TransactionStatements,
    MergeStatements,
    DdlStatements,
    DropStatements,
    BulkStatements,
    ProceduralStatements,
):
    """One client session: its own DuckDB cursor, transaction state, SET options and variables."""

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

    def _statement(self, st: Statement) -> Iterator[Result | BulkLoadRequest]:
        handler = _HANDLERS.get(statement_kind(st))
        if handler is None:
            raise syntax_error(st.tokens[0].text)
        yield from handler(self, st)

    def _unsupported(self, st: Statement) -> Iterator[Result]:
        raise unsupported(st.words[0])


_TWO_WORD_KINDS = {"BEGIN TRAN", "BEGIN TRANSACTION", "BEGIN DISTRIBUTED", "INSERT BULK", "BULK INSERT", "ALTER TABLE"}


def statement_kind(st: Statement) -> str:
    """The key of _HANDLERS: the first word, or the first two where they change the statement ("INSERT BULK")."""
    kind = st.tokens[0].token_type
    if kind == TokenType.L_PAREN:
        return "SELECT"
    if kind == TokenType.IDENTIFIER:
        return ""
    words = st.words + [""]
    two = f"{words[0]} {words[1]}"
    return two if two in _TWO_WORD_KINDS else words[0]


Handler = Callable[[EngineSession, Statement], Iterator[Result | BulkLoadRequest]]

_HANDLERS: dict[str, Handler] = {
    "SET": EngineSession._set,
    "USE": EngineSession._use,
    "DECLARE": EngineSession._declare,
    "DBCC": EngineSession._dbcc,
    "BEGIN TRAN": EngineSession._begin_tran,
    "BEGIN TRANSACTION": EngineSession._begin_tran,
    "BEGIN DISTRIBUTED": EngineSession._begin_tran,
    "COMMIT": EngineSession._commit_tran,
    "ROLLBACK": EngineSession._rollback_tran,
    "SAVE": EngineSession._save_tran,
    "SELECT": EngineSession._select,
    "WITH": EngineSession._select,
    "INSERT": EngineSession._insert,
    "UPDATE": EngineSession._update,
    "DELETE": EngineSession._delete,
    "INSERT BULK": EngineSession._insert_bulk,
    "BULK INSERT": EngineSession._bulk_insert_file,
    "CREATE": EngineSession._create,
    "ALTER TABLE": EngineSession._alter,
    "DROP": EngineSession._drop,
    "TRUNCATE": EngineSession._truncate,
    "IF": EngineSession._if,
    "EXEC": EngineSession._exec,
    "EXECUTE": EngineSession._exec,
    "PRINT": EngineSession._print,
    "MERGE": EngineSession._merge,
    **dict.fromkeys(
        ("WHILE", "BEGIN", "GRANT", "REVOKE", "DENY", "RAISERROR", "THROW", "RETURN"),
        EngineSession._unsupported,
    ),
}


__all__ = ["Engine", "EngineSession", "statement_kind"]
