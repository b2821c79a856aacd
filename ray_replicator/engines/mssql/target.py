"""Writing into SQL Server: one range at a time, exactly once, through one of three writers.

``writer=bulkcopy`` (write_bulk.py), ``bulk-insert`` (write_files.py) or ``insert`` (write_insert.py); tables with
datetimeoffset go through INSERT whatever the URL says. Exactly-once is delete-then-load: a range is deleted before
loading only when the ledger shows an earlier attempt, so a first attempt pays nothing (no staging copy, no switch).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pyarrow as pa

from ray_replicator.catalog import Catalog, Column, Table
from ray_replicator.engines.base import (
    Carries,
    EngineError,
    KeyRange,
    LedgerStore,
    RangeWrite,
    Target,
    UsageError,
    WriteOptions,
)
from ray_replicator.engines.mssql.catalog import declared
from ray_replicator.engines.mssql.changes import refuse_untakeable, schema_changes
from ray_replicator.engines.mssql.connect import CAPABILITIES, close_quietly
from ray_replicator.engines.mssql.ddl import MssqlDdl
from ray_replicator.engines.mssql.incoming import exact_for_sql_server
from ray_replicator.engines.mssql.ledger import MssqlLedger
from ray_replicator.engines.mssql.sql import n_literal, qualified, quote_ident, range_predicate
from ray_replicator.engines.mssql.temporal import refuse_outside_sql_server
from ray_replicator.engines.mssql.types import base_name, native_type
from ray_replicator.engines.mssql.write_bulk import IdentitySums, bulkcopy
from ray_replicator.engines.mssql.write_files import bulk_insert
from ray_replicator.engines.mssql.write_insert import insert
from ray_replicator.record import SchemaChange


@dataclass(frozen=True)
class _Attempt:
    """One try at writing a range: what it is called in messages, whether an earlier try may have left rows
    (retry), and the statement that marks it done (computed when the rows are in)."""

    table: Table
    rng: KeyRange
    run_id: str
    retry: bool
    what: str
    done: Callable[[], str]


class _Counter:
    """Counts rows and bytes of the batches that pass through."""

    def __init__(self) -> None:
        self.rows = 0
        self.bytes = 0
        self.refusal: EngineError | None = None
        """A refusal raised while a driver pulled the batches (the bulk copy's driver wraps it in its own error)."""

    def wrap(self, it: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        try:
            for b in it:
                self.rows += b.num_rows
                self.bytes += b.nbytes
                yield b
        except EngineError as exc:
            self.refusal = exc
            raise


def _may_be_empty_binary(column: Column) -> bool:
    """A variable-length binary column (varbinary, image, CLR types, PostgreSQL bytea): binary(n) and rowversion
    values always have their full length."""
    return column.logical.kind == "binary" and not column.logical.fixed


_NOT_BULK_COPIED = ("datetimeoffset", "geography", "geometry", "hierarchyid")
"""Column types mssql-python's Arrow bulk copy does not write ("Cannot map Arrow column ... to SQL column ...
(Udt)" for the CLR types, measured against the stand-in's UDT metadata, which is SQL Server's)."""


def _kept_variants(table: Table) -> list[str]:
    """The sql_variant columns copied with their base types (sql_variant = keep): only INSERT can make those."""
    return [c.name for c in table.copy_columns if c.logical.kind == "variant"]


def _empty_binary_possible(table: Table) -> bool:
    return any(_may_be_empty_binary(c) for c in table.copy_columns)


def _write_hint(text: str) -> str:
    if "2627" in text or "2601" in text or "duplicate key" in text.lower():
        return "a key value arrived twice: compare source and target keys"
    if "515" in text or "NULL into column" in text:
        return "a NULL arrived for a NOT NULL column"
    if "8152" in text or "2628" in text or "truncated" in text.lower():
        return "a value is longer than the target column allows"
    if "4861" in text or "4860" in text or "Cannot bulk load" in text:
        return "the server cannot open the CSV file: server_bulk_dir must be bulk_dir as the server sees it"
    return ""


class MssqlTarget(MssqlDdl, Target):
    """Writes into SQL Server: DDL with exact types, three write strategies, keys after load, the ledger."""

    control_driver = "mssql-python"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._tx: Any = None
        self._identity_checked: set[str] = set()
        self._typed: dict[tuple[str, str, tuple[tuple[str, str], ...]], Table] = {}
        self._ledger = MssqlLedger(self)

    @property
    def ledger(self) -> LedgerStore:
        return self._ledger

    def _txconn(self) -> Any:
        """A second connection with autocommit off, for writes that commit with their ledger mark."""
        if self._tx is None:
            self._tx = self._connect(autocommit=False)
        return self._tx

    def close(self) -> None:
        close_quietly(self._tx)
        self._tx = None
        super().close()

    def schema_changes(self, catalog: Catalog, source_engine: str, options: WriteOptions) -> list[SchemaChange]:
        return schema_changes(catalog, source_engine)

    def prepare(self, catalog: Catalog, source_engine: str, options: WriteOptions) -> None:
        refuse_untakeable(catalog)
        self._ledger.ensure()
        for schema in sorted({t.schema for t in catalog.tables}):
            self.ensure_schema(schema)
        for table in catalog.tables:
            self.prepare_table(table, source_engine, options)

    # -- writes -------------------------------------------------------------------------------------------
    def write_range(
        self, table: Table, rng: KeyRange, batches: Iterable[pa.RecordBatch], options: WriteOptions
    ) -> RangeWrite:
        """Exactly once: the range is deleted before loading whenever an earlier attempt may have written it.

        insert and bulk-insert load inside one transaction with the ledger's done mark; bulkcopy runs on the
        driver's own connection, so it marks the range 'copying' first and a retry deletes what it left.
        """
        started = time.monotonic()
        what = f"writing {table.qualified} range {rng.range_id}"
        state = self._ledger.claim(options.run_id, rng, what)
        if state in ("done", "verified"):
            got = self._ledger.ranges(options.run_id).get(rng.range_id, {})
            return RangeWrite(rows=int(got.get("rows") or 0), bytes=int(got.get("bytes") or 0), fresh=False)
        counter = _Counter()
        counted = counter.wrap(exact_for_sql_server(table, refuse_outside_sql_server(table, batches)))
        retry = state != "planned"

        def done() -> str:
            seconds = time.monotonic() - started
            return self._ledger.done_sql(options.run_id, rng.range_id, counter.rows, counter.bytes, seconds)

        attempt = _Attempt(table, rng, options.run_id, retry, what, done)
        try:
            if self._writer_for(table) == "bulkcopy":
                self._write_bulkcopy(attempt, counted)
            else:
                self._write_in_transaction(attempt, counted)
        except EngineError:
            raise
        except Exception as exc:
            self._tx = None
            if counter.refusal is not None:
                raise counter.refusal from None
            raise self._error(what, exc, _write_hint(str(exc))) from None
        return RangeWrite(rows=counter.rows, bytes=counter.bytes)

    def _write_bulkcopy(self, a: _Attempt, batches: Iterator[pa.RecordBatch]) -> None:
        """Mark the range 'copying' (a retry then clears it), bulk load on the driver's own transaction, check the
        identity values, mark it done."""
        self._ledger.set_state(a.run_id, a.rng.range_id, "copying", a.what)
        if a.retry:
            self.execute(a.what, self._clear_sql(a.table, a.rng))
        sums = IdentitySums(a.table)
        bulkcopy(self.control(), a.table, sums.wrap(batches))
        self._check_identity_kept(a.table, a.rng, sums, a.what)
        self.execute(a.what, a.done())

    def _write_in_transaction(self, a: _Attempt, batches: Iterator[pa.RecordBatch]) -> None:
        """Lock the range's ledger row, clear a retried range, load, and commit the rows with the done mark."""
        conn = self._txconn()
        cur = conn.cursor()
        try:
            cur.execute(self._ledger.lock_sql(a.run_id, a.rng.range_id))
            cur.fetchall()
            if a.retry:
                cur.execute(self._clear_sql(a.table, a.rng))
            if self._writer_for(a.table) == "insert":
                insert(cur, a.table, batches)
            else:
                bulk_insert(cur, self.u, a.table, batches)
            cur.execute(a.done())
            conn.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                conn.rollback()
            raise
        finally:
            close_quietly(cur)

    def _clear_sql(self, table: Table, rng: KeyRange) -> str:
        """Deletes what an earlier attempt at the range may have left. The planner gives a SQL Server target only
        ranges it can select again (plan_catalog): whole tables, and key ranges of keys ordered here as at the
        source. A physical range can only come from a plan stored by an older version, and SQL Server cannot tell
        its rows apart."""
        if rng.kind == "physical":
            raise UsageError(
                f"{table.qualified}: range {rng.range_id} was begun by an earlier attempt, and SQL Server cannot tell "
                "its rows from the other ranges' of a table without a key; run without --resume and with "
                "existing = drop"
            )
        return f"DELETE FROM {qualified(table.schema, table.name)} WHERE {self._predicate(table, rng)}"

    def _predicate(self, table: Table, rng: KeyRange) -> str:
        """The range's rows in this database: its bounds cast to the key columns' types as declared here. The
        catalog's native types are the source's (uuid, boolean, timestamp with time zone from PostgreSQL), which
        are no T-SQL type names."""
        if rng.kind != "key":
            return range_predicate(table, rng)
        return range_predicate(self._typed_here(table, rng.columns or table.split_key), rng)

    def _typed_here(self, table: Table, columns: tuple[str, ...]) -> Table:
        key = (table.schema, table.name, tuple((c.name, c.native_type) for c in table.columns))
        if key not in self._typed:
            names = ("name", "type_name", "is_user_defined", "base_type", "max_length", "precision", "scale")
            rows = self.query(
                f"reading the column types of {table.qualified}",
                "SELECT c.name, ty.name, ty.is_user_defined, TYPE_NAME(ty.system_type_id), c.max_length, "
                "c.precision, c.scale FROM sys.columns c JOIN sys.types ty ON ty.user_type_id = c.user_type_id "
                f"WHERE c.object_id = OBJECT_ID({n_literal(qualified(table.schema, table.name))})",
            )
            here = {str(r[0]): native_type(declared(dict(zip(names, r, strict=True)))) for r in rows}
            missing = [c for c in columns if c not in here]
            if missing:
                raise EngineError(f"target table {table.qualified} has no column {', '.join(missing)}")
            self._typed[key] = replace(
                table, columns=[replace(c, native_type=here.get(c.name, c.native_type)) for c in table.columns]
            )
        return self._typed[key]

    def count_range(self, table: Table, rng: KeyRange) -> int:
        sql = f"SELECT COUNT_BIG(*) FROM {qualified(table.schema, table.name)} WHERE {self._predicate(table, rng)}"
        return int(self.query_value(f"counting {table.qualified} range {rng.range_id}", sql) or 0)

    def _writer_for(self, table: Table) -> str:
        """The URL's writer, except where it cannot carry a value class the table may hold (a BULK INSERT file
        loads an empty varbinary as NULL: such tables go through the bulk copy, see write_notes), and that
        datetimeoffset from SQL Server travels as text (instant and offset), and geography/geometry/hierarchyid
        columns are CLR types, neither of which the bulk copy's Arrow writer takes: such tables go through INSERT,
        exactly. So do tables with sql_variant columns kept with their base types (sql_variant = keep): only an
        INSERT of CAST(... AS sql_variant) makes a value of a chosen base type."""
        writer = self.u.writer
        if _kept_variants(table):
            return "insert"
        if _empty_binary_possible(table) and not self._carries(writer).empty_binary:
            writer = "bulkcopy"
        if writer == "bulkcopy" and any(base_name(c.native_type) in _NOT_BULK_COPIED for c in table.columns):
            return "insert"
        return writer

    @staticmethod
    def _carries(writer: str) -> Carries:
        return CAPABILITIES.carries_for({CAPABILITIES.writer_option: writer})[0]

    def write_notes(self, tables: list[Table]) -> list[str]:
        """Tables the URL's writer cannot carry exactly, and the writer that writes them instead."""
        notes = []
        for table in tables:
            writer = self._writer_for(table)
            if writer != self.u.writer and (variants := _kept_variants(table)):
                notes.append(
                    f"{table.qualified}: written with writer=insert, not writer={self.u.writer}: only INSERT makes "
                    f"each sql_variant value with its base type (sql_variant = keep), and {', '.join(variants)} "
                    "hold them"
                )
            elif (
                writer != self.u.writer
                and _empty_binary_possible(table)
                and not self._carries(self.u.writer).empty_binary
            ):
                columns = ", ".join(c.name for c in table.copy_columns if _may_be_empty_binary(c))
                notes.append(
                    f"{table.qualified}: written with writer={writer}, not writer={self.u.writer}: a BULK INSERT "
                    f"file loads an empty binary value as NULL, and {columns} may hold one"
                )
        return notes

    def _check_identity_kept(self, table: Table, rng: KeyRange, sums: IdentitySums, what: str) -> None:
        """Once per table and process: the identity values the bulk load sent are the ones stored. A client or
        server that renumbers them would otherwise pass a count check silently."""
        if sums.column is None or sums.rows == 0 or table.qualified in self._identity_checked:
            return
        col = quote_ident(sums.column)
        got = self.query(
            what,
            f"SELECT COUNT_BIG(*), SUM(CAST({col} AS decimal(38, 0))) FROM {qualified(table.schema, table.name)} "
            f"WHERE {self._predicate(table, rng)}",
        )[0]
        if int(got[0] or 0) != sums.rows or int(got[1] or 0) != sums.total:
            raise EngineError(
                f"{table.qualified}.{sums.column}: the bulk load did not keep the identity values it was sent "
                f"({sums.rows} rows summing to {sums.total}, stored {got[0]} rows summing to {got[1]}); "
                "use writer=insert or writer=bulk-insert for this target"
            )
        self._identity_checked.add(table.qualified)
