"""What one run knows, filled in stage by stage, and how the ledger hears of its end."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any

from ray_replicator import diagnostics
from ray_replicator.catalog import Catalog, Table
from ray_replicator.config import Settings
from ray_replicator.engines import open_target
from ray_replicator.engines.base import Source, Target, WriteOptions
from ray_replicator.ledger import Resume
from ray_replicator.plan import Plan
from ray_replicator.record import SchemaChange, ValueChanges
from ray_replicator.redact import scrub, url_secrets
from ray_replicator.report import RunReport, TableReport
from ray_replicator.verify import TableCheck

TableKey = tuple[str, str]
"""A source table's (schema, name)."""


@dataclass
class LedgerRun:
    """The run as the ledger knows it, once it does: how the run ended is noted there whatever stops it."""

    target_url: str | None = None
    run_id: str | None = None

    def note(self, state: str) -> None:
        if self.target_url is not None and self.run_id is not None:
            _note_in_ledger(self.target_url, self.run_id, state)
            self.run_id = None


@contextlib.contextmanager
def fresh_target(target_url: str) -> Iterator[Target]:
    """A target connection of its own, for one step the driver may try again; closed however the step ends."""
    target = open_target(target_url)
    try:
        yield target
    finally:
        with contextlib.suppress(Exception):
            target.close()


def _note_in_ledger(target_url: str, run_id: str, state: str) -> None:
    """Record how a run ended on a fresh connection (the run's own may be mid-statement after Ctrl-C)."""
    try:
        with fresh_target(target_url) as target:
            target.ledger.finish(run_id, state)
    except Exception as exc:  # noqa: BLE001 - the run's own error matters more than this note
        reason = scrub(str(exc), url_secrets(target_url))
        diagnostics.log.warning("could not record state %s of run %s in the ledger: %s", state, run_id, reason)


@dataclass
class TableProgress:
    """One table's way through the copy stage."""

    report: TableReport
    remaining: int
    started: float | None = None
    finished: float | None = None
    source_rows: int = 0
    counted: bool = True
    """Every range was written in this run by a reader that counted its rows (else verify recounts)."""
    range_mismatches: list[str] = field(default_factory=list)
    finalized: Future[None] | None = None
    target_rows: int | None = None
    """The target table's count after finalize (verify = counts)."""
    checked: TableCheck | None = None
    """The table's checksums, taken by the servers right after finalize (verify = checksums)."""
    value_changes: dict[str, list[ValueChanges]] = field(default_factory=dict)
    """What lossy policies changed, by range done (resumed ranges' from the ledger); merged in key order."""


@dataclass(repr=False, eq=False)
class RunState:
    """Everything a run knows. The fields without a default are set by the stage named in their comment, and
    read only by the stages after it (so no repr or eq, which would read them all)."""

    settings: Settings
    run_id: str
    """Until the plan stage: the new run's id; a resumed run continues the id of the run it resumes."""
    ledger: LedgerRun = field(default_factory=LedgerRun)
    started: float = field(default_factory=time.perf_counter)
    phases: dict[str, float] = field(default_factory=dict)
    """Seconds per phase, in the order they ran, for the report."""
    source_url: str = field(init=False)  # resolved by Run.execute (passwords from files or the environment)
    target_url: str = field(init=False)  # resolved by Run.execute
    source: Source = field(init=False)  # opened by Run.execute
    target: Target = field(init=False)  # opened by Run.execute
    catalog: Catalog = field(init=False)  # catalog: the chosen tables, types mapped for the target
    mapped: dict[TableKey, Table] = field(init=False)  # catalog: each table's target-side twin
    excluded: list[str] = field(default_factory=list)  # catalog: tables the filters left out
    warnings: list[str] = field(default_factory=list)  # catalog: what is not a schema change (writer fallbacks)
    plan: Plan = field(init=False)  # plan
    resumed: Resume | None = None  # plan: the earlier run this one continues
    resumed_changes: dict[str, list[ValueChanges]] = field(default_factory=dict)  # plan: done ranges' changes
    schema_changes: list[SchemaChange] = field(default_factory=list)  # plan: how target tables differ
    target_touched: bool = False  # prepare: the target may have changed (tables created, the run recorded)
    method: str = field(init=False)  # plan: raw or arrow
    report: RunReport = field(init=False)  # plan, completed by every later stage
    options: WriteOptions = field(init=False)  # plan
    in_flight: int = 0  # prepare: copy tasks at once, once Ray runs
    tables: dict[TableKey, TableProgress] = field(default_factory=dict)  # copy

    @property
    def done_before(self) -> dict[str, dict[str, Any]]:
        """Ranges earlier runs committed (a resumed run), by range id."""
        return self.resumed.done if self.resumed is not None else {}

    @property
    def target_catalog(self) -> Catalog:
        return replace(self.catalog, tables=list(self.mapped.values()))
