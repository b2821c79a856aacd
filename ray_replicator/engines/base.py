"""Source and Target interfaces: small, like Ray Data's Datasource/Datasink.

The driver plans with a Source, then each Ray task opens its own Source and Target from the endpoint URLs and
moves one KeyRange. Engines never import the pipeline; the pipeline never imports a concrete engine except
through `open_source`/`open_target` in engines/__init__.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from ray_replicator.catalog import Catalog, Table

if TYPE_CHECKING:
    import pyarrow as pa

RangeKind = Literal["key", "null", "physical", "full"]


@dataclass(frozen=True)
class KeyRange:
    """One unit of copy work: the rows of a table whose split key lies in [lower, upper).

    kind "key": lower inclusive / upper exclusive on `columns` (a row comparison for composite keys; None means
    unbounded on that side). kind "null": rows where any split column is NULL (only for nullable unique keys).
    kind "physical": an engine's physical locator range (PostgreSQL ctid pages [lower[0], upper[0])).
    kind "full": every row. Ranges of one table never overlap and together cover every row.
    """

    schema: str
    table: str
    index: int
    kind: RangeKind
    columns: tuple[str, ...] = ()
    lower: tuple[Any, ...] | None = None
    upper: tuple[Any, ...] | None = None
    estimated_rows: int = 0
    estimated_bytes: int = 0
    lead: bool = False
    """The first range of a table split only to keep the copy slots busy: it is loaded alone, with TRUNCATE + COPY
    FREEZE where the target can, and the table's other ranges start once it has committed."""

    @property
    def range_id(self) -> str:
        return f"{self.schema}.{self.table}#{self.index}"


@dataclass(frozen=True)
class WriteOptions:
    """How a target receives data; chosen once per run by the config."""

    existing: Literal["fail", "truncate", "drop"] = "fail"
    keys_before_load: bool = False
    unlogged: bool = False
    run_id: str = ""
    large_values_as_source: bool = False
    """Load a table whose source stores its large values uncompressed without compressing them."""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RangeWrite:
    """What a target reports after committing a range."""

    rows: int
    bytes: int
    fresh: bool = True
    """False when the ledger already had the range done and nothing was written (a retried task)."""


class EngineError(Exception):
    """An expected failure with a one-line message for the user (names table/column/value and what to do)."""

    exit_code = 1


class UsageError(EngineError):
    """Bad input from the user: config, URL, filters. Exit code 2."""

    exit_code = 2


class ConnectTimeoutError(EngineError, ConnectionError):
    """A server that did not complete a connection within connect_timeout: a ConnectionError, so a copy task
    retries it like a lost connection, with one message whatever the driver."""

    def __init__(self, host: str, port: int | str, seconds: float) -> None:
        super().__init__(
            f"connecting to {host}:{port} timed out after {seconds:g} s (connect_timeout_s); check that the server "
            "runs and answers on that host and port, or raise connect_timeout_s"
        )


def connect_timeout_of(query: str, default: float) -> float:
    """The connect_timeout option of a URL's query (seconds), else default."""
    from urllib.parse import parse_qsl

    for key, value in parse_qsl(query, keep_blank_values=True):
        if key.lower() == "connect_timeout":
            try:
                seconds = float(value)
            except ValueError:
                raise UsageError(f"URL option connect_timeout={value!r} is not a number of seconds") from None
            if seconds <= 0:
                raise UsageError(f"URL option connect_timeout={value!r} must be more than 0 seconds")
            return seconds
    return default


@runtime_checkable
class Source(Protocol):
    engine: str

    def table_names(self) -> tuple[str, list[tuple[str, str]]]:
        """The database's name and every user table as (schema, name), read from the catalog's table list only."""
        ...

    def catalog(self, include: list[str], exclude: list[str]) -> Catalog:
        """Columns, keys, indexes and estimates of the tables that the globs leave (catalog.chosen_by); no other
        table's details are read, so a table left out never fails the run."""
        ...

    def split_boundaries(self, table: Table, parts: int) -> list[tuple[Any, ...]]:
        """Up to parts-1 distinct key tuples, ascending in the database's own sort order, cutting the table's
        non-NULL split keys into about equal row counts."""
        ...

    def has_null_keys(self, table: Table) -> bool: ...

    def physical_pages(self, table: Table) -> int:
        """Pages for physical ranges, or 0 when the engine cannot split a keyless table physically."""
        ...

    def read_range(
        self, table: Table, rng: KeyRange, batch_rows: int, batch_bytes: int
    ) -> Iterator[pa.RecordBatch]: ...

    def count_range(self, table: Table, rng: KeyRange) -> int: ...

    def close(self) -> None: ...


@runtime_checkable
class Target(Protocol):
    engine: str

    def prepare(self, catalog: Catalog, source_engine: str, options: WriteOptions) -> None:
        """Create schemas and tables (exact types, NOT NULLs; keys too when keys_before_load)."""
        ...

    def write_range(
        self, table: Table, rng: KeyRange, batches: Iterable[pa.RecordBatch], options: WriteOptions
    ) -> RangeWrite:
        """Write one range so that a retry cannot duplicate it (rows and the ledger's done mark commit
        together, or the range is cleared first)."""
        ...

    def finalize_table(self, table: Table, source_engine: str, options: WriteOptions) -> None:
        """Keys, indexes, identity alignment, LOGGED, ANALYZE for one table once all its ranges are done."""
        ...

    def finalize(self, catalog: Catalog, source_engine: str, options: WriteOptions) -> None:
        """Foreign keys and free-standing sequences, once every table is done."""
        ...

    def count_range(self, table: Table, rng: KeyRange) -> int: ...

    def close(self) -> None: ...

    def ledger_init(self, run_id: str, plan_hash: str, schema_hash: str, ranges: list[KeyRange]) -> None:
        """Create the ledger (schema `_ray_replicator` in the target) if missing and record a run's ranges
        as 'planned' (ranges already recorded for this run_id are left as they are)."""
        ...

    def ledger_runs(self) -> list[dict[str, Any]]:
        """Every run recorded: run_id, plan_hash, schema_hash, state, started_at, finished_at (newest first)."""
        ...

    def ledger_ranges(self, run_id: str) -> dict[str, dict[str, Any]]:
        """range_id -> {state, rows, bytes, seconds, node, error} for a run."""
        ...

    def ledger_mark(self, run_id: str, range_ids: list[str], state: str, **info: Any) -> None:
        """Set ranges' state ('planned', 'copying', 'done', 'verified', 'failed') with optional info."""
        ...

    def ledger_finish(self, run_id: str, state: str) -> None: ...
