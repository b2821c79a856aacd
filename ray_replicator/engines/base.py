"""The engine contract: what an engine can do (Capabilities) and the calls the stages make (Source, Target,
LedgerStore), like Ray Data's Datasource/Datasink and dlt's destination capabilities.

The driver plans with a Source, then each Ray task opens its own Source and Target from the endpoint URLs and
moves one KeyRange. The stages ask an engine's Capabilities what it can do, never its name and never `getattr`;
an engine says which of its failures are worth another try (`is_transient`) and raises TransientEngineError for
them. Engines never import the stages; the stages import no engine module but this one and the registry
(engines/__init__.py).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, Self

from ray_replicator.catalog import Catalog, Table
from ray_replicator.errors import hint_for
from ray_replicator.record import SchemaChange, ValueChanges

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
    collation: Literal["binary", "ci"] = "binary"
    """What a target that compares text by exact characters makes of a case-insensitive source collation (the
    collation setting): binary keeps its own, ci creates a case-insensitive one for those columns."""
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


class TransientEngineError(EngineError, ConnectionError):
    """A lost connection, a server restarting, a deadlock victim: another try may succeed. A ConnectionError, so a
    copy task is tried again (the write path clears what a failed attempt may have left), and still an EngineError
    with a one-line message."""


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


@dataclass(frozen=True)
class Carries:
    """Value classes a target stores exactly: the plan refuses a source policy that would hand it one it cannot
    hold (preflight.POLICY_RULES), and a writer that cannot carry one is declared so here, not found out by a
    changed value."""

    nul_in_text: bool = True
    """U+0000 inside a text value (PostgreSQL text cannot hold it)."""
    hundred_ns: bool = True
    """A seventh fractional-second digit (100 ns) in timestamps and times (PostgreSQL keeps microseconds)."""
    empty_binary: bool = True
    """An empty binary value, distinct from NULL."""
    sql_variant: bool = True
    """A SQL Server sql_variant value with its base type (sql_variant = keep)."""


@dataclass(frozen=True)
class Capabilities:
    """What an engine can do, declared once per engine and read by the stages before any connection is made."""

    name: str
    """The engine's name in reports and messages ("postgres", "mssql"); never a branch in the stages."""
    title: str
    """How messages name the engine ("PostgreSQL", "SQL Server")."""
    default_port: int
    """The TCP port a URL without one connects to."""
    raw_format: str | None = None
    """A byte stream the engine reads and writes without decoding rows (PostgreSQL's binary COPY). A copy between a
    source and a target with the same raw_format relays bytes: read_range_raw / write_range_raw."""
    raw_chunks_held: int = 2
    """Chunks read_range_raw holds besides what its consumer took (the byte budget counts them)."""
    digest_family: str | None = None
    """Endpoints of one family hash a range's rows in the database (hash_probe tells whether two servers hash
    alike); verify then moves three numbers per range instead of the rows."""
    physical_ranges: bool = False
    """The source can cut a keyless table by physical location (physical_pages > 0)."""
    refills_ranges_by_predicate: bool = False
    """A target that clears a retried range with the range's own predicate, evaluated by the target: then a keyless
    table is one range, and a key from another engine is split only where both engines order it alike."""
    read_policies: tuple[str, ...] = ()
    """URL options that decide how values are read (e.g. SQL Server's hundred_ns, nul, sql_variant): verify reads a
    target of the same engine with the source's, so values the copy kept are read back as kept."""
    transient_errors: str = ""
    """A regular expression (case-insensitive) for how the engine's drivers word a lost, refused or timed-out
    connection, a server restarting or a deadlock victim: failures another try may get past."""
    text_for_other_types: bool = False
    """As a source, reads a column of a type outside the logical model (kind "other") as its text form: copied as
    is into the same engine, as text into another with unsupported_types = text."""
    text_type: str = "text"
    """The type a column carried as text gets in this engine (sql_variant = text, unsupported_types = text)."""
    carries: Carries = Carries()
    """What the engine's tables store exactly, as a target."""
    writer_option: str = ""
    """The target URL option that picks a writer ('' when the engine has one way to write)."""
    writers: tuple[tuple[str, Carries], ...] = ()
    """Every writer (the values of writer_option) and what it carries."""

    def carries_for(self, url_options: dict[str, str]) -> tuple[Carries, str]:
        """What a target with these URL options carries, and the writer that decides it ('' for the engine's)."""
        writer = url_options.get(self.writer_option, "") if self.writer_option else ""
        return dict(self.writers).get(writer, self.carries), writer


