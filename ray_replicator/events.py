"""What a run tells its watchers, one frozen dataclass per kind of event.

The run emits them through its `on_event` callback; `progress` draws them and writes them as JSON lines
(`{"ts": …, "event": <name>, …fields}`), so a field's name here is a key users' log parsers read: renaming one
breaks them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import Field, asdict, dataclass
from typing import Any, ClassVar, dataclass_transform


@dataclass_transform(frozen_default=True)
class Event:
    """Every kind of event is a frozen dataclass: made so here, once for all of them."""

    name: ClassVar[str]
    """The event's name in JSON logs (their "event" key)."""
    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        dataclass(frozen=True)(cls)

    def fields(self) -> dict[str, Any]:
        """The event's data as JSON logs carry it, nested events as objects."""
        return asdict(self)


@dataclass(frozen=True)
class TablePlan:
    """One table's share of the plan; resumed_*: what earlier runs of a resumed run already copied;
    schema_changes: how many ways the target table will differ from the source's (listed in the report)."""

    table: str
    ranges: int
    estimated_rows: int
    estimated_bytes: int
    resumed_ranges: int = 0
    resumed_rows: int = 0
    schema_changes: int = 0


class PlanMade(Event):
    name = "plan"
    run_id: str
    method: str
    tables: int
    ranges: int
    per_table: tuple[TablePlan, ...]


class RayStarted(Event):
    """Ray runs (it took SIGTERM over while it started); dashboard_url: None when the cluster has none."""

    name = "ray"
    nodes: int
    in_flight: int
    dashboard_url: str | None


class CopyStarted(Event):
    name = "copy"
    ranges: int
    in_flight: int
    resumed: int
    """Ranges earlier runs already copied."""


class RangeStarted(Event):
    name = "range_start"
    table: str
    range: str


class RangeCopied(Event):
    """node: the Ray node id that copied the range; left: the table's ranges still to copy; changed_values: values
    lossy opt-in policies changed in the range (per column in the report)."""

    name = "range"
    table: str
    range: str
    rows: int
    bytes: int
    seconds: float
    node: str
    left: int
    changed_values: int = 0


class TableCopied(Event):
    """Every range of the table is in; its keys, indexes and ANALYZE come next."""

    name = "table_done"
    table: str
    rows: int
    seconds: float


class TableFinalized(Event):
    name = "table_finalized"
    table: str
    seconds: float


class FinalizeStarted(Event):
    """The run-wide finalize (foreign keys, sequences) begins."""

    name = "finalize"
    tables: int
    step: str


class VerifyStarted(Event):
    name = "verify"
    tables: int
    ranges: int
    kind: str
    """counts or checksums."""


class RunDone(Event):
    """status: ok or verify failed; schema_changes, changed_values: the report's totals of what the run changed."""

    name = "done"
    status: str
    rows: int
    seconds: float
    schema_changes: int = 0
    changed_values: int = 0


class RunFailed(Event):
    """error: one line, already scrubbed of secrets."""

    name = "failed"
    error: str


OnEvent = Callable[[Event], None]


def failure_line(exc: BaseException) -> str:
    """What a one-line failure says: the exception's first line, or its class name when it has no message."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
