"""Progress of a run, fed with the run's events (ray_replicator.events) by its `on_event` callback.

Two independent outputs, because people and machines watch runs differently:
- on a terminal, a live `rich` table: one line per table (ranges done/total, rows, rows/s, ETA) and a total;
  nothing at all when stdout is not a TTY, so cron mails and CI logs only get the final report;
- with `--json-logs`, one JSON object per event on stderr (`{"ts": …, "event": name, …fields}`) for log
  shippers and schedulers, whatever stdout is.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table as RichTable
from rich.text import Text

from ray_replicator.events import (
    CopyStarted,
    Event,
    FinalizeStarted,
    PlanMade,
    RangeCopied,
    RangeStarted,
    RayStarted,
    RunDone,
    RunFailed,
    TableCopied,
    TableFinalized,
    VerifyStarted,
)

COLUMNS: list[tuple[str, Literal["left", "right"]]] = [
    ("table", "left"),
    ("ranges", "right"),
    ("rows", "right"),
    ("rows/s", "right"),
    ("ETA", "right"),
    ("", "left"),
]
"""The live table's columns; the last says what a table is doing."""

MAX_TABLE_LINES = 24
"""Beyond this many tables the display keeps the busy ones and sums up the rest, so it fits a screen."""


class Writable(Protocol):
    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


class CurrentStderr:
    """Writes to whatever sys.stderr is at the moment, so rich's Live can lift JSON lines above its table
    when stdout and stderr are the same terminal."""

    def write(self, text: str, /) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


@dataclass
class TableState:
    """One table's line in the live display."""

    table: str
    state: str = "waiting"
    ranges: int = 0
    estimated_rows: int = 0
    ranges_done: int = 0
    """Ranges committed, by this run or by the runs it resumes."""
    running: int = 0
    rows: int = 0
    rows_before: int = 0
    """Rows the runs this one resumes copied."""
    started: float | None = None
    finished: float | None = None

    def rate(self, now: float) -> float:
        if self.started is None or self.rows == 0:
            return 0.0
        return self.rows / max((self.finished or now) - self.started, 1e-6)

    def eta(self, now: float) -> float | None:
        """Seconds left, from the estimated rows (or the ranges when there is no estimate)."""
        if self.finished is not None:
            return 0.0
        if self.started is None or self.ranges_done == 0:
            return None
        elapsed = now - self.started
        left = self.estimated_rows - self.rows_before - self.rows
        if left > 0 and self.rows > 0:
            return left / (self.rows / max(elapsed, 1e-6))
        if self.ranges > self.ranges_done:
            return elapsed * (self.ranges - self.ranges_done) / self.ranges_done
        return None


def plain_console(stderr: bool = False) -> Console:
    """A console for stdout (or stderr) that writes no colour or style codes unless that stream is a terminal,
    whatever FORCE_COLOR says: cron mails, CI logs and log shippers get plain text."""
    stream = sys.stderr if stderr else sys.stdout
    isatty = getattr(stream, "isatty", None)
    try:
        terminal = bool(callable(isatty) and isatty())
    except (OSError, ValueError):
        terminal = False
    # force_terminal set either way: rich would otherwise take FORCE_COLOR or TTY_COMPATIBLE as a terminal, and
    # the live display would send its cursor codes into a pipe or a log file.
    return Console(
        stderr=stderr,
        soft_wrap=True,
        highlight=False,
        force_terminal=terminal,
        color_system="auto" if terminal else None,
    )


def _seconds(value: float | None) -> str:
    if value is None:
        return "–"
    value = max(0.0, value)
    if value < 60:
        return f"{value:.0f}s"
    if value < 3600:
        return f"{value // 60:.0f}m{value % 60:02.0f}s"
    return f"{value // 3600:.0f}h{value % 3600 // 60:02.0f}m"