_LOST_CONNECTION = re.compile(
    r"connection refused|connection reset|broken pipe|connection timed out|no route to host|network is unreachable",
    re.IGNORECASE,
)


def is_transient(exc: BaseException, engines: Iterable[Capabilities] = ()) -> bool:
    """Whether another try after a wait may get past `exc`: a ConnectionError or TimeoutError (TransientEngineError
    and the copy's TransientError are), the operating system's words for a lost connection, or the words of the
    given engines' drivers (Capabilities.transient_errors)."""
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    text = str(exc)
    if _LOST_CONNECTION.search(text):
        return True
    return any(e.transient_errors and re.search(e.transient_errors, text, re.IGNORECASE) for e in engines)


class Endpoint(ABC):
    """What source and target share: the engine's capabilities, failure classification, driver errors as one line,
    closing (also as a context manager)."""

    capabilities: ClassVar[Capabilities]
    display: str
    """The endpoint as messages name it: its URL without secrets."""

    @property
    def engine(self) -> str:
        return self.capabilities.name

    def is_transient(self, exc: BaseException) -> bool:
        """Whether another try after a wait may get past `exc` (see is_transient)."""
        return is_transient(exc, (self.capabilities,))

    def driver_error(
        self, what: str, exc: BaseException, words: str, hint: str = "", transient: bool = False
    ) -> EngineError:
        """The one line a driver's failure of step `what` becomes: the step, this endpoint, the driver's words
        (already without secrets) and what to do about it (errors.hint_for); a transient one says it is retried."""
        line = f"{what} on {self.display}: {words}"
        if transient:
            return TransientEngineError(line + "; retried with a fresh connection")
        hint = hint_for(exc, hint)
        return EngineError(line + (f"; {hint}" if hint else ""))

    def stored_name(self, name: str) -> str:
        """The identifier this engine stores for `name` (PostgreSQL maps names over 63 bytes by a documented rule).
        The stages keep the source's names; the engine maps them when it quotes, and a stage that reads the
        engine's own catalog maps a name first to find it there."""
        return name

    def abort(self) -> None:
        """Cut the connections now, from any thread, without a graceful goodbye: a failed or stalled task's
        transaction must end on the server at once (it holds the range's ledger row). Then close()."""
        self.close()

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Source(Endpoint):
    @classmethod
    def url_for_target(cls, url: str, target: Capabilities) -> str:
        """The URL copy tasks read this source with for `target`: read policies left to the target resolved."""
        return url

    @abstractmethod
    def table_names(self) -> tuple[str, list[tuple[str, str]]]:
        """The database's name and every user table as (schema, name), read from the catalog's table list only."""

    @abstractmethod
    def catalog(self, include: list[str], exclude: list[str]) -> Catalog:
        """Columns, keys, indexes and estimates of the tables that the globs leave (catalog.chosen_by); no other
        table's details are read, so a table left out never fails the run."""

    @abstractmethod
    def split_boundaries(self, table: Table, parts: int) -> list[tuple[Any, ...]]:
        """Up to parts-1 distinct key tuples, ascending in the database's own sort order, cutting the table's
        non-NULL split keys into about equal row counts."""

    @abstractmethod
    def range_boundaries(self, table: Table, rng: KeyRange, parts: int) -> list[tuple[Any, ...]]:
        """The same within one key range (verify bisects a mismatched range with it)."""

    @abstractmethod
    def has_null_keys(self, table: Table) -> bool: ...

    def physical_pages(self, table: Table) -> int:
        """Pages for physical ranges, or 0 when the engine cannot split a keyless table physically."""
        return 0

    @abstractmethod
    def read_range(
        self, table: Table, rng: KeyRange, batch_rows: int, batch_bytes: int
    ) -> Iterator[pa.RecordBatch]: ...

    def read_range_raw(
        self, table: Table, rng: KeyRange, chunk_bytes: int, stats: dict[str, int] | None = None
    ) -> Iterator[bytearray]:
        """The range in the engine's raw_format, in chunks of about chunk_bytes; stats["rows"] set at the end."""
        raise NotImplementedError(f"{self.engine} has no raw format")

    @abstractmethod
    def count_range(self, table: Table, rng: KeyRange) -> int: ...

    def value_changes(self, rng: KeyRange) -> list[ValueChanges]:
        """The values a lossy opt-in policy changed in this source's last complete read of `rng` (counts and
        first keys), handed over once: the run report counts them. A source without such policies has none."""
        return []

    def hash_probe(self) -> tuple[str, int]:
        """What identifies this server's row hash (digest_family engines): equal probes hash alike."""
        raise NotImplementedError(f"{self.engine} computes no digest in the database")

    def range_digest(self, table: Table, rng: KeyRange, columns: list[str]) -> tuple[int, int, int]:
        """(rows, sum, xor) of the range's row hashes, computed by the database (digest_family engines)."""
        raise NotImplementedError(f"{self.engine} computes no digest in the database")


