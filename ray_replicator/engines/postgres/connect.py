"""What source and target share: one asyncpg control connection on a private event loop, one ADBC connection,
driver errors as one-line EngineErrors without secrets, counting and hashing a range, aborting and closing.

Control work (catalog, DDL, ledger, boundaries, counts) and the raw binary COPY path go through asyncpg, which
hands COPY data over in network-sized chunks without per-row Python. Arrow reads and writes go through ADBC,
which streams COPY results into record batches and ingests them with binary COPY.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ray_replicator.catalog import Table
from ray_replicator.engines.base import (
    Capabilities,
    Carries,
    ConnectTimeoutError,
    Endpoint,
    EngineError,
    KeyRange,
)
from ray_replicator.engines.postgres.digest import HASH_PROBE_SQL, digest_of, digest_sql
from ray_replicator.engines.postgres.names import pg_name
from ray_replicator.engines.postgres.predicate import range_predicate, set_bounds, set_config_sql
from ray_replicator.engines.postgres.sql import qualified
from ray_replicator.engines.postgres.types import POSTGRES
from ray_replicator.engines.postgres.url import connect_target, parse_url
from ray_replicator.redact import scrub

log = logging.getLogger(__name__)

T = TypeVar("T")

CAPABILITIES = Capabilities(
    name=POSTGRES,
    default_port=5432,
    title="PostgreSQL",
    raw_format="postgresql binary COPY",
    raw_chunks_held=2,
    digest_family="postgresql md5 of row text",
    physical_ranges=True,
    text_for_other_types=True,
    carries=Carries(nul_in_text=False, hundred_ns=False, sql_variant=False),
    transient_errors=(
        r"terminating connection|server closed the connection|connection (is|was) closed|ConnectionDoesNotExist|"
        r"database system is (starting up|shutting down|in recovery mode|not yet accepting)|"
        r"could not receive data|connect call failed|no connection to the server|"
        r"SQLSTATE: (57P0[123]|08\d\d\d)|\b(57P0[123]|08006)\b|"
        # asyncpg, when the server went away inside a COPY: the protocol is left failed, the connection unusable
        r"protocol is in the \"failed\" state"
    ),
)

SESSION = {
    "DateStyle": "ISO, YMD",
    "IntervalStyle": "postgres",
    "TimeZone": "UTC",
    "extra_float_digits": "3",
    "search_path": "pg_catalog",
}
"""Session settings of every connection: values' text forms do not depend on the server's defaults."""


def one_line(text: str) -> str:
    return " ".join(str(text).split())


class Loop:
    """A private event loop so that synchronous callers (Ray tasks, the driver) can use asyncpg."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def run(self, coro: Awaitable[T]) -> T:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.loop.close()


