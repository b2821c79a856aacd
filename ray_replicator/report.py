"""The run report: what moved, how fast, what was checked, what the run changed on the way (record.py) and, for
a run that failed, how far each table got and what to do next — as a terminal table, JSON and markdown."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.table import Table as RichTable

from ray_replicator.record import SchemaChange, ValueChanges

COLUMNS: list[tuple[str, Literal["left", "right"]]] = [
    ("table", "left"),
    ("rows", "right"),
    ("MB", "right"),
    ("ranges", "right"),
    ("seconds", "right"),
    ("rows/s", "right"),
    ("verified", "left"),
]
"""The report's table, on a terminal and in markdown alike."""


@dataclass
class TableReport:
    table: str
    rows: int = 0
    bytes: int = 0
    ranges: int = 0
    seconds: float = 0.0
    verified: str = "no"
    source_rows: int | None = None
    nodes: list[str] = field(default_factory=list)
    state: str = ""
    """How far the table got: finalized, copied, partly copied: n of m ranges, not started (failed runs)."""
    schema_changes: list[SchemaChange] = field(default_factory=list)
    """How the target table differs from the source table, decided at plan time."""
    value_changes: list[ValueChanges] = field(default_factory=list)
    """Values lossy opt-in policies changed, per column and policy, over every range done (resumed ones too)."""

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


@dataclass
class RunReport:
    run_id: str
    source: str
    target: str
    method: str
    status: str = "running"
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)
    tables: list[TableReport] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    workers: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    reason: str = ""
    """Why a failed or interrupted run stopped: one line, scrubbed of secrets."""
    next_step: str = ""
    """What the target needs next after a failed or interrupted run (--resume, or starting over)."""

    @property
    def schema_change_count(self) -> int:
        return sum(len(t.schema_changes) for t in self.tables)

    @property
    def changed_values(self) -> int:
        return sum(c.count for t in self.tables for c in t.value_changes)

    def _on_record(self) -> str:
        """The total line of what the run changed."""
        tables = sum(1 for t in self.tables if t.schema_changes or t.value_changes)
        return (
            f"on record: {self.schema_change_count:,} schema changes, {self.changed_values:,} values changed by "
            f"lossy opt-in policies, in {tables} of {len(self.tables)} tables"
        )

    def _change_lines(self) -> list[str]:
        lines = [f"schema: {c.line()}" for t in self.tables for c in t.schema_changes]
        return lines + [f"values: {c.line()}" for t in self.tables for c in t.value_changes]

    def _stop_lines(self) -> list[str]:
        """A failed run: why, each table's state, what to do next."""
        if self.status not in ("failed", "interrupted"):
            return []
        lines = [f"stopped: {self.reason}"] if self.reason else []
        lines += [f"table {t.table}: {t.state}" for t in self.tables]
        return lines + ([f"next: {self.next_step}"] if self.next_step else [])

    @property
    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables)

    @property
    def total_bytes(self) -> int:
        return sum(t.bytes for t in self.tables)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["total_rows"] = self.total_rows
        data["total_bytes"] = self.total_bytes
        data["rows_per_s"] = round(self.total_rows / self.seconds, 1) if self.seconds else 0.0
        data["schema_changes"] = self.schema_change_count
        data["changed_values"] = self.changed_values
        for entry, table in zip(data["tables"], self.tables, strict=True):
            entry["rows_per_s"] = round(table.rows_per_s, 1)
        return data

    def _cells(self) -> list[list[str]]:
        """One row per table, then the total (its verified cell: every table verified), as both outputs show
        them."""
        rows = [
            [
                t.table,
                f"{t.rows:,}",
                f"{t.bytes / 1e6:,.1f}",
                str(t.ranges),
                f"{t.seconds:.2f}",
                f"{t.rows_per_s:,.0f}",
                t.verified,
            ]
            for t in self.tables
        ]
        secs = self.seconds or 1.0
        verified = "yes" if all(t.verified.startswith("yes") for t in self.tables) else "no"
        total = [
            "total",
            f"{self.total_rows:,}",
            f"{self.total_bytes / 1e6:,.1f}",
            str(sum(t.ranges for t in self.tables)),
            f"{self.seconds:.2f}",
            f"{self.total_rows / secs:,.0f}",
            verified,
        ]
        return [*rows, total]

    def _phases(self) -> str:
        return "phases: " + ", ".join(f"{k} {v:.2f} s" for k, v in self.phases.items())

    def to_markdown(self) -> str:
        *rows, total = self._cells()
        total[0] = "**total**"
        lines = [
            f"# ray-replicator run {self.run_id}: {self.status}",
            "",
            f"{self.source} → {self.target}, method {self.method}, {self.seconds:.2f} s",
            "",
            "| " + " | ".join(name for name, _ in COLUMNS) + " |",
            "|" + "|".join("---:" if justify == "right" else "---" for _, justify in COLUMNS) + "|",
        ]
        lines += ["| " + " | ".join(cells) + " |" for cells in [*rows, total]]
        lines += ["", self._on_record()] + [f"- {line}" for line in self._change_lines()]
        if self._stop_lines():
            lines += [""] + self._stop_lines()
        if self.phases:
            lines += ["", self._phases()]
        if self.excluded:
            lines += ["", "excluded by filters: " + ", ".join(self.excluded)]
        if self.warnings:
            lines += ["", "warnings:"] + [f"- {w}" for w in self.warnings]
        if self.errors:
            lines += ["", "errors:"] + [f"- {e}" for e in self.errors]
        return "\n".join(lines) + "\n"

    def print(self, console: Console | None = None) -> None:
        console = console or Console(file=sys.stdout, soft_wrap=True)
        table = RichTable(title=f"ray-replicator run {self.run_id}: {self.status}")
        for name, justify in COLUMNS:
            table.add_column(name, justify=justify)
        *rows, total = self._cells()
        for cells in rows:
            table.add_row(*cells)
        table.add_row(*total[:-1], "", style="bold")
        console.print(table)
        console.print(self._on_record(), markup=False)
        for line in self._change_lines():
            console.print(f"  {line}", markup=False)
        for line in self._stop_lines():
            console.print(line, markup=False)
        if self.phases:
            console.print(self._phases())
        if self.excluded:
            console.print("excluded by filters: " + ", ".join(self.excluded))
        for warning in self.warnings:
            console.print(f"[yellow]warning:[/yellow] {warning}")
        for err in self.errors:
            console.print(f"[red]error:[/red] {err}")

    def save(self, path: Path) -> tuple[Path, Path]:
        """Write <path> as JSON and the same name with .md as markdown."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2, default=str))
        md = path.with_suffix(".md")
        md.write_text(self.to_markdown())
        return path, md
