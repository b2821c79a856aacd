"""Writing into a PostgreSQL database: Arrow batches ingested with ADBC, raw binary COPY chunks with asyncpg, each
range in one transaction with its ledger row (claimed, locked, marked done), and the schema work of ddl.py."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from itertools import chain
from typing import TYPE_CHECKING, Any

from ray_replicator.catalog import Catalog, Table
from ray_replicator.engines.base import KeyRange, RangeWrite, Target, WriteOptions
from ray_replicator.engines.postgres import ddl
from ray_replicator.engines.postgres.connect import PostgresEndpoint
from ray_replicator.engines.postgres.ledger import (
    CLAIM_SQL,
    DONE_SQL,
    LOCK_SQL,
    OTHERS_DONE_SQL,
    PostgresLedger,
    is_done,
)
from ray_replicator.engines.postgres.names import pg_name
from ray_replicator.engines.postgres.sql import qualified, quote_ident
from ray_replicator.engines.postgres.types import TEXT_TARGETS
from ray_replicator.engines.readahead import close_producer, read_ahead
from ray_replicator.record import SchemaChange

if TYPE_CHECKING:  # imported where used: a raw COPY worker never loads Arrow (~60 MB of RSS)
    import pyarrow as pa

log = logging.getLogger(__name__)

_COPY_STALL_SECONDS = 10.0
"""A raw COPY that sent nothing for this long checks that its server backend still exists."""
_COPY_PIECE_BYTES = 1 << 20
"""Raw COPY data goes to asyncpg in pieces of this size: it copies each piece into a message and the socket's flow
control keeps about one queued, so the writer holds ~2 MB of copies instead of two more copies of a whole chunk."""


def _write_hint(exc: BaseException) -> str:
    text = str(exc)
    if "22021" in text or "0x00" in text:
        return "text with NUL (U+0000) cannot be stored in PostgreSQL; clean the value at the source"
    if "23502" in text:
        return "a NULL arrived for a NOT NULL column"
    if "22001" in text:
        return "a value is longer than the target column allows"
    return ""


class PostgresTarget(PostgresEndpoint, Target):
    """Writes into a PostgreSQL database: DDL, Arrow ingest, raw binary COPY, finalization and the ledger."""

    @property
    def ledger(self) -> PostgresLedger:
        return PostgresLedger(self)

    def schema_changes(self, catalog: Catalog, source_engine: str, options: WriteOptions) -> list[SchemaChange]:
        """What ddl.designs decides, the decision prepare creates the tables from."""
        return [change for design in ddl.designs(self, catalog, source_engine, options) for change in design.changes]

    def prepare(self, catalog: Catalog, source_engine: str, options: WriteOptions) -> None:
        ddl.prepare(self, catalog, source_engine, options)

    def finalize_table(self, table: Table, source_engine: str, options: WriteOptions) -> None:
        ddl.finalize_table(self, table, source_engine, options)

    def finalize(self, catalog: Catalog, source_engine: str, options: WriteOptions) -> None:
        ddl.finalize(self, catalog)

    def _column_types(self, table: Table) -> list[Any]:
        rows = self.fetch(
            f"reading column types of {table.qualified}",
            "SELECT a.attname::text AS name, t.typname::text AS typname, format_type(a.atttypid, a.atttypmod) "
            "AS native FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
            "WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped",
            qualified(table.schema, table.name),
        )
        return rows

    def key_types(self, table: Table) -> dict[str, str] | None:
        """The target's own column types: a table from another engine's catalog has that engine's names."""
        if not table.split_key:
            return None
        native = {r["name"]: r["native"] for r in self._column_types(table)}
        return {c.name: native[pg_name(c.name)] for c in table.columns if pg_name(c.name) in native}

    def _target_types(self, table: Table) -> dict[str, str]:
        """Each column's type to cast staged strings to; "text" where an Arrow string goes in directly."""
        return {r["name"]: ("text" if r["typname"] in TEXT_TARGETS else r["native"]) for r in self._column_types(table)}

    # -- Arrow writes -------------------------------------------------------------------------------------
    def write_range(
        self, table: Table, rng: KeyRange, batches: Iterable[pa.RecordBatch], options: WriteOptions
    ) -> RangeWrite:
        started = time.monotonic()
        types = self._target_types(table)
        conn = self.adbc_conn()
        cur = conn.cursor()
        it: Iterator[pa.RecordBatch] | None = None
        source_errors: list[BaseException] = []
        try:
            done = self._adbc_claim(cur, rng, options.run_id)
            if done is not None:
                conn.commit()
                close_producer(batches)
                return done
            it = read_ahead(batches, int(options.extra.get("read_ahead_batches", 2)))
            rows, nbytes = self._ingest(cur, table, it, types, source_errors)
            cur.execute(DONE_SQL, [options.run_id, rng.range_id, rows, nbytes, time.monotonic() - started])
            conn.commit()
            return RangeWrite(rows=rows, bytes=nbytes)
        except Exception as exc:
            try:
                conn.rollback()
            except Exception as rb:
                log.debug("rollback after failed write: %s", self.scrub(str(rb)))
            if source_errors:
                raise self.error(f"reading for {table.qualified} range {rng.range_id}", source_errors[0]) from None
            raise self.error(f"writing {table.qualified} range {rng.range_id}", exc, _write_hint(exc)) from None
        finally:
            if it is not None:
                close_producer(it)
            cur.close()

    def _ingest(
        self,
        cur: Any,
        table: Table,
        it: Iterator[pa.RecordBatch],
        types: dict[str, str],
        source_errors: list[BaseException],
    ) -> tuple[int, int]:
        """Ingest the batches into the table (through a staging table where strings need a cast); (rows, bytes).
        An error of the source is kept whole in source_errors (ADBC would bury it in a traceback text)."""
        import pyarrow as pa

        first = next(it, None)
        if first is None:
            return 0, 0
        counted = [0, 0]
        # another engine's names may be longer than PostgreSQL keeps; ADBC matches them verbatim
        names = [pg_name(n) for n in first.schema.names]
        renamed = names != first.schema.names
        schema = pa.schema([f.with_name(n) for f, n in zip(first.schema, names, strict=True)])
        staged = [
            f.name
            for f in schema
            if (pa.types.is_string(f.type) or pa.types.is_large_string(f.type)) and types.get(f.name) != "text"
        ]

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                for b in chain([first], it):
                    counted[0] += b.num_rows
                    counted[1] += b.nbytes
                    yield b.rename_columns(names) if renamed else b
            except BaseException as exc:
                source_errors.append(exc)
                raise

        reader = pa.RecordBatchReader.from_batches(schema, batches())
        if staged:
            self._ingest_staged(cur, table, reader, staged, types)
        else:
            cur.adbc_ingest(pg_name(table.name), reader, mode="append", db_schema_name=pg_name(table.schema))
        return counted[0], counted[1]

    @staticmethod
    def _adbc_claim(cur: Any, rng: KeyRange, run_id: str) -> RangeWrite | None:
        """Lock the range's ledger row inside the write transaction; a range already done is not written."""
        cur.execute(CLAIM_SQL, [run_id, rng.range_id, rng.schema, rng.table, rng.kind])
        cur.execute(LOCK_SQL, [run_id, rng.range_id])
        row = cur.fetchone()
        if row is not None and is_done(row[0]):
            return RangeWrite(rows=int(row[1] or 0), bytes=int(row[2] or 0), fresh=False)
        return None

    @staticmethod
    def _ingest_staged(
        cur: Any, table: Table, reader: pa.RecordBatchReader, staged: list[str], types: dict[str, str]
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

    # -- raw binary COPY ----------------------------------------------------------------------------------
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
                await c.execute(CLAIM_SQL, options.run_id, rng.range_id, rng.schema, rng.table, rng.kind)
                row = await c.fetchrow(LOCK_SQL, options.run_id, rng.range_id)
                if row is not None and is_done(row["state"]):
                    close_producer(chunks)
                    return RangeWrite(rows=int(row["rows"] or 0), bytes=int(row["bytes"] or 0), fresh=False)
                freezing = await self._freezes(c, rng, options.run_id)
                if freezing:
                    await c.execute(f"TRUNCATE ONLY {qualified(table.schema, table.name)}")
                rows = await self._copy_in(c, table, source(), last_sent, freezing)
                await c.execute(DONE_SQL, options.run_id, rng.range_id, rows, nbytes, time.monotonic() - started)
                return RangeWrite(rows=rows, bytes=nbytes)

        return self.run(f"writing {table.qualified} range {rng.range_id} (raw COPY)", go)

    @staticmethod
    async def _freezes(c: Any, rng: KeyRange, run_id: str) -> bool:
        """Whether the range loads with TRUNCATE + COPY FREEZE: the whole table, or a lead range before any other
        range of its table is done."""
        if rng.kind == "full":
            return True
        if not rng.lead:
            return False
        return not await c.fetchval(OTHERS_DONE_SQL, run_id, rng.schema, rng.table, rng.range_id)

    async def _copy_in(
        self, c: Any, table: Table, source: AsyncIterator[memoryview], last_sent: list[float], freeze: bool
    ) -> int:
        """COPY FROM STDIN of `source` while _watch_copy looks after it; the rows the command tag counts."""
        copy = asyncio.ensure_future(
            c.copy_to_table(
                pg_name(table.name),
                source=source,
                columns=[pg_name(col.name) for col in table.copy_columns],
                schema_name=pg_name(table.schema),
                format="binary",
                freeze=freeze,
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
        return int(status.split()[-1])

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
                probe = await asyncio.wait_for(self.connect_async(None), _COPY_STALL_SECONDS)
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