class PostgresEndpoint(Endpoint):
    """Connections shared by source and target: one asyncpg control connection, one ADBC connection."""

    capabilities = CAPABILITIES

    def __init__(self, url: str) -> None:
        parsed = parse_url(url)
        self.connect_timeout = parsed.connect_timeout
        self.url, self._asyncpg_url = parsed.libpq, parsed.asyncpg
        self.display = parsed.display
        self._secrets = parsed.secrets
        self._loop: Loop | None = None
        self._conn: Any = None
        self._adbc: Any = None

    # -- errors -------------------------------------------------------------------------------------------
    def scrub(self, text: str) -> str:
        text = one_line(text).replace(self.url, self.display).replace(self._asyncpg_url, self.display)
        return scrub(text, self._secrets)

    def error(self, what: str, exc: BaseException, hint: str = "") -> EngineError:
        if isinstance(exc, EngineError):
            return exc
        text = str(exc) or type(exc).__name__
        detail = getattr(exc, "detail", None)  # asyncpg keeps "Key (id)=(5) already exists." apart
        if isinstance(detail, str) and detail and detail not in text:
            text += f" ({detail})"
        return self.driver_error(what, exc, self.scrub(text), hint)

    # -- asyncpg ------------------------------------------------------------------------------------------
    async def connect_async(self, settings: dict[str, str] | None = SESSION) -> Any:
        """An asyncpg connection within connect_timeout (asyncpg's own timeout covers TCP, TLS and the login)."""
        import asyncpg

        try:
            return await asyncpg.connect(self._asyncpg_url, server_settings=settings, timeout=self.connect_timeout)
        except TimeoutError:
            raise ConnectTimeoutError(*connect_target(self.url), self.connect_timeout) from None

    def run(self, what: str, fn: Callable[[Any], Awaitable[T]], hint: str = "") -> T:
        """Run `fn(connection)` on the control connection, wrapping driver errors into EngineError."""
        if self._loop is None:
            self._loop = Loop()
        if self._conn is None:
            try:
                self._conn = self._loop.run(self.connect_async())
            except Exception as exc:  # a refused login is no failure of the step that needed the connection
                raise self.error("connecting", exc) from None
        try:
            return self._loop.run(fn(self._conn))
        except Exception as exc:
            if self._conn is not None and self._conn.is_closed():
                self._conn = None  # reconnect on the next call
            raise self.error(what, exc, hint) from None

    def fetch(self, what: str, sql: str, *args: Any) -> list[Any]:
        return self.run(what, lambda c: c.fetch(sql, *args))

    def execute(self, what: str, sql: str, *args: Any, hint: str = "") -> None:
        async def go(c: Any) -> None:
            await c.execute(sql, *args)

        self.run(what, go, hint)

    # -- ADBC ---------------------------------------------------------------------------------------------
    def adbc_conn(self) -> Any:
        if self._adbc is None:
            import adbc_driver_postgresql.dbapi as pgdb

            try:
                try:
                    self._adbc = pgdb.connect(self.url)
                except Exception as exc:
                    if "timeout expired" in str(exc):  # libpq's words for connect_timeout
                        raise ConnectTimeoutError(*connect_target(self.url), self.connect_timeout) from None
                    raise
                with self._adbc.cursor() as cur:
                    for name, value in SESSION.items():
                        cur.execute(f"SELECT set_config('{name}', '{value}', false)")
                        cur.fetchall()
                self._adbc.commit()
            except Exception as exc:
                self._adbc = None
                raise self.error("connecting with ADBC", exc) from None
        return self._adbc

    @staticmethod
    def adbc_set_values(cur: Any, values: tuple[str, ...]) -> None:
        if values:
            cur.execute(set_config_sql(len(values)), list(values))
            cur.fetchall()

    def key_types(self, table: Table) -> dict[str, str] | None:
        """Column types to cast range bounds to; None means the catalog's native types are this database's."""
        return None

    # -- counting and hashing -----------------------------------------------------------------------------
    def hash_probe(self) -> tuple[str, int]:
        async def go(c: Any) -> tuple[str, int]:
            row = await c.fetchrow(HASH_PROBE_SQL)
            return str(row["enc"]), int(row["h"])

        return self.run("probing the row hash", go)

    def range_digest(self, table: Table, rng: KeyRange, columns: list[str]) -> tuple[int, int, int]:
        """Rows, sum and xor of the range's row hashes (digest_sql), computed by the server: nothing leaves it."""
        pred = range_predicate(table, rng, self.key_types(table))
        sql = digest_sql(table, pred, columns)

        async def go(c: Any) -> tuple[int, int, int]:
            async with c.transaction(readonly=True):
                await set_bounds(c, pred.values)
                return digest_of(await c.fetchrow(sql))

        return self.run(f"hashing {table.qualified} range {rng.range_id}", go)

    def count_range(self, table: Table, rng: KeyRange) -> int:
        pred = range_predicate(table, rng, self.key_types(table))
        sql = f"SELECT count(*) FROM {qualified(table.schema, table.name)} WHERE {pred.sql}"

        async def go(c: Any) -> int:
            async with c.transaction():
                await set_bounds(c, pred.values)
                return int(await c.fetchval(sql))

        return self.run(f"counting {table.qualified} range {rng.range_id}", go)

    # -- closing ------------------------------------------------------------------------------------------
    def stored_name(self, name: str) -> str:
        return pg_name(name)

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
                log.debug("closing ADBC connection: %s", self.scrub(str(exc)))
            self._adbc = None
        if self._loop is not None:
            if self._conn is not None:
                try:
                    self._loop.run(self._conn.close())
                except Exception as exc:
                    log.debug("closing connection: %s", self.scrub(str(exc)))
                self._conn = None
            self._loop.close()
            self._loop = None