class Progress:
    """Turns a run's events into a live terminal table and/or JSON lines; use as a context manager."""

    def __init__(
        self,
        console: Console | None = None,
        json_stream: Writable | None = None,
        live: bool | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.console = console or Console()
        self.json_stream = json_stream
        self.live_enabled = self.console.is_terminal if live is None else live
        self.clock = clock
        self.tables: dict[str, TableState] = {}
        self.phase = "starting"
        self.started = clock()
        self.copy_started: float | None = None
        self.copy_finished: float | None = None
        self.dashboard_url: str | None = None
        self.nodes = 0
        self._lock = threading.Lock()
        self._live: Live | None = None

    def __enter__(self) -> Progress:
        if self.live_enabled:
            self._live = Live(
                console=self.console,
                get_renderable=self.render,
                refresh_per_second=4,
                transient=False,
            )
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.refresh()
            self._live.stop()
            self._live = None

    def __call__(self, event: Event) -> None:
        """The on_event callback: record the event, then log it as JSON when asked."""
        with self._lock:  # finalize events come from the driver's finalize threads
            self._apply(event)
            if self.json_stream is not None:
                line = json.dumps({"ts": round(time.time(), 3), "event": event.name, **event.fields()}, default=str)
                self.json_stream.write(line + "\n")
                self.json_stream.flush()

    def fail(self, error: str) -> None:
        """Report a run that stopped with an error, unless the run already did (JSON consumers need an
        end event either way). `error` must already be scrubbed of secrets."""
        if self.phase != "failed":
            self(RunFailed(error=error))

    def _apply(self, event: Event) -> None:
        now = self.clock()
        match event:
            case PlanMade():
                self._planned(event)
            case RayStarted():
                self._ray_started(event)
            case CopyStarted():
                self.phase = "copy"
                self.copy_started = now
            case RangeStarted():
                state = self._table(event.table)
                state.started = state.started if state.started is not None else now
                state.running += 1
                state.state = "copying"
            case RangeCopied():
                self._range_copied(event, now)
            case TableCopied():
                state = self._table(event.table)
                state.finished = now
                state.state = "finalizing"
            case TableFinalized():
                self._table(event.table).state = "done"
            case FinalizeStarted() | VerifyStarted():
                self._copy_over(event.name, now)
            case RunDone():
                self.phase = event.status
                for state in self.tables.values():
                    state.state = "done" if state.finished is not None else state.state
            case RunFailed():
                self.phase = "failed"
                self.copy_finished = self.copy_finished or now

    def _table(self, name: str) -> TableState:
        return self.tables.setdefault(name, TableState(table=name))

    def _planned(self, event: PlanMade) -> None:
        for entry in event.per_table:
            state = TableState(
                table=entry.table,
                ranges=entry.ranges,
                estimated_rows=entry.estimated_rows,
                ranges_done=entry.resumed_ranges,
                rows_before=entry.resumed_rows,
            )
            if state.ranges and state.ranges_done >= state.ranges:
                state.state = "done earlier"
            self.tables[state.table] = state
        self.phase = "creating target tables, starting Ray"

    def _ray_started(self, event: RayStarted) -> None:
        self.phase = "starting copy tasks"
        self.dashboard_url = event.dashboard_url
        self.nodes = event.nodes
        if self.dashboard_url and not self.live_enabled:
            # Without the live table the URL still belongs in the job's log: one plain line.
            self.console.print(f"Ray dashboard: {self.dashboard_url}", markup=False, highlight=False)

    def _range_copied(self, event: RangeCopied, now: float) -> None:
        state = self._table(event.table)
        if state.started is None:
            # Without range_start events, the first range's own duration tells when the table started.
            state.started = now - event.seconds
        state.running = max(0, state.running - 1)
        state.ranges_done += 1
        state.ranges = max(state.ranges, state.ranges_done + event.left)
        state.rows += event.rows
        state.state = "copying"

    def _copy_over(self, phase: str, now: float) -> None:
        """Finalize or verify began: every range is in, and tables still finalizing are done with it."""
        self.phase = phase
        self.copy_finished = self.copy_finished or now
        for state in self.tables.values():
            if state.state == "finalizing":
                state.state = "done"

    def render(self) -> RenderableType:
        """The live table; safe to call from rich's refresh thread."""
        with self._lock:
            now = self.clock()
            grid = RichTable(box=None, pad_edge=False, show_edge=False, header_style="bold")
            for name, justify in COLUMNS:
                grid.add_column(name, justify=justify)
            states = list(self.tables.values())
            if not states:
                return Text(f"ray-replicator: reading the source catalog, {_seconds(now - self.started)} elapsed")
            shown = states
            if len(states) > MAX_TABLE_LINES:
                busy = [s for s in states if s.state in ("copying", "finalizing")]
                shown = busy[:MAX_TABLE_LINES]
            for s in shown:
                grid.add_row(
                    s.table,
                    f"{s.ranges_done}/{s.ranges}",
                    f"{s.rows_before + s.rows:,}",
                    f"{s.rate(now):,.0f}" if s.rows else "",
                    _seconds(s.eta(now)) if s.state == "copying" else "",
                    f"copying ({s.running} running)" if s.state == "copying" and s.running else s.state,
                )
            if len(shown) < len(states):
                done = sum(1 for s in states if s.state == "done")
                grid.add_row(f"… {len(states) - len(shown)} more ({done} done)", "", "", "", "", "")
            grid.add_row(*self._total_row(states, now), style="bold")
            header = Text(f"ray-replicator: {self.phase}, {_seconds(now - self.started)} elapsed")
            if self.nodes:
                header.append(f", {self.nodes} Ray node{'s' if self.nodes != 1 else ''}")
            parts: list[RenderableType] = [header, grid]
            if self.dashboard_url:
                parts.append(Text(f"Ray dashboard: {self.dashboard_url}", style="dim"))
            return Group(*parts)

    def _total_row(self, states: list[TableState], now: float) -> list[str]:
        ranges = sum(s.ranges for s in states)
        done = sum(s.ranges_done for s in states)
        rows = sum(s.rows for s in states)
        before = sum(s.rows_before for s in states)
        estimated = sum(max(s.estimated_rows - s.rows_before, s.rows) for s in states)
        end = self.copy_finished or now
        elapsed = end - self.copy_started if self.copy_started is not None else 0.0
        rate = rows / elapsed if elapsed > 0 and rows else 0.0
        eta: float | None = None
        if self.phase == "copy" and rate > 0:
            if estimated > rows:
                eta = (estimated - rows) / rate
            elif ranges > done and done:
                eta = elapsed * (ranges - done) / done
        left = _seconds(eta) if self.phase == "copy" else ""
        return ["total", f"{done}/{ranges}", f"{before + rows:,}", f"{rate:,.0f}" if rate else "", left, ""]


def progress_for_cli(json_logs: bool, console: Console) -> Progress:
    """The CLI's choice: live table only on a TTY, JSON lines on stderr only when asked."""
    return Progress(console=console, json_stream=CurrentStderr() if json_logs else None)
