"""PostgreSQL source and target.

Control work (catalog, DDL, ledger, boundaries, counts) and the raw binary COPY path go through asyncpg, which
hands COPY data over in network-sized chunks without per-row Python. Arrow reads and writes go through ADBC,
which streams COPY results into record batches and ingests them with binary COPY.

Range bounds never become SQL text: they are stored in session settings with a bound `set_config($1, ...)`
call and the data query reads them back with `(SELECT current_setting(...)::type)`. That keeps the data query
free of parameters, which ADBC needs to stream (with bind parameters it buffers the whole result) and COPY needs
anyway (COPY takes no parameters). The scalar subquery makes each bound an InitPlan: computed once and usable as
an index bound (a bare current_setting() in the filter is re-evaluated per row: 1.7x slower on a full scan).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
import queue
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, Any, Self, TypeVar
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from ray_replicator.catalog import (
    Catalog,
    Check,
    Column,
    ForeignKey,
    Identity,
    Index,
    Key,
    Sequence,
    Table,
    chosen_by,
)
from ray_replicator.engines.base import (
    Capabilities,
    ConnectTimeoutError,
    Endpoint,
    EngineError,
    KeyRange,
    LedgerStore,
    RangeWrite,
    Source,
    Target,
    UsageError,
    WriteOptions,
    connect_timeout_of,
)
from ray_replicator.errors import OnDenied, hint_for
from ray_replicator.redact import redact_url, scrub, url_secrets
from ray_replicator.typemap import POSTGRES, postgres_logical, postgres_type

if TYPE_CHECKING:  # imported where used: a raw COPY worker never loads Arrow (~60 MB of RSS)
    import pyarrow as pa

log = logging.getLogger(__name__)

CAPABILITIES = Capabilities(
    name=POSTGRES,
    default_port=5432,
    title="PostgreSQL",
    raw_format="postgresql binary COPY",
    raw_chunks_held=2,
    digest_family="postgresql md5 of row text",
    physical_ranges=True,
    text_for_other_types=True,
    transient_errors=(
        r"terminating connection|server closed the connection|connection (is|was) closed|ConnectionDoesNotExist|"
        r"database system is (starting up|shutting down|in recovery mode|not yet accepting)|"
        r"could not receive data|connect call failed|no connection to the server|"
        r"SQLSTATE: (57P0[123]|08\d\d\d)|\b(57P0[123]|08006)\b|"
        # asyncpg, when the server went away inside a COPY: the protocol is left failed, the connection unusable
        r"protocol is in the \"failed\" state"
    ),
)

LEDGER_SCHEMA = "_ray_replicator"
_GUC_PREFIX = "ray_replicator.p"
_SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", LEDGER_SCHEMA)
_SYSTEM_SAMPLE_PAGES = 20_000
_EXACT_SPLIT_ROWS = 500_000
_COPY_STALL_SECONDS = 10.0
"""A raw COPY that sent nothing for this long checks that its server backend still exists."""
_COPY_PIECE_BYTES = 1 << 20
"""Raw COPY data goes to asyncpg in pieces of this size: it copies each piece into a message and the socket's flow
control keeps about one queued, so the writer holds ~2 MB of copies instead of two more copies of a whole chunk."""
_SESSION = {
    "DateStyle": "ISO, YMD",
    "IntervalStyle": "postgres",
    "TimeZone": "UTC",
    "extra_float_digits": "3",
    "search_path": "pg_catalog",
}
# Target column types that accept an Arrow string column directly; any other target type gets strings
# through a staging table and a cast (numeric from unbounded decimals, inet/bit/enum/... from text).
_TEXT_TARGETS = {"text", "varchar", "bpchar", "name", "json", "jsonb", "char"}
# Logical kinds that ADBC would hand out as opaque PostgreSQL bytes: read them as text instead so the batch is
# meaningful to any engine (the "text fallback").
_TEXT_READ_KINDS = {"other", "enum", "xml"}
_NATIVE_ARRAY_ELEMENTS = {"bool", "int16", "int32", "int64", "float32", "float64", "string"}
# PostgreSQL's earliest timestamp/date (4714-11-24 BC, Julian day 0) in Arrow's units since 1970.
_PG_MIN_US = -210_866_803_200_000_000
_PG_MIN_DAYS = -2_440_588
_FK_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
_INDEX_DEF = re.compile(
    r'^CREATE (?:UNIQUE )?INDEX (?:"(?:[^"]|"")*"|[^\s."]+) ON (?:ONLY )?'
    r'(?:"(?:[^"]|"")*"|[^\s."]+)\.(?:"(?:[^"]|"")*"|[^\s."]+) (USING .*)$',
    re.DOTALL,
)

T = TypeVar("T")


def quote_ident(name: str) -> str:
    """Always quote: spaces, quotes, unicode, reserved words and mixed case all survive."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """For DDL only (enum labels); row values always travel as parameters."""
    return "'" + value.replace("'", "''") + "'"


def qualified(schema: str, name: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _connect_target(url: str) -> tuple[str, str]:
    """Host (or unix socket directory) and port a URL connects to, for messages."""
    try:
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        host = query.get("host") or parts.hostname or "localhost"
        return host, query.get("port") or str(parts.port or 5432)
    except ValueError:
        return "the server", "?"


def _url_with_connect_timeout(url: str, seconds: float) -> tuple[str, str]:
    """(URL for libpq with connect_timeout, URL for asyncpg without it): libpq takes the option (whole seconds, at
    least 2), asyncpg would send it to the server as a setting and takes a timeout argument instead."""
    parts = urlsplit(url)
    # the other options stay exactly as written (decoding and re-encoding them could change what they say)
    plain = "&".join(p for p in parts.query.split("&") if p and p.split("=", 1)[0].lower() != "connect_timeout")
    libpq = "&".join(filter(None, [plain, f"connect_timeout={max(2, math.ceil(seconds))}"]))
    rebuilt = (parts.scheme, parts.netloc, parts.path)
    return urlunsplit((*rebuilt, libpq, parts.fragment)), urlunsplit((*rebuilt, plain, parts.fragment))


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


def range_predicate(table: Table, rng: KeyRange, types: dict[str, str] | None = None) -> Predicate:
    """The rows of `rng` as SQL; values are never part of the text.

    Bound values are cast to `types[column]` when given (the database's own column types), else to the
    catalog's native types.
    """
    if rng.kind == "full":
        return Predicate("true", ())
    if rng.kind == "physical":
        lo = int(rng.lower[0]) if rng.lower else 0
        sql = f"ctid >= '({lo},0)'::tid"
        if rng.upper is not None and rng.upper[0] is not None:
            sql += f" AND ctid < '({int(rng.upper[0])},0)'::tid"
        return Predicate(sql, ())
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


def _set_config_sql(n: int, local: bool = False) -> str:
    """Store n range values in session (or transaction-local) settings with bound parameters."""
    scope = "true" if local else "false"
    return "SELECT " + ", ".join(f"set_config('{_GUC_PREFIX}{i}', ${i}, {scope})" for i in range(1, n + 1))


def _close(stream: object) -> None:
    """Stop a producer we will not drain (a range already done), so its COPY and thread end now."""
    close = getattr(stream, "close", None)
    if callable(close):
        close()


def _read_ahead(items: Iterable[T], depth: int) -> Iterator[T]:
    """Pull `items` on a thread, up to `depth` ahead, so the source's reads overlap the target's writes (ADBC's
    ingest would otherwise pull each batch only after writing the previous one)."""
    slots: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def pull() -> None:
        try:
            for item in items:
                if stop.is_set():
                    break
                slots.put(("item", item))
            slots.put(("end", None))
        except BaseException as exc:  # handed to the consumer, which raises it
            slots.put(("error", exc))
        finally:
            _close(items)

    worker = threading.Thread(target=pull, name="read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = slots.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        while worker.is_alive():
            with contextlib.suppress(queue.Empty):
                slots.get(timeout=0.05)
        worker.join()


class _Loop:
    """A private event loop so that synchronous callers (Ray tasks, the driver) can use asyncpg."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def run(self, coro: Awaitable[T]) -> T:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.loop.close()


class _PostgresEndpoint(Endpoint):
    """Connections shared by source and target: one asyncpg control connection, one ADBC connection."""

    capabilities = CAPABILITIES

    def __init__(self, url: str) -> None:
        if not url.startswith(("postgresql://", "postgres://")):
            raise UsageError(f"not a PostgreSQL URL: {redact_url(url)} (expected postgresql://user@host/db)")
        try:
            query = urlsplit(url).query
        except ValueError as exc:
            raise UsageError(f"cannot parse the PostgreSQL URL {redact_url(url)}: {exc}") from None
        if "connect_timeout" in query.lower():
            self.connect_timeout = connect_timeout_of(query, 0.0)
        else:
            from ray_replicator.config import CONNECT_TIMEOUT_S  # a pipeline URL names it: workers skip pydantic

            self.connect_timeout = CONNECT_TIMEOUT_S
        self.url, self._asyncpg_url = _url_with_connect_timeout(url, self.connect_timeout)
        self.display = redact_url(url)
        self._secrets = url_secrets(url)
        self._loop: _Loop | None = None
        self._conn: Any = None
        self._adbc: Any = None

    # -- errors -------------------------------------------------------------------------------------------
    def _scrub(self, text: str) -> str:
        text = _one_line(text).replace(self.url, self.display).replace(self._asyncpg_url, self.display)
        return scrub(text, self._secrets)

    def _error(self, what: str, exc: BaseException, hint: str = "") -> EngineError:
        if isinstance(exc, EngineError):
            return exc
        text = str(exc) or type(exc).__name__
        detail = getattr(exc, "detail", None)  # asyncpg keeps "Key (id)=(5) already exists." apart
        if isinstance(detail, str) and detail and detail not in text:
            text += f" ({detail})"
        msg = f"{what} on {self.display}: {self._scrub(text)}"
        hint = hint_for(exc, hint)
        return EngineError(msg + (f"; {hint}" if hint else ""))

    # -- asyncpg ------------------------------------------------------------------------------------------
    async def _connect_async(self, settings: dict[str, str] | None = _SESSION) -> Any:
        """An asyncpg connection within connect_timeout (asyncpg's own timeout covers TCP, TLS and the login)."""
        import asyncpg

        try:
            return await asyncpg.connect(self._asyncpg_url, server_settings=settings, timeout=self.connect_timeout)
        except TimeoutError:
            raise ConnectTimeoutError(*_connect_target(self.url), self.connect_timeout) from None

    def _run(self, what: str, fn: Callable[[Any], Awaitable[T]], hint: str = "") -> T:
        """Run `fn(connection)` on the control connection, wrapping driver errors into EngineError."""
        if self._loop is None:
            self._loop = _Loop()
        if self._conn is None:
            try:
                self._conn = self._loop.run(self._connect_async())
            except Exception as exc:  # a refused login is no failure of the step that needed the connection
                raise self._error("connecting", exc) from None
        try:
            return self._loop.run(fn(self._conn))
        except Exception as exc:
            if self._conn is not None and self._conn.is_closed():
                self._conn = None  # reconnect on the next call
            raise self._error(what, exc, hint) from None

    def _fetch(self, what: str, sql: str, *args: Any) -> list[Any]:
        return self._run(what, lambda c: c.fetch(sql, *args))

    def _execute(self, what: str, sql: str, *args: Any, hint: str = "") -> None:
        async def go(c: Any) -> None:
            await c.execute(sql, *args)

        self._run(what, go, hint)

    # -- ADBC ---------------------------------------------------------------------------------------------
    def _adbc_conn(self) -> Any:
        if self._adbc is None:
            import adbc_driver_postgresql.dbapi as pgdb

            try:
                try:
                    self._adbc = pgdb.connect(self.url)
                except Exception as exc:
                    if "timeout expired" in str(exc):  # libpq's words for connect_timeout
                        raise ConnectTimeoutError(*_connect_target(self.url), self.connect_timeout) from None
                    raise
                with self._adbc.cursor() as cur:
                    for name, value in _SESSION.items():
                        cur.execute(f"SELECT set_config('{name}', '{value}', false)")
                        cur.fetchall()
                self._adbc.commit()
            except Exception as exc:
                self._adbc = None
                raise self._error("connecting with ADBC", exc) from None
        return self._adbc

    def _adbc_set_values(self, cur: Any, values: tuple[str, ...]) -> None:
        if values:
            cur.execute(_set_config_sql(len(values)), list(values))
            cur.fetchall()

    def _key_types(self, table: Table) -> dict[str, str] | None:
        """Column types to cast range bounds to; None means the catalog's native types are this database's."""
        return None

    def hash_probe(self) -> tuple[str, int]:
        """The server encoding and the hash of a fixed text: two servers that agree on both hash row text alike
        (the hash function's bytes depend on the platform)."""

        async def go(c: Any) -> tuple[str, int]:
            row = await c.fetchrow(
                "SELECT current_setting('server_encoding') AS enc, hashtextextended('ray-replicator ✓ 0', 42) AS h"
            )
            return str(row["enc"]), int(row["h"])

        return self._run("probing the row hash", go)

    def range_digest(self, table: Table, rng: KeyRange, columns: list[str]) -> tuple[int, int, int]:
        """Rows, sum and xor (mod 2^64) of a 64-bit hash of each row's values as text, computed by the server:
        between two PostgreSQL databases with the same column types a value's text is a canonical form of it (the
        session fixes DateStyle, TimeZone, IntervalStyle and extra_float_digits), and nothing leaves the server."""
        pred = range_predicate(table, rng, self._key_types(table))
        # Each column's text hashed with its own seed (NULL gets a constant of its own, so '' and NULL differ),
        # combined by xor: no ROW()::text, whose quoting pass over every character costs 3x the hashing.
        row = " # ".join(
            f"coalesce(hashtextextended({quote_ident(c)}::text, {i + 1}), {-7919 * (i + 1)})"
            for i, c in enumerate(columns)
        )
        sql = (
            "SELECT count(*), coalesce(sum(h::numeric) % 18446744073709551616, 0)::text, coalesce(bit_xor(h), 0) "
            f"FROM (SELECT {row or '0'} AS h FROM {qualified(table.schema, table.name)} WHERE {pred.sql}) s"
        )

        async def go(c: Any) -> tuple[int, int, int]:
            async with c.transaction(readonly=True):
                if pred.values:
                    await c.fetch(_set_config_sql(len(pred.values), local=True), *pred.values)
                got = await c.fetchrow(sql)
            mask = (1 << 64) - 1
            return int(got[0]), int(got[1]) & mask, int(got[2]) & mask

        return self._run(f"hashing {table.qualified} range {rng.range_id}", go)

    def count_range(self, table: Table, rng: KeyRange) -> int:
        pred = range_predicate(table, rng, self._key_types(table))
        sql = f"SELECT count(*) FROM {qualified(table.schema, table.name)} WHERE {pred.sql}"

        async def go(c: Any) -> int:
            async with c.transaction():
                if pred.values:
                    await c.fetch(_set_config_sql(len(pred.values), local=True), *pred.values)
                return int(await c.fetchval(sql))

        return self._run(f"counting {table.qualified} range {rng.range_id}", go)

    def abort(self) -> None:
        """Terminate the control connection's socket first: a graceful close waits on (or fails inside) an
        interrupted COPY, and until the server sees the connection go its transaction keeps the range's ledger row
        locked."""
        if self._conn is not None and self._loop is not None:
            with contextlib.suppress(Exception):
                self._conn.terminate()
                # asyncio closes an aborted socket on the loop's next turn: give it that turn.
                self._loop.run(asyncio.sleep(0.01))
            self._conn = None
        self.close()

    def close(self) -> None:
        if self._adbc is not None:
            try:
                self._adbc.close()
            except Exception as exc:
                log.debug("closing ADBC connection: %s", self._scrub(str(exc)))
            self._adbc = None
        if self._loop is not None:
            if self._conn is not None:
                try:
                    self._loop.run(self._conn.close())
                except Exception as exc:
                    log.debug("closing connection: %s", self._scrub(str(exc)))
                self._conn = None
            self._loop.close()
            self._loop = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------------------
# Source
# ---------------------------------------------------------------------------------------------------------

_TABLES_SQL = """
SELECT c.oid::int8 AS oid, n.nspname::text AS schema, c.relname::text AS name,
       c.reltuples::float8 AS reltuples, pg_relation_size(c.oid)::int8 AS bytes,
       (pg_relation_size(c.oid) / current_setting('block_size')::int8)::int8 AS pages
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname <> ALL($1::text[])
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                  AND d.deptype = 'e')
ORDER BY 2, 3
"""

_COLUMNS_SQL = """
SELECT a.attrelid::int8 AS oid, a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS native,
       a.atttypmod AS typmod, a.attnotnull AS notnull, a.attidentity::text AS identity,
       a.attgenerated::text AS generated,
       CASE WHEN a.atthasdef THEN pg_get_expr(d.adbin, d.adrelid) END AS default_expr,
       CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
            THEN quote_ident(cn.nspname) || '.' || quote_ident(co.collname) END AS collation,
       t.typname::text AS typname, t.typtype::text AS typtype, t.typcategory::text AS typcategory,
       e.typname::text AS elem_typname, e.typtype::text AS elem_typtype,
       pg_get_serial_sequence(quote_ident(n.nspname) || '.' || quote_ident(c.relname), a.attname) AS sequence,
       a.attstorage::text AS attstorage, t.typstorage::text AS typstorage
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typcategory = 'A'
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN pg_collation co ON co.oid = a.attcollation
LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""

_STORAGE_NAMES = {"p": "PLAIN", "e": "EXTERNAL", "x": "EXTENDED", "m": "MAIN"}

LARGE_VALUE_BYTES = 2000
"""PostgreSQL compresses values (TOAST) once a row passes about 2 KB; a value this large sits in such a row."""
_COMPRESSION_SAMPLE_PAGES = 500
_COMPRESSION_SAMPLE_MIN_PAGES = 128
_COMPRESSION_SAMPLE_VALUES = 1000
_COMPRESSION_MIN_VALUES = 20


def compression_sample_sql(schema: str, table: str, columns: list[str], pages: int) -> str:
    """How many of a sample of the table's large values are stored compressed, and how many were looked at.

    A compressed value counts at any size: compression shrinks it, and it sat in a row TOAST worked on.

    A fixed seed (REPEATABLE) keeps the answer the same on every read of an unchanged table, so a resumed run
    loads as the first one did.
    """
    pct = min(100.0, 100.0 * _COMPRESSION_SAMPLE_PAGES / max(1, pages))
    arms = ", ".join(
        f"(pg_column_compression(s.{quote_ident(c)}), pg_column_size(s.{quote_ident(c)}))" for c in columns
    )
    return (
        "SELECT count(*) FILTER (WHERE v.method IS NOT NULL) AS compressed, count(*) AS large FROM ("
        f"SELECT v.method FROM {qualified(schema, table)} AS s TABLESAMPLE SYSTEM ({pct:.6f}) REPEATABLE (0), "
        f"LATERAL (VALUES {arms}) AS v(method, size) WHERE v.method IS NOT NULL OR v.size >= {LARGE_VALUE_BYTES} "
        f"LIMIT {_COMPRESSION_SAMPLE_VALUES}) AS v"
    )


def large_values_compressed(compressed: int, large: int) -> bool | None:
    """The sample's verdict: compressed if any sampled large value is; uncompressed only on enough evidence."""
    if compressed:
        return True
    return False if large >= _COMPRESSION_MIN_VALUES else None


_SEQUENCE_STATE_SQL = """
SELECT s.seqstart AS start, s.seqincrement AS increment, pg_sequence_last_value(s.seqrelid) AS last_value
FROM pg_sequence s WHERE s.seqrelid = $1::regclass
"""

_CONSTRAINTS_SQL = """
SELECT con.conrelid::int8 AS oid, con.conname::text AS name, con.contype::text AS type,
       ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i) AS columns,
       rn.nspname::text AS ref_schema, rc.relname::text AS ref_table,
       ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(n, i)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.i) AS ref_columns,
       con.confdeltype::text AS on_delete, con.confupdtype::text AS on_update,
       pg_get_constraintdef(con.oid) AS definition
FROM pg_constraint con
LEFT JOIN pg_class rc ON rc.oid = con.confrelid
LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
WHERE con.conrelid = ANY($1::oid[]) AND con.contype IN ('p', 'u', 'f', 'c')
ORDER BY con.conrelid, con.contype, con.conname
"""

_INDEXES_SQL = """
SELECT i.indrelid::int8 AS oid, ic.relname::text AS name, i.indisunique AS is_unique,
       pg_get_indexdef(i.indexrelid) AS definition, am.amname::text AS method,
       pg_get_expr(i.indpred, i.indrelid) AS predicate,
       ARRAY(SELECT coalesce(a.attname::text, '') FROM unnest(i.indkey[0:i.indnkeyatts - 1]) k(n)
             LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n) AS columns
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_am am ON am.oid = ic.relam
WHERE i.indrelid = ANY($1::oid[])
  AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid
                  AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x'))
ORDER BY i.indrelid, ic.relname
"""

_SEQUENCES_SQL = """
SELECT s.schemaname::text AS schema, s.sequencename::text AS name, s.last_value, s.increment_by, s.start_value
FROM pg_sequences s
JOIN pg_class c ON c.relname = s.sequencename
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = s.schemaname
WHERE s.schemaname <> ALL($1::text[])
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                  AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i'))
ORDER BY 1, 2
"""

_ENUMS_SQL = """
SELECT format_type(t.oid, NULL) AS name, array_agg(e.enumlabel::text ORDER BY e.enumsortorder) AS labels
FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname <> ALL($1::text[])
GROUP BY t.oid ORDER BY 1
"""


class PostgresSource(_PostgresEndpoint, Source):
    """Reads a PostgreSQL database: catalog, split boundaries, Arrow batches and raw binary COPY chunks."""

    def table_names(self) -> tuple[str, list[tuple[str, str]]]:
        """The database's name and its tables' (schema, name), from pg_class alone: enough to apply --tables and
        --exclude before any table's columns, sequences or rows are read."""

        async def go(c: Any) -> tuple[str, list[tuple[str, str]]]:
            db = await c.fetchval("SELECT current_database()::text")
            rows = await c.fetch(_TABLES_SQL, list(_SYSTEM_SCHEMAS))
            return str(db), [(str(r["schema"]), str(r["name"])) for r in rows]

        return self._run("listing tables", go)

    def catalog(self, include: list[str], exclude: list[str]) -> Catalog:
        """Details of the tables that include (all when empty) and exclude leave; no other table is looked at."""
        system = list(_SYSTEM_SCHEMAS)

        async def go(c: Any) -> tuple[Any, ...]:
            db = await c.fetchval("SELECT current_database()::text")
            collation = await c.fetchval("SELECT datcollate::text FROM pg_database WHERE datname = current_database()")
            rows = await c.fetch(_TABLES_SQL, system)
            partitioned = await c.fetch(
                "SELECT n.nspname::text || '.' || c.relname::text AS name FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'p' AND n.nspname <> ALL($1::text[])",
                system,
            )
            for p in partitioned:
                log.warning("%s is partitioned: its partitions are copied as plain tables, the parent is not", p[0])
            rows = [r for r in rows if chosen_by(r["schema"], r["name"], include, exclude)]
            oids = [r["oid"] for r in rows]
            columns = await c.fetch(_COLUMNS_SQL, oids)
            seq_state = {}
            for col in columns:
                if col["sequence"]:
                    seq_state[col["sequence"]] = await c.fetchrow(_SEQUENCE_STATE_SQL, col["sequence"])
            constraints = await c.fetch(_CONSTRAINTS_SQL, oids)
            indexes = await c.fetch(_INDEXES_SQL, oids)
            sequences = await c.fetch(_SEQUENCES_SQL, system)
            enums = await c.fetch(_ENUMS_SQL, system)
            compression: dict[int, bool | None] = {}
            if int(await c.fetchval("SELECT current_setting('server_version_num')")) >= 140000:
                extended: dict[int, list[str]] = {}
                for col in columns:
                    if col["attstorage"] == "x":
                        extended.setdefault(col["oid"], []).append(col["name"])
                for r in rows:
                    if r["oid"] in extended and r["pages"] >= _COMPRESSION_SAMPLE_MIN_PAGES:
                        sql = compression_sample_sql(r["schema"], r["name"], extended[r["oid"]], r["pages"])
                        got = await c.fetchrow(sql)
                        compression[r["oid"]] = large_values_compressed(got["compressed"], got["large"])
            counts = {}
            for r in rows:
                if r["reltuples"] < 0:  # never vacuumed or analyzed: count once
                    counts[r["oid"]] = await c.fetchval(f"SELECT count(*) FROM {qualified(r['schema'], r['name'])}")
            return db, collation, rows, columns, seq_state, constraints, indexes, sequences, enums, counts, compression

        db, collation, rows, columns, seq_state, constraints, indexes, sequences, enums, counts, compression = (
            self._run("reading the catalog", go)
        )
        if include and not rows:
            raise UsageError(f"no table on {self.display} matches include patterns {include}")
        by_oid: dict[int, Table] = {}
        tables: list[Table] = []
        for r in rows:
            est = counts.get(r["oid"], int(r["reltuples"]))
            t = Table(
                schema=r["schema"],
                name=r["name"],
                columns=[],
                row_estimate=max(est, 0),
                byte_estimate=int(r["bytes"]),
                physical_pages=int(r["pages"]),
                large_values_compressed=compression.get(r["oid"]),
            )
            by_oid[r["oid"]] = t
            tables.append(t)
        for col in columns:
            by_oid[col["oid"]].columns.append(self._column(col, seq_state.get(col["sequence"])))
        for con in constraints:
            t = by_oid[con["oid"]]
            cols = tuple(con["columns"])
            if con["type"] == "p":
                t.primary_key = Key(con["name"], cols, primary=True)
            elif con["type"] == "u":
                t.unique_keys.append(Key(con["name"], cols))
            elif con["type"] == "c":
                t.checks.append(Check(con["name"], con["definition"]))
            else:
                t.foreign_keys.append(
                    ForeignKey(
                        name=con["name"],
                        columns=cols,
                        ref_schema=con["ref_schema"],
                        ref_table=con["ref_table"],
                        ref_columns=tuple(con["ref_columns"]),
                        on_delete=_FK_ACTIONS.get(con["on_delete"], "NO ACTION"),
                        on_update=_FK_ACTIONS.get(con["on_update"], "NO ACTION"),
                    )
                )
        for ix in indexes:
            by_oid[ix["oid"]].indexes.append(
                Index(
                    name=ix["name"],
                    columns=tuple(ix["columns"]),
                    unique=ix["is_unique"],
                    where=ix["predicate"],
                    method=ix["method"],
                    definition=ix["definition"],
                )
            )
        seqs = [
            Sequence(
                schema=s["schema"],
                name=s["name"],
                last_value=s["last_value"] if s["last_value"] is not None else s["start_value"],
                increment=s["increment_by"],
                is_called=s["last_value"] is not None,
            )
            for s in sequences
        ]
        return Catalog(
            engine=POSTGRES,
            database=db,
            tables=tables,
            sequences=seqs,
            enums={e["name"]: list(e["labels"]) for e in enums},
            collation=collation,
        )

    @staticmethod
    def _column(col: Any, seq: Any) -> Column:
        element = None
        if col["typcategory"] == "A" and col["elem_typname"]:
            element = postgres_logical(col["elem_typname"], -1, col["elem_typtype"])
        logical = postgres_logical(col["typname"], col["typmod"], col["typtype"], element)
        identity = None
        default = col["default_expr"]
        computed = None
        if col["generated"]:
            computed, default = default, None
        if col["identity"] or (col["sequence"] and default and "nextval(" in default):
            start, inc, last = (seq["start"], seq["increment"], seq["last_value"]) if seq else (1, 1, None)
            identity = Identity(
                seed=start,
                increment=inc,
                current=last,
                always=col["identity"] == "a",
                sequence=col["sequence"],
            )
            if col["identity"]:
                default = None
        return Column(
            name=col["name"],
            native_type=col["native"],
            logical=logical,
            nullable=not col["notnull"],
            default=default,
            identity=identity,
            computed=computed,
            collation=col["collation"],
            storage=_STORAGE_NAMES.get(col["attstorage"]) if col["attstorage"] != col["typstorage"] else None,
        )

    # -- planning -----------------------------------------------------------------------------------------
    def split_boundaries(self, table: Table, parts: int) -> list[tuple[Any, ...]]:
        keys = table.split_key
        if parts < 2 or not keys:
            return []
        idents = ", ".join(quote_ident(k) for k in keys)
        not_null = " AND ".join(f"{quote_ident(k)} IS NOT NULL" for k in keys)
        rel = qualified(table.schema, table.name)
        if table.row_estimate <= _EXACT_SPLIT_ROWS:
            sql = (
                f"SELECT {idents} FROM (SELECT {idents}, row_number() OVER (ORDER BY {idents}) AS rn__, "
                f"count(*) OVER () AS n__ FROM {rel} WHERE {not_null}) s "
                f"WHERE rn__ > 1 AND ((rn__ - 1) * $1::int8) / n__ > ((rn__ - 2) * $1::int8) / n__ "
                f"ORDER BY {idents}"
            )
            rows = self._fetch(f"splitting {table.qualified}", sql, parts)
            return [tuple(r) for r in rows]
        target = max(parts * 200, 20_000)
        pct = min(100.0, 100.0 * target / max(table.row_estimate, 1))
        method = "BERNOULLI"
        if table.physical_pages > _SYSTEM_SAMPLE_PAGES:
            # BERNOULLI reads every page; SYSTEM reads only the sampled ones. Enough pages (with their rows in
            # key order or not) still give quantiles within a few percent, and any boundaries stay correct.
            method = "SYSTEM"
            pct = min(100.0, 100.0 * max(parts * 50, _SYSTEM_SAMPLE_PAGES // 10) / table.physical_pages)
        sql = (
            f"SELECT {idents} FROM {rel} TABLESAMPLE {method} ($1::float8) REPEATABLE (42) "
            f"WHERE {not_null} ORDER BY {idents}"
        )
        sample = [tuple(r) for r in self._fetch(f"sampling {table.qualified}", sql, pct)]
        cuts: list[tuple[Any, ...]] = []
        for i in range(1, parts):
            pos = i * len(sample) // parts
            if 0 < pos < len(sample) and (not cuts or sample[pos] != cuts[-1]):
                cuts.append(sample[pos])
        return cuts

    def range_boundaries(self, table: Table, rng: KeyRange, parts: int) -> list[tuple[Any, ...]]:
        """Up to parts-1 keys cutting the rows of key range `rng` into about equal counts, in the database's own
        order: verify bisects a mismatched range with them, reading no rows into Python but the cuts."""
        keys = rng.columns or table.split_key
        if parts < 2 or not keys or rng.kind != "key":
            return []
        pred = range_predicate(table, rng, self._key_types(table))
        idents = ", ".join(quote_ident(k) for k in keys)
        not_null = " AND ".join(f"{quote_ident(k)} IS NOT NULL" for k in keys)
        sql = (
            f"SELECT {idents} FROM (SELECT {idents}, row_number() OVER (ORDER BY {idents}) AS rn__, "
            f"count(*) OVER () AS n__ FROM {qualified(table.schema, table.name)} WHERE {pred.sql} AND {not_null}) s "
            f"WHERE rn__ > 1 AND ((rn__ - 1) * $1::int8) / n__ > ((rn__ - 2) * $1::int8) / n__ ORDER BY {idents}"
        )

        async def go(c: Any) -> list[tuple[Any, ...]]:
            async with c.transaction():
                if pred.values:
                    await c.fetch(_set_config_sql(len(pred.values), local=True), *pred.values)
                return [tuple(r) for r in await c.fetch(sql, parts)]

        return self._run(f"splitting {table.qualified} range {rng.range_id}", go)

    def has_null_keys(self, table: Table) -> bool:
        keys = table.split_key
        nullable = [k for k in keys if table.column(k).nullable]
        if not nullable:
            return False
        cond = " OR ".join(f"{quote_ident(k)} IS NULL" for k in nullable)
        sql = f"SELECT EXISTS (SELECT 1 FROM {qualified(table.schema, table.name)} WHERE {cond})"
        return bool(self._run(f"checking NULL keys of {table.qualified}", lambda c: c.fetchval(sql)))

    def physical_pages(self, table: Table) -> int:
        sql = "SELECT (pg_relation_size($1::regclass) / current_setting('block_size')::int8)::int8"
        rel = qualified(table.schema, table.name)
        return int(self._run(f"sizing {table.qualified}", lambda c: c.fetchval(sql, rel)))

    # -- Arrow reads --------------------------------------------------------------------------------------
    def _select_list(self, table: Table) -> str:
        exprs = []
        for col in table.copy_columns:
            ident = quote_ident(col.name)
            lt = col.logical
            if lt.kind in _TEXT_READ_KINDS or (
                lt.kind == "array" and (lt.element is None or lt.element.kind not in _NATIVE_ARRAY_ELEMENTS)
            ):
                exprs.append(f"{ident}::text AS {ident}")
            elif lt.kind == "money":
                exprs.append(f"{ident}::numeric AS {ident}")
            else:
                exprs.append(ident)
        return ", ".join(exprs)

    def read_range(self, table: Table, rng: KeyRange, batch_rows: int, batch_bytes: int) -> Iterator[pa.RecordBatch]:
        pred = range_predicate(table, rng)
        sql = f"SELECT {self._select_list(table)} FROM {qualified(table.schema, table.name)} WHERE {pred.sql}"
        conn = self._adbc_conn()
        what = f"reading {table.qualified} range {rng.range_id}"
        cur = conn.cursor()
        try:
            self._adbc_set_values(cur, pred.values)
            cur.adbc_statement.set_options(**{"adbc.postgresql.batch_size_hint_bytes": str(max(batch_bytes, 1))})
            cur.execute(sql)
            reader = cur.fetch_record_batch()
            for batch in reader:
                fixed = self._normalize(table, batch)
                for start in range(0, fixed.num_rows, max(batch_rows, 1)):
                    yield fixed.slice(start, batch_rows)
        except EngineError:
            raise
        except Exception as exc:
            raise self._error(what, exc) from None
        finally:
            cur.close()
            conn.rollback()

    def _normalize(self, table: Table, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Turn ADBC's opaque numeric strings into decimals where Arrow can hold them; plain strings else."""
        import pyarrow as pa

        arrays = []
        fields = []
        changed = False
        for i, col in enumerate(table.copy_columns):
            arr = batch.column(i)
            field = batch.schema.field(i)
            if col.logical.kind in ("decimal", "money") and not pa.types.is_decimal(arr.type):
                storage = arr.storage if isinstance(arr, pa.ExtensionArray) else arr
                arr, field = self._decimal(table, col, storage), None
                changed = True
            elif isinstance(arr, pa.ExtensionArray) and arr.type.extension_name == "arrow.opaque":
                arr, field, changed = arr.storage, None, True
            elif pa.types.is_timestamp(arr.type) or pa.types.is_date32(arr.type):
                self._check_time_range(table, col, arr)
            arrays.append(arr)
            fields.append(field if field is not None else pa.field(col.name, arr.type))
        if not changed:
            return batch
        return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))

    @staticmethod
    def _check_time_range(table: Table, col: Column, arr: pa.Array) -> None:
        """ADBC wraps around silently where Arrow's int64 microseconds / int32 days since 1970 end: infinity,
        -infinity and timestamps after 294246 AD come out as values before PostgreSQL's own minimum (4714 BC)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if arr.null_count == len(arr):
            return
        lowest = pc.min(arr.cast(pa.int64() if pa.types.is_timestamp(arr.type) else pa.int32())).as_py()
        floor = _PG_MIN_US if pa.types.is_timestamp(arr.type) else _PG_MIN_DAYS
        if lowest is not None and lowest < floor:
            raise EngineError(
                f"{table.qualified}.{col.name}: a value is infinity, -infinity or after 294246 AD, which Arrow "
                "cannot carry; PostgreSQL→PostgreSQL copies use the raw COPY path, otherwise change the value "
                "or exclude the table"
            )

    @staticmethod
    def _decimal(table: Table, col: Column, text: pa.Array) -> pa.Array:
        import pyarrow as pa
        import pyarrow.compute as pc

        lt = col.logical
        if lt.kind == "money":
            precision, scale = 21, 2
        elif lt.precision is None or lt.precision > 38:
            return text  # unbounded numeric: exact as text; a PostgreSQL target casts it back
        else:
            precision, scale = lt.precision, lt.scale or 0
        finite = pc.match_substring_regex(text, r"^-?[0-9]*\.?[0-9]*$")
        if pc.all(finite).as_py() is not False:
            try:
                return pc.cast(text, pa.decimal128(precision, scale))
            except pa.ArrowInvalid:
                pass
        bad = next((v for v in text.to_pylist() if v is not None and not re.match(r"^-?[0-9]*\.?[0-9]*$", v)), None)
        raise EngineError(
            f"{table.qualified}.{col.name}: numeric value {bad!r} has no Arrow decimal form; "
            "PostgreSQL→PostgreSQL copies use the raw COPY path, otherwise change the value or exclude the table"
        ) from None

    # -- raw binary COPY ----------------------------------------------------------------------------------
    def copy_query(self, table: Table, rng: KeyRange) -> tuple[str, tuple[str, ...]]:
        """The SELECT whose binary COPY output is the range, in the target's column order."""
        pred = range_predicate(table, rng)
        cols = ", ".join(quote_ident(c.name) for c in table.copy_columns)
        return f"SELECT {cols} FROM {qualified(table.schema, table.name)} WHERE {pred.sql}", pred.values

    def read_range_raw(
        self, table: Table, rng: KeyRange, chunk_bytes: int = 4 << 20, stats: dict[str, int] | None = None
    ) -> Generator[bytearray, None, None]:
        """Binary COPY output of one range in chunks of about chunk_bytes; only a PostgreSQL target can read it.

        A thread with its own connection and loop runs the COPY so that the consumer (another connection's
        COPY FROM) overlaps with it; a one-chunk queue hands chunks over. stats["rows"] receives the row count
        from the COPY command tag once the range is read.
        """
        sql, values = self.copy_query(table, rng)
        columns = [c.name for c in table.copy_columns]
        what = f"reading {table.qualified} range {rng.range_id} (raw COPY)"
        chunks: queue.Queue[bytearray | BaseException | None] = queue.Queue(maxsize=CAPABILITIES.raw_chunks_held - 1)
        stop = threading.Event()

        async def produce() -> None:
            conn = await self._connect_async()
            try:
                # Appending to one buffer holds a chunk once; a list of pieces joined at the end held it twice.
                pending = bytearray()

                async def sink(data: bytes) -> None:
                    nonlocal pending
                    if stop.is_set():
                        raise asyncio.CancelledError
                    pending += data
                    if len(pending) >= chunk_bytes:
                        full, pending = pending, bytearray()
                        await asyncio.to_thread(chunks.put, full)

                async with conn.transaction(readonly=True):
                    if rng.kind == "full":
                        # COPY of a table skips the executor's projection: ~1.4-1.7x faster than COPY (SELECT)
                        status = await conn.copy_from_table(
                            table.name, schema_name=table.schema, columns=columns, output=sink, format="binary"
                        )
                    else:
                        if values:
                            await conn.fetch(_set_config_sql(len(values), local=True), *values)
                        status = await conn.copy_from_query(sql, output=sink, format="binary")
                if stats is not None:
                    stats["rows"] = int(status.split()[-1])
                if pending:
                    chunks.put(pending)
            finally:
                await conn.close()

        def run() -> None:
            loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(produce())
                chunks.put(None)
            except BaseException as exc:  # handed to the consumer thread, which raises it
                chunks.put(exc)
            finally:
                loop.close()

        worker = threading.Thread(target=run, name=f"copy-out {rng.range_id}", daemon=True)
        worker.start()
        try:
            while True:
                item = chunks.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise self._error(what, item) from None
                yield item
        finally:
            stop.set()
            while worker.is_alive():
                with contextlib.suppress(queue.Empty):
                    chunks.get(timeout=0.05)
            worker.join()


# ---------------------------------------------------------------------------------------------------------
# Target
# ---------------------------------------------------------------------------------------------------------

_LEDGER_DDL = [
    f"CREATE SCHEMA IF NOT EXISTS {quote_ident(LEDGER_SCHEMA)}",
    f"""CREATE TABLE IF NOT EXISTS {quote_ident(LEDGER_SCHEMA)}.runs (
        run_id text PRIMARY KEY, plan_hash text, schema_hash text, state text NOT NULL DEFAULT 'running',
        started_at timestamptz NOT NULL DEFAULT now(), finished_at timestamptz)""",
    f"""CREATE TABLE IF NOT EXISTS {quote_ident(LEDGER_SCHEMA)}.ranges (
        run_id text NOT NULL, range_id text NOT NULL, schema_name text, table_name text, kind text,
        state text NOT NULL DEFAULT 'planned', rows int8, bytes int8, seconds float8, node text, error text,
        updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (run_id, range_id))""",
    f"""CREATE TABLE IF NOT EXISTS {quote_ident(LEDGER_SCHEMA)}.load_settings (
        run_id text NOT NULL, schema_name text NOT NULL, table_name text NOT NULL,
        extended_columns text[] NOT NULL, toast_tuple_target int,
        PRIMARY KEY (run_id, schema_name, table_name))""",
]
_LOAD_SETTINGS = f"{quote_ident(LEDGER_SCHEMA)}.load_settings"
_RANGES = f"{quote_ident(LEDGER_SCHEMA)}.ranges"
_RUNS = f"{quote_ident(LEDGER_SCHEMA)}.runs"
_CLAIM_SQL = (
    f"INSERT INTO {_RANGES} (run_id, range_id, schema_name, table_name, kind) VALUES ($1, $2, $3, $4, $5) "
    "ON CONFLICT (run_id, range_id) DO NOTHING"
)
_LOCK_SQL = f"SELECT state, rows, bytes FROM {_RANGES} WHERE run_id = $1 AND range_id = $2 FOR UPDATE"
_OTHERS_DONE_SQL = (
    f"SELECT EXISTS (SELECT 1 FROM {_RANGES} WHERE run_id = $1 AND schema_name = $2 AND table_name = $3 "
    "AND range_id <> $4 AND state IN ('done', 'verified'))"
)
_DONE_SQL = (
    f"UPDATE {_RANGES} SET state = 'done', rows = $3::int8, bytes = $4::int8, seconds = $5::float8, "
    "error = NULL, updated_at = now() WHERE run_id = $1 AND range_id = $2"
)


def retarget_index(definition: str, schema: str, table: str, name: str) -> str | None:
    """pg_get_indexdef text rewritten for another schema/table/index name; None if it has an unexpected form."""
    m = _INDEX_DEF.match(definition)
    if m is None:
        return None
    unique = "UNIQUE " if definition.startswith("CREATE UNIQUE ") else ""
    return f"CREATE {unique}INDEX {quote_ident(name)} ON {qualified(schema, table)} {m.group(1)}"


_MAX_IDENTIFIER_BYTES = 63


def pg_identifier(name: str) -> str:
    """What PostgreSQL keeps of a name: at most 63 bytes of UTF-8, cut on a character boundary."""
    raw = name.encode()
    if len(raw) <= _MAX_IDENTIFIER_BYTES:
        return name
    return raw[:_MAX_IDENTIFIER_BYTES].decode(errors="ignore")


def check_name_lengths(catalog: Catalog) -> None:
    """Refuse names that PostgreSQL would truncate into one another (another engine allows 128 characters)."""

    def clash(kind: str, names: list[str]) -> None:
        seen: dict[str, str] = {}
        for name in names:
            short = pg_identifier(name)
            if short in seen and seen[short] != name:
                raise UsageError(
                    f"{kind} {seen[short]!r} and {name!r} both become {short!r} in PostgreSQL (63-byte names); "
                    "rename one or map it to another name"
                )
            seen[short] = name

    clash("schema", sorted({t.schema for t in catalog.tables}))
    for schema in sorted({t.schema for t in catalog.tables}):
        clash(f"in schema {schema!r} table", [t.name for t in catalog.tables if t.schema == schema])
    for table in catalog.tables:
        clash(f"in {table.qualified} column", [c.name for c in table.columns])
        constraints = [k.name for k in ([table.primary_key] if table.primary_key else []) + table.unique_keys]
        clash(f"in {table.qualified} index or constraint", constraints + [i.name for i in table.indexes])


class PostgresTarget(_PostgresEndpoint, Target):
    """Writes into a PostgreSQL database: DDL, Arrow ingest, raw binary COPY, finalization and the ledger."""

    # -- prepare ------------------------------------------------------------------------------------------
    def prepare(self, catalog: Catalog, source_engine: str, options: WriteOptions) -> None:
        check_name_lengths(catalog)
        self._ensure_ledger()
        same = source_engine == POSTGRES
        for schema in sorted({t.schema for t in catalog.tables} | {s.schema for s in catalog.sequences}):
            self._execute(f"creating schema {schema}", f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
        if same:
            self._create_enums(catalog)
        for table in catalog.tables:
            self._prepare_table(table, source_engine, options)

    def _ensure_ledger(self) -> None:
        async def go(c: Any) -> None:
            async with c.transaction():
                await c.execute("SELECT pg_advisory_xact_lock(hashtext('ray_replicator ledger'))")
                for ddl in _LEDGER_DDL:
                    await c.execute(ddl)

        self._run(
            "creating the ledger schema _ray_replicator", go, OnDenied("the target user needs CREATE on the database")
        )

    def _create_enums(self, catalog: Catalog) -> None:
        for name, labels in catalog.enums.items():
            sql = f"CREATE TYPE {name} AS ENUM ({', '.join(quote_literal(label) for label in labels)})"

            async def go(c: Any, sql: str = sql, name: str = name, labels: list[str] = labels) -> None:
                existing = await c.fetchval(
                    "SELECT array_agg(enumlabel::text ORDER BY enumsortorder) FROM pg_enum "
                    "WHERE enumtypid = to_regtype($1)",
                    name,
                )
                if existing is None:
                    if await c.fetchval("SELECT to_regtype($1) IS NOT NULL", name):
                        raise UsageError(f"type {name} exists on the target and is not an enum; drop or rename it")
                    await c.execute(sql)
                elif list(existing) != labels:
                    raise UsageError(
                        f"enum {name} exists on the target with labels {list(existing)}, the source has {labels}; "
                        "drop it or make the labels equal"
                    )

            self._run(f"creating enum {name}", go)

    def _column_ddl(self, col: Column, same: bool, source_engine: str) -> str:
        parts = [quote_ident(col.name), postgres_type(col, source_engine)]
        if same and col.collation:
            parts.append(f"COLLATE {col.collation}")
        if col.computed is not None and same:
            parts.append(f"GENERATED ALWAYS AS ({col.computed}) STORED")
        elif col.identity is not None and (not same or col.default is None):
            ident = col.identity
            # BY DEFAULT while loading so COPY can write the source's values; finalize_table sets ALWAYS.
            parts.append(
                f"GENERATED BY DEFAULT AS IDENTITY (START WITH {int(ident.seed)} INCREMENT BY {int(ident.increment)})"
            )
        elif same and col.default is not None:
            parts.append(f"DEFAULT {col.default}")
        if not col.nullable:
            parts.append("NOT NULL")
        return " ".join(parts)

    def _prepare_table(self, table: Table, source_engine: str, options: WriteOptions) -> None:
        same = source_engine == POSTGRES
        rel = qualified(table.schema, table.name)
        unlogged = "UNLOGGED " if options.unlogged else ""
        cols = []
        for c in table.columns:
            if c.computed is not None and not same:
                log.warning(
                    "computed column %s.%s has an expression only %s understands; not created",
                    table.qualified,
                    c.name,
                    source_engine,
                )
                continue
            cols.append(self._column_ddl(c, same, source_engine))
        serials = [
            c.identity.sequence
            for c in table.columns
            if same and c.identity is not None and c.default is not None and c.identity.sequence
        ]
        create = f"CREATE {unlogged}TABLE {rel} ({', '.join(cols)})"

        native = [c.native_type for c in table.columns] if same else []

        async def go(c: Any) -> None:
            missing = await c.fetch(
                "SELECT t FROM unnest($1::text[]) WITH ORDINALITY u(t, i) WHERE to_regtype(t) IS NULL ORDER BY i",
                native,
            )
            if missing:
                col = next(col for col in table.columns if col.native_type == missing[0][0])
                raise UsageError(
                    f"{table.qualified}.{col.name}: type {col.native_type} does not exist on the target; create it "
                    "there first (enums are created, domains, composite and extension types are not)"
                )
            async with c.transaction():
                exists = await c.fetchval("SELECT to_regclass($1) IS NOT NULL", rel)
                if exists and options.existing == "fail":
                    raise UsageError(
                        f"target table {table.qualified} already exists; set existing to truncate or drop, "
                        "or drop it yourself"
                    )
                if exists and options.existing == "truncate":
                    await c.execute(f"TRUNCATE {rel}")
                else:
                    if exists:
                        await c.execute(f"DROP TABLE {rel} CASCADE")
                    for seq in serials:
                        await c.execute(f"CREATE SEQUENCE IF NOT EXISTS {seq}")
                    await c.execute(create)
                    for col in table.columns:
                        if same and col.identity is not None and col.default is not None and col.identity.sequence:
                            await c.execute(
                                f"ALTER SEQUENCE {col.identity.sequence} INCREMENT BY {int(col.identity.increment)} "
                                f"START WITH {int(col.identity.seed)} OWNED BY {rel}.{quote_ident(col.name)}"
                            )
                        if same and col.storage and col.computed is None:
                            await c.execute(
                                f"ALTER TABLE {rel} ALTER COLUMN {quote_ident(col.name)} SET STORAGE {col.storage}"
                            )
                if options.large_values_as_source and table.large_values_compressed is False:
                    await self._load_uncompressed(c, table, options.run_id)

        self._run(
            f"creating table {table.qualified}", go, "check that every type, collation and schema exists on the target"
        )
        if options.keys_before_load:
            self._add_keys(table)

    async def _load_uncompressed(self, c: Any, table: Table, run_id: str) -> None:
        """Load a table whose source stores its large values uncompressed without TOAST compression: rows up to a
        page stay inline and larger values go out of line as they are, so PostgreSQL spends no CPU on compression
        the source did not have (on StackOverflow's Posts, pglz was the largest item of the target's CPU).

        The table's own settings go to the ledger first, in this transaction; finalize_table puts them back.
        """
        rel = qualified(table.schema, table.name)
        columns = await c.fetch(
            "SELECT attname::text AS name FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 "
            "AND NOT attisdropped AND attstorage = 'x' ORDER BY attnum",
            rel,
        )
        if not columns:
            return
        current = await c.fetchval(
            "SELECT o.option_value FROM pg_class c, pg_options_to_table(c.reloptions) o "
            "WHERE c.oid = $1::regclass AND o.option_name = 'toast_tuple_target'",
            rel,
        )
        await c.execute(
            f"INSERT INTO {_LOAD_SETTINGS} (run_id, schema_name, table_name, extended_columns, toast_tuple_target) "
            "VALUES ($1, $2, $3, $4::text[], $5::int) ON CONFLICT DO NOTHING",
            run_id,
            table.schema,
            table.name,
            [r["name"] for r in columns],
            None if current is None else int(current),
        )
        block = int(await c.fetchval("SELECT current_setting('block_size')"))
        await c.execute(f"ALTER TABLE {rel} SET (toast_tuple_target = {block - 32})")  # a page's largest row
        for r in columns:
            await c.execute(f"ALTER TABLE {rel} ALTER COLUMN {quote_ident(r['name'])} SET STORAGE EXTERNAL")

    async def _restore_compression(self, c: Any, table: Table, run_id: str) -> None:
        """Put back what _load_uncompressed changed, so later writes are compressed as the user's defaults say."""
        rel = qualified(table.schema, table.name)
        async with c.transaction():
            saved = await c.fetchrow(
                f"DELETE FROM {_LOAD_SETTINGS} WHERE run_id = $1 AND schema_name = $2 AND table_name = $3 "
                "RETURNING extended_columns, toast_tuple_target",
                run_id,
                table.schema,
                table.name,
            )
            if saved is None:
                return
            for name in saved["extended_columns"]:
                await c.execute(f"ALTER TABLE {rel} ALTER COLUMN {quote_ident(name)} SET STORAGE EXTENDED")
            if saved["toast_tuple_target"] is None:
                await c.execute(f"ALTER TABLE {rel} RESET (toast_tuple_target)")
            else:
                await c.execute(f"ALTER TABLE {rel} SET (toast_tuple_target = {int(saved['toast_tuple_target'])})")

    def _key_types(self, table: Table) -> dict[str, str] | None:
        """The target's own column types: a table from another engine's catalog has that engine's names."""
        if not table.split_key:
            return None
        rel = qualified(table.schema, table.name)
        rows = self._fetch(
            f"reading column types of {table.qualified}",
            "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped",
            rel,
        )
        return {r[0]: r[1] for r in rows}

    # -- writes -------------------------------------------------------------------------------------------
    def _target_types(self, table: Table) -> dict[str, str]:
        rel = qualified(table.schema, table.name)
        rows = self._fetch(
            f"reading column types of {table.qualified}",
            "SELECT a.attname::text AS name, t.typname::text AS typname, format_type(a.atttypid, a.atttypmod) "
            "AS native, t.typcategory::text AS cat FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
            "WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped",
            rel,
        )
        return {r["name"]: ("text" if r["typname"] in _TEXT_TARGETS else r["native"]) for r in rows}

    def write_range(
        self, table: Table, rng: KeyRange, batches: Iterable[pa.RecordBatch], options: WriteOptions
    ) -> RangeWrite:
        import pyarrow as pa

        started = time.monotonic()
        what = f"writing {table.qualified} range {rng.range_id}"
        types = self._target_types(table)
        conn = self._adbc_conn()
        cur = conn.cursor()
        it: Iterator[pa.RecordBatch] | None = None
        source_errors: list[BaseException] = []
        try:
            done = self._adbc_claim(cur, rng, options.run_id)
            if done is not None:
                conn.commit()
                _close(batches)
                return done
            it = _read_ahead(batches, int(options.extra.get("read_ahead_batches", 2)))
            first = next(it, None)
            rows = 0
            nbytes = 0
            if first is not None:
                # another engine's names may be longer than PostgreSQL keeps; ADBC matches them verbatim
                names = [pg_identifier(n) for n in first.schema.names]
                renamed = names != first.schema.names
                schema = pa.schema([f.with_name(n) for f, n in zip(first.schema, names, strict=True)])
                staged = [
                    f.name
                    for f in schema
                    if (pa.types.is_string(f.type) or pa.types.is_large_string(f.type)) and types.get(f.name) != "text"
                ]

                def counted() -> Iterator[pa.RecordBatch]:
                    nonlocal rows, nbytes
                    try:
                        for b in chain([first], it):
                            rows += b.num_rows
                            nbytes += b.nbytes
                            yield b.rename_columns(names) if renamed else b
                    except BaseException as exc:  # ADBC would bury it in a traceback text: keep it whole
                        source_errors.append(exc)
                        raise

                reader = pa.RecordBatchReader.from_batches(schema, counted())
                if staged:
                    self._ingest_staged(cur, table, reader, staged, types)
                else:
                    cur.adbc_ingest(
                        pg_identifier(table.name), reader, mode="append", db_schema_name=pg_identifier(table.schema)
                    )
            cur.execute(
                _DONE_SQL,
                [options.run_id, rng.range_id, rows, nbytes, time.monotonic() - started],
            )
            conn.commit()
            return RangeWrite(rows=rows, bytes=nbytes)
        except Exception as exc:
            try:
                conn.rollback()
            except Exception as rb:
                log.debug("rollback after failed write: %s", self._scrub(str(rb)))
            if source_errors:
                raise self._error(f"reading for {table.qualified} range {rng.range_id}", source_errors[0]) from None
            raise self._error(what, exc, self._write_hint(exc)) from None
        finally:
            if it is not None:
                _close(it)
            cur.close()

    @staticmethod
    def _write_hint(exc: BaseException) -> str:
        text = str(exc)
        if "22021" in text or "0x00" in text:
            return "text with NUL (U+0000) cannot be stored in PostgreSQL; clean the value at the source"
        if "23502" in text:
            return "a NULL arrived for a NOT NULL column"
        if "22001" in text:
            return "a value is longer than the target column allows"
        return ""

    def _adbc_claim(self, cur: Any, rng: KeyRange, run_id: str) -> RangeWrite | None:
        """Lock the range's ledger row inside the write transaction; a range already done is not written."""
        cur.execute(_CLAIM_SQL, [run_id, rng.range_id, rng.schema, rng.table, rng.kind])
        cur.execute(_LOCK_SQL, [run_id, rng.range_id])
        row = cur.fetchone()
        if row is not None and row[0] in ("done", "verified"):
            return RangeWrite(rows=int(row[1] or 0), bytes=int(row[2] or 0), fresh=False)
        return None

    def _ingest_staged(
        self, cur: Any, table: Table, reader: pa.RecordBatchReader, staged: list[str], types: dict[str, str]
    ) -> None:
        """Columns that arrive as text for a non-text column go through a temporary table and a cast."""
        stage = f"rr_stage_{uuid.uuid4().hex[:12]}"
        cur.adbc_ingest(stage, reader, mode="create", temporary=True)
        names = reader.schema.names
        cols = ", ".join(quote_ident(n) for n in names)
        exprs = ", ".join(
            f"{quote_ident(n)}::{types[n]}" if n in staged and n in types else quote_ident(n) for n in names
        )
        cur.execute(
            f"INSERT INTO {qualified(table.schema, table.name)} ({cols}) "
            f"SELECT {exprs} FROM pg_temp.{quote_ident(stage)}"
        )
        cur.execute(f"DROP TABLE pg_temp.{quote_ident(stage)}")

    def write_range_raw(
        self, table: Table, rng: KeyRange, chunks: Iterable[bytes | bytearray], options: WriteOptions
    ) -> RangeWrite:
        """Binary COPY FROM STDIN of chunks made by PostgresSource.read_range_raw, in one transaction with the
        ledger's done mark; the row count comes from the COPY command tag.

        A range that is the whole table is loaded with TRUNCATE + COPY FREEZE in that transaction: rows land
        frozen and all-visible, so the index builds, ANALYZE and the first reads after the load do not rewrite
        every page to set hint bits (with data checksums on, each such write also goes to the WAL). So is a lead
        range (its table's other ranges wait for it), unless the ledger already has another range of the table
        done in this run (a resume): the TRUNCATE would take those rows.
        """
        started = time.monotonic()
        freeze = rng.kind == "full"
        columns = [c.name for c in table.copy_columns]
        nbytes = 0

        last_sent = [time.monotonic()]

        async def source() -> AsyncIterator[memoryview]:
            nonlocal nbytes
            for chunk in chunks:
                nbytes += len(chunk)
                view = memoryview(chunk)
                for start in range(0, len(view), _COPY_PIECE_BYTES):
                    last_sent[0] = time.monotonic()
                    yield view[start : start + _COPY_PIECE_BYTES]

        async def go(c: Any) -> RangeWrite:
            async with c.transaction():
                await c.execute(_CLAIM_SQL, options.run_id, rng.range_id, rng.schema, rng.table, rng.kind)
                row = await c.fetchrow(_LOCK_SQL, options.run_id, rng.range_id)
                if row is not None and row["state"] in ("done", "verified"):
                    _close(chunks)
                    return RangeWrite(rows=int(row["rows"] or 0), bytes=int(row["bytes"] or 0), fresh=False)
                freezing = freeze
                if rng.lead and not freeze:
                    others = await c.fetchval(_OTHERS_DONE_SQL, options.run_id, rng.schema, rng.table, rng.range_id)
                    freezing = not others
                if freezing:
                    await c.execute(f"TRUNCATE ONLY {qualified(table.schema, table.name)}")
                copy = asyncio.ensure_future(
                    c.copy_to_table(
                        table.name,
                        source=source(),
                        columns=columns,
                        schema_name=table.schema,
                        format="binary",
                        freeze=freezing,
                    )
                )
                watcher = asyncio.ensure_future(self._watch_copy(c, copy, last_sent))
                try:
                    status = await copy
                except asyncio.CancelledError:
                    c.terminate()
                    raise ConnectionError("the target closed the connection during COPY (a restart?)") from None
                finally:
                    watcher.cancel()
                rows = int(status.split()[-1])
                await c.execute(_DONE_SQL, options.run_id, rng.range_id, rows, nbytes, time.monotonic() - started)
                return RangeWrite(rows=rows, bytes=nbytes)

        return self._run(f"writing {table.qualified} range {rng.range_id} (raw COPY)", go)

    async def _watch_copy(self, c: Any, copy: asyncio.Future[Any], last_sent: list[float]) -> None:
        """asyncpg can wait forever on a socket the server already closed (seen when the target restarts
        mid-COPY: CLOSE-WAIT, never read). When no chunk went out for a while, ask the server on a fresh
        connection whether our backend still exists; if not, cancel the COPY so the range fails and is retried."""
        backend = c.get_server_pid()
        while not copy.done():
            await asyncio.sleep(_COPY_STALL_SECONDS)
            if time.monotonic() - last_sent[0] < _COPY_STALL_SECONDS or copy.done():
                continue
            try:
                probe = await asyncio.wait_for(self._connect_async(None), _COPY_STALL_SECONDS)
                try:
                    alive = await probe.fetchval(
                        "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)", backend
                    )
                finally:
                    await probe.close()
            except Exception:  # noqa: BLE001 - a server we cannot reach holds no live backend of ours either
                alive = False
            if not alive:
                copy.cancel()
                return

    # -- finalize -----------------------------------------------------------------------------------------
    async def _constraint_exists(self, c: Any, table: Table, name: str) -> bool:
        return bool(
            await c.fetchval(
                "SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = $1::regclass AND conname = $2)",
                qualified(table.schema, table.name),
                name,
            )
        )

    def _add_keys(self, table: Table) -> None:
        rel = qualified(table.schema, table.name)
        keys = ([table.primary_key] if table.primary_key else []) + list(table.unique_keys)

        async def go(c: Any) -> None:
            for key in keys:
                if await self._constraint_exists(c, table, key.name):
                    continue
                cols = ", ".join(quote_ident(k) for k in key.columns)
                kind = "PRIMARY KEY" if key.primary else "UNIQUE"
                idx = quote_ident(key.name)
                # Like pgcopydb: build the unique index, then attach it, so the build is a plain index build.
                await c.execute(f"CREATE UNIQUE INDEX {idx} ON {rel} ({cols})")
                await c.execute(f"ALTER TABLE {rel} ADD CONSTRAINT {idx} {kind} USING INDEX {idx}")

        self._run(f"adding keys to {table.qualified}", go, "the copied rows break a key: compare source and target")

    def finalize_table(self, table: Table, source_engine: str, options: WriteOptions) -> None:
        rel = qualified(table.schema, table.name)
        same = source_engine == POSTGRES
        self._execute(
            "raising maintenance_work_mem",
            "SELECT set_config('maintenance_work_mem', $1, false)",
            str(options.extra.get("maintenance_work_mem", "256MB")),
        )
        if options.unlogged:
            # Before the indexes: SET LOGGED rewrites the table and rebuilds every index it already has
            # (measured: 1.5 s instead of 1.8-2.1 s for 1.6 M rows with a primary key).
            self._execute(f"setting {table.qualified} LOGGED", f"ALTER TABLE {rel} SET LOGGED")
        self._add_keys(table)

        async def go(c: Any) -> None:
            for ix in table.indexes:
                exists = await c.fetchval("SELECT to_regclass($1) IS NOT NULL", qualified(table.schema, ix.name))
                if exists:
                    continue
                ddl = (
                    retarget_index(ix.definition, table.schema, table.name, ix.name) if same and ix.definition else None
                )
                if ddl is None:
                    if not ix.columns or any(not col for col in ix.columns):
                        log.warning(
                            "index %s on %s has expressions only the source understands; skipped",
                            ix.name,
                            table.qualified,
                        )
                        continue
                    cols = ", ".join(
                        quote_ident(col) + (" DESC" if i < len(ix.descending) and ix.descending[i] else "")
                        for i, col in enumerate(ix.columns)
                    )
                    include = f" INCLUDE ({', '.join(quote_ident(x) for x in ix.include)})" if ix.include else ""
                    unique = "UNIQUE " if ix.unique else ""
                    ddl = f"CREATE {unique}INDEX {quote_ident(ix.name)} ON {rel} ({cols}){include}"
                await c.execute(ddl)
            for col in table.columns:
                ident = col.identity
                if ident is None:
                    continue
                if same and col.default is not None and ident.sequence:
                    if ident.current is None:
                        await c.execute(f"SELECT setval($1::regclass, {int(ident.seed)}, false)", ident.sequence)
                    else:
                        await c.execute(f"SELECT setval($1::regclass, {int(ident.current)}, true)", ident.sequence)
                    continue
                nxt = ident.seed if ident.current is None else ident.current + ident.increment
                alter = f"ALTER TABLE {rel} ALTER COLUMN {quote_ident(col.name)}"
                await c.execute(f"{alter} RESTART WITH {int(nxt)}")
                if ident.always:
                    await c.execute(f"{alter} SET GENERATED ALWAYS")
            for check in table.checks if same else []:
                if not await self._constraint_exists(c, table, check.name):
                    await c.execute(f"ALTER TABLE {rel} ADD CONSTRAINT {quote_ident(check.name)} {check.definition}")
            await c.execute(f"ANALYZE {rel}")
            await self._restore_compression(c, table, options.run_id)

        self._run(f"finalizing {table.qualified}", go)

    def finalize(self, catalog: Catalog, source_engine: str, options: WriteOptions) -> None:
        copied = {(t.schema, t.name) for t in catalog.tables}
        for table in catalog.tables:
            for fk in table.foreign_keys:
                if (fk.ref_schema, fk.ref_table) not in copied:
                    log.warning(
                        "foreign key %s on %s references %s.%s, which is not copied; skipped",
                        fk.name,
                        table.qualified,
                        fk.ref_schema,
                        fk.ref_table,
                    )
                    continue
                self._add_foreign_key(table, fk)
        for seq in catalog.sequences:
            name = qualified(seq.schema, seq.name)

            async def go(c: Any, seq: Sequence = seq, name: str = name) -> None:
                await c.execute(f"CREATE SEQUENCE IF NOT EXISTS {name} INCREMENT BY {int(seq.increment)}")
                if seq.last_value is not None:
                    await c.execute("SELECT setval($1::regclass, $2::int8, $3)", name, seq.last_value, seq.is_called)

            self._run(f"creating sequence {seq.schema}.{seq.name}", go)

    def _add_foreign_key(self, table: Table, fk: ForeignKey) -> None:
        rel = qualified(table.schema, table.name)
        cols = ", ".join(quote_ident(c) for c in fk.columns)
        refs = ", ".join(quote_ident(c) for c in fk.ref_columns)

        async def go(c: Any) -> None:
            if await self._constraint_exists(c, table, fk.name):
                return
            await c.execute(
                f"ALTER TABLE {rel} ADD CONSTRAINT {quote_ident(fk.name)} FOREIGN KEY ({cols}) "
                f"REFERENCES {qualified(fk.ref_schema, fk.ref_table)} ({refs}) "
                f"ON DELETE {fk.on_delete} ON UPDATE {fk.on_update} NOT VALID"
            )
            await c.execute(f"ALTER TABLE {rel} VALIDATE CONSTRAINT {quote_ident(fk.name)}")

        self._run(f"adding foreign key {fk.name} to {table.qualified}", go, "rows reference missing parents")

    # -- ledger -------------------------------------------------------------------------------------------
    @property
    def ledger(self) -> LedgerStore:
        return _TargetLedger(self)

    def ledger_init(self, run_id: str, plan_hash: str, schema_hash: str, ranges: list[KeyRange]) -> None:
        self._ensure_ledger()

        async def go(c: Any) -> None:
            async with c.transaction():
                await c.execute(
                    f"INSERT INTO {_RUNS} (run_id, plan_hash, schema_hash) VALUES ($1, $2, $3) "
                    "ON CONFLICT (run_id) DO UPDATE SET state = 'running', finished_at = NULL",
                    run_id,
                    plan_hash,
                    schema_hash,
                )
                await c.executemany(_CLAIM_SQL, [(run_id, r.range_id, r.schema, r.table, r.kind) for r in ranges])

        self._run(f"recording run {run_id} in the ledger", go)

    def _has_ledger(self) -> bool:
        """Readers (status, --resume) look without creating: a target no run has written to stays untouched."""
        sql = "SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL"
        return bool(self._run("looking for the ledger", lambda c: c.fetchval(sql, _RUNS, _RANGES)))

    def ledger_runs(self) -> list[dict[str, Any]]:
        if not self._has_ledger():
            return []
        rows = self._fetch(
            "reading the ledger",
            f"SELECT run_id, plan_hash, schema_hash, state, started_at, finished_at FROM {_RUNS} "
            "ORDER BY started_at DESC, run_id",
        )
        return [dict(r) for r in rows]

    def ledger_ranges(self, run_id: str) -> dict[str, dict[str, Any]]:
        if not self._has_ledger():
            return {}
        rows = self._fetch(
            "reading the ledger",
            f"SELECT range_id, state, rows, bytes, seconds, node, error FROM {_RANGES} WHERE run_id = $1",
            run_id,
        )
        return {r["range_id"]: {k: r[k] for k in ("state", "rows", "bytes", "seconds", "node", "error")} for r in rows}

    def ledger_mark(self, run_id: str, range_ids: list[str], state: str, **info: Any) -> None:
        allowed = {"rows", "bytes", "seconds", "node", "error"}
        unknown = set(info) - allowed
        if unknown:
            raise UsageError(f"unknown ledger fields {sorted(unknown)}; allowed: {sorted(allowed)}")
        sets = ["state = $3", "updated_at = now()"] + [f"{k} = ${i}" for i, k in enumerate(info, start=4)]
        sql = f"UPDATE {_RANGES} SET {', '.join(sets)} WHERE run_id = $1 AND range_id = ANY($2::text[])"
        self._execute(f"marking ranges {state} in the ledger", sql, run_id, range_ids, state, *info.values())

    def ledger_finish(self, run_id: str, state: str) -> None:
        self._execute(
            "finishing the run in the ledger",
            f"UPDATE {_RUNS} SET state = $2, finished_at = now() WHERE run_id = $1",
            run_id,
            state,
        )

    # Additive ledger pieces for resume (owned with ray_replicator/ledger.py): the plan JSON of a run, kept in its
    # own table so the runs/ranges tables keep their shape, and a 'copying' mark that never demotes a done range.
    _PLANS = f"{quote_ident(LEDGER_SCHEMA)}.plans"

    def ledger_save_plan(self, run_id: str, plan_json: str) -> None:
        self._ensure_ledger()

        async def go(c: Any) -> None:
            await c.execute(
                f"CREATE TABLE IF NOT EXISTS {self._PLANS} (run_id text PRIMARY KEY, plan text NOT NULL, "
                "saved_at timestamptz NOT NULL DEFAULT now())"
            )
            await c.execute(
                f"INSERT INTO {self._PLANS} (run_id, plan) VALUES ($1, $2) "
                "ON CONFLICT (run_id) DO UPDATE SET plan = EXCLUDED.plan, saved_at = now()",
                run_id,
                plan_json,
            )

        self._run(f"saving the plan of run {run_id} in the ledger", go)

    def ledger_load_plan(self, run_id: str) -> str | None:
        async def go(c: Any) -> str | None:
            if not await c.fetchval("SELECT to_regclass($1) IS NOT NULL", self._PLANS):
                return None
            value = await c.fetchval(f"SELECT plan FROM {self._PLANS} WHERE run_id = $1", run_id)
            return None if value is None else str(value)

        return self._run(f"reading the plan of run {run_id} from the ledger", go)

    def ledger_claim_copying(self, run_id: str, range_id: str, node: str) -> None:
        """Mark a range 'copying' by this worker (node:pid) unless it is already done."""
        self._execute(
            "marking a range copying in the ledger",
            f"UPDATE {_RANGES} SET state = 'copying', node = $3, updated_at = now() "
            "WHERE run_id = $1 AND range_id = $2 AND state NOT IN ('done', 'verified')",
            run_id,
            range_id,
            node,
        )


class _TargetLedger:
    """The ledger half of a PostgreSQL target, as the stages see it (LedgerStore)."""

    def __init__(self, target: PostgresTarget) -> None:
        self._t = target

    def init(self, run_id: str, plan_hash: str, schema_hash: str, ranges: list[KeyRange]) -> None:
        self._t.ledger_init(run_id, plan_hash, schema_hash, ranges)

    def runs(self) -> list[dict[str, Any]]:
        return self._t.ledger_runs()

    def ranges(self, run_id: str) -> dict[str, dict[str, Any]]:
        return self._t.ledger_ranges(run_id)

    def mark(self, run_id: str, range_ids: list[str], state: str, **info: Any) -> None:
        self._t.ledger_mark(run_id, range_ids, state, **info)

    def finish(self, run_id: str, state: str) -> None:
        self._t.ledger_finish(run_id, state)

    def save_plan(self, run_id: str, plan_json: str) -> None:
        self._t.ledger_save_plan(run_id, plan_json)

    def load_plan(self, run_id: str) -> str | None:
        return self._t.ledger_load_plan(run_id)

    def claim_copying(self, run_id: str, range_id: str, node: str) -> None:
        self._t.ledger_claim_copying(run_id, range_id, node)


SOURCE = PostgresSource
TARGET = PostgresTarget

__all__ = [
    "CAPABILITIES",
    "LEDGER_SCHEMA",
    "PostgresSource",
    "PostgresTarget",
    "Predicate",
    "quote_ident",
    "range_predicate",
    "redact_url",
    "retarget_index",
]