class LedgerStore(Protocol):
    """The run's state, kept in the target (schema `_ray_replicator`): runs, their ranges, their plans."""

    def init(self, run_id: str, plan_hash: str, schema_hash: str, ranges: list[KeyRange]) -> None:
        """Create the ledger if missing and record a run's ranges as 'planned' (ranges already recorded for this
        run_id are left as they are)."""
        ...

    def runs(self) -> list[dict[str, Any]]:
        """Every run recorded: run_id, plan_hash, schema_hash, state, started_at, finished_at (newest first)."""
        ...

    def ranges(self, run_id: str) -> dict[str, dict[str, Any]]:
        """range_id -> {state, rows, bytes, seconds, node, error} for a run."""
        ...

    def mark(self, run_id: str, range_ids: list[str], state: str, **info: Any) -> None:
        """Set ranges' state ('planned', 'copying', 'done', 'verified', 'failed') with optional info."""
        ...

    def finish(self, run_id: str, state: str) -> None: ...

    def save_plan(self, run_id: str, plan_json: str) -> None:
        """Keep the run's plan document, so --resume copies exactly the ranges it planned."""
        ...

    def load_plan(self, run_id: str) -> str | None: ...

    def claim_copying(self, run_id: str, range_id: str, node: str) -> None:
        """Mark a range 'copying' by this worker (node:pid) unless it is already done."""
        ...

    def save_value_changes(self, run_id: str, range_id: str, changes_json: str) -> None:
        """Keep what a lossy policy changed in a range (record.value_changes_json), written before the range's
        done mark commits and replaced by a retry, so a done range's changes are always on record."""
        ...

    def value_changes(self, run_id: str) -> dict[str, str]:
        """range_id -> the changes saved for it (JSON), for the ranges that have any."""
        ...


class Target(Endpoint):
    def schema_changes(self, catalog: Catalog, source_engine: str, options: WriteOptions) -> list[SchemaChange]:
        """Every way the tables prepare() would create differ from the source's (record.SchemaChange), decided
        without writing: `plan` lists them and the run report keeps them. An engine that creates exact copies
        returns none."""
        return []

    def write_notes(self, tables: list[Table]) -> list[str]:
        """One line per table this target will write another way than its URL asks, because that writer cannot
        carry a value class the table may hold (Capabilities.writers): the run lists them with its warnings."""
        return []

    @abstractmethod
    def prepare(self, catalog: Catalog, source_engine: str, options: WriteOptions) -> None:
        """Create schemas and tables (exact types, NOT NULLs; keys too when keys_before_load)."""

    @abstractmethod
    def write_range(
        self, table: Table, rng: KeyRange, batches: Iterable[pa.RecordBatch], options: WriteOptions
    ) -> RangeWrite:
        """Write one range so that a retry cannot duplicate it (rows and the ledger's done mark commit
        together, or the range is cleared first)."""

    def write_range_raw(
        self, table: Table, rng: KeyRange, chunks: Iterable[bytes | bytearray], options: WriteOptions
    ) -> RangeWrite:
        """write_range for chunks in the engine's raw_format."""
        raise NotImplementedError(f"{self.engine} has no raw format")

    @abstractmethod
    def finalize_table(self, table: Table, source_engine: str, options: WriteOptions) -> None:
        """Keys, indexes, identity alignment, LOGGED, ANALYZE for one table once all its ranges are done."""

    @abstractmethod
    def finalize(self, catalog: Catalog, source_engine: str, options: WriteOptions) -> None:
        """Foreign keys and free-standing sequences, once every table is done."""

    @abstractmethod
    def count_range(self, table: Table, rng: KeyRange) -> int: ...

    @property
    @abstractmethod
    def ledger(self) -> LedgerStore: ...
