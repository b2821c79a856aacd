"""The run's ledger in a SQL Server target (schema _ray_replicator): runs, their ranges, their plans.

It shares the target's control connection. A writer that loads inside a transaction commits the range's done mark
in that same transaction (done_sql), so a range's rows and its mark are never apart.
"""

from __future__ import annotations

from typing import Any

from ray_replicator.engines.base import KeyRange, UsageError
from ray_replicator.engines.mssql.catalog import LEDGER_SCHEMA
from ray_replicator.engines.mssql.connect import MssqlEndpoint
from ray_replicator.engines.mssql.sql import INSERT_ROWS, n_literal, qualified, sql_literal
from ray_replicator.errors import OnDenied

_LEDGER_TABLES = {
    "runs": (
        "run_id nvarchar(64) NOT NULL PRIMARY KEY, plan_hash nvarchar(64) NULL, schema_hash nvarchar(64) NULL, "
        "state nvarchar(32) NOT NULL, started_at datetime2(6) NOT NULL, finished_at datetime2(6) NULL"
    ),
    "ranges": (
        "run_id nvarchar(64) NOT NULL, range_id nvarchar(400) NOT NULL, schema_name nvarchar(128) NULL, "
        "table_name nvarchar(128) NULL, kind nvarchar(16) NULL, state nvarchar(16) NOT NULL, rows bigint NULL, "
        "bytes bigint NULL, seconds float NULL, node nvarchar(128) NULL, error nvarchar(max) NULL, "
        "updated_at datetime2(6) NOT NULL, CONSTRAINT PK_rr_ranges PRIMARY KEY (run_id, range_id)"
    ),
    # Its own table, not a column of ranges: the copy task saves it on another connection while the range's
    # loading transaction holds the range's row; ensure() adds it to a ledger from an older version.
    "value_changes": (
        "run_id nvarchar(64) NOT NULL, range_id nvarchar(400) NOT NULL, changes nvarchar(max) NOT NULL, "
        "saved_at datetime2(6) NOT NULL, CONSTRAINT PK_rr_value_changes PRIMARY KEY (run_id, range_id)"
    ),
    "plans": (
        "run_id nvarchar(64) NOT NULL, part int NOT NULL, plan_text nvarchar(max) NOT NULL, "
        "saved_at datetime2(6) NOT NULL, CONSTRAINT PK_rr_plans PRIMARY KEY (run_id, part)"
    ),
}
RUNS = qualified(LEDGER_SCHEMA, "runs")
RANGES = qualified(LEDGER_SCHEMA, "ranges")
PLANS = qualified(LEDGER_SCHEMA, "plans")
VALUE_CHANGES = qualified(LEDGER_SCHEMA, "value_changes")
_PLAN_PART_CHARS = 200_000
"""A plan is stored in parts of this many characters so no single T-SQL literal grows with the plan."""
_MARK_FIELDS = {
    "rows": "bigint",
    "bytes": "bigint",
    "seconds": "float",
    "node": "nvarchar(max)",
    "error": "nvarchar(max)",
}
"""The fields mark() may set besides the state, and the types of their literals: text as nvarchar(max), never the
column's own length, so a value too long for its column fails on the write instead of being cut by the CAST."""
_NOW = "SYSUTCDATETIME()"


def _in_range(run_id: str, range_id: str) -> str:
    return f"WHERE run_id = {n_literal(run_id)} AND range_id = {n_literal(range_id)}"


class MssqlLedger:
    """LedgerStore on a SQL Server target's control connection."""

    def __init__(self, endpoint: MssqlEndpoint) -> None:
        self._ep = endpoint

    def ensure(self) -> None:
        """Create the ledger's schema and tables where missing."""
        self._ep.ensure_schema(LEDGER_SCHEMA)
        for name, cols in _LEDGER_TABLES.items():
            if not self._ep.table_exists(LEDGER_SCHEMA, name):
                self._ep.execute(
                    "creating the ledger",
                    f"CREATE TABLE {qualified(LEDGER_SCHEMA, name)} ({cols})",
                    OnDenied("the user needs CREATE TABLE"),
                )

    def _exists(self) -> bool:
        """Readers (status, --resume) look without creating: a target no run has written to stays untouched."""
        return self._ep.table_exists(LEDGER_SCHEMA, "runs") and self._ep.table_exists(LEDGER_SCHEMA, "ranges")

    # -- LedgerStore --------------------------------------------------------------------------------------
    def init(self, run_id: str, plan_hash: str, schema_hash: str, ranges: list[KeyRange]) -> None:
        self.ensure()
        run = n_literal(run_id)
        if self._ep.query_value("reading the ledger", f"SELECT COUNT(*) FROM {RUNS} WHERE run_id = {run}"):
            self._ep.execute(
                "recording the run",
                f"UPDATE {RUNS} SET state = N'running', finished_at = NULL WHERE run_id = {run}",
            )
        else:
            self._ep.execute(
                "recording the run",
                f"INSERT INTO {RUNS} (run_id, plan_hash, schema_hash, state, started_at) VALUES ({run}, "
                f"{n_literal(plan_hash)}, {n_literal(schema_hash)}, N'running', {_NOW})",
            )
        self.insert_ranges(run_id, ranges)

    def runs(self) -> list[dict[str, Any]]:
        if not self._exists():
            return []
        names = ("run_id", "plan_hash", "schema_hash", "state", "started_at", "finished_at")
        rows = self._ep.query(
            "reading the ledger", f"SELECT {', '.join(names)} FROM {RUNS} ORDER BY started_at DESC, run_id"
        )
        return [dict(zip(names, r, strict=True)) for r in rows]

    def ranges(self, run_id: str) -> dict[str, dict[str, Any]]:
        if not self._exists():
            return {}
        names = ("state", "rows", "bytes", "seconds", "node", "error")
        rows = self._ep.query(
            "reading the ledger",
            f"SELECT range_id, {', '.join(names)} FROM {RANGES} WHERE run_id = {n_literal(run_id)}",
        )
        return {str(r[0]): dict(zip(names, r[1:], strict=True)) for r in rows}

    def mark(self, run_id: str, range_ids: list[str], state: str, **info: Any) -> None:
        unknown = set(info) - _MARK_FIELDS.keys()
        if unknown:
            raise UsageError(f"unknown ledger fields {sorted(unknown)}; allowed: {sorted(_MARK_FIELDS)}")
        sets = [f"state = {n_literal(state)}", f"updated_at = {_NOW}"]
        sets += [f"{k} = {sql_literal(v, _MARK_FIELDS[k])}" for k, v in info.items()]
        for start in range(0, len(range_ids), 500):
            ids = ", ".join(n_literal(r) for r in range_ids[start : start + 500])
            self._ep.execute(
                f"marking ranges {state} in the ledger",
                f"UPDATE {RANGES} SET {', '.join(sets)} WHERE run_id = {n_literal(run_id)} AND range_id IN ({ids})",
            )

    def finish(self, run_id: str, state: str) -> None:
        self._ep.execute(
            "finishing the run in the ledger",
            f"UPDATE {RUNS} SET state = {n_literal(state)}, finished_at = {_NOW} WHERE run_id = {n_literal(run_id)}",
        )

    def save_plan(self, run_id: str, plan_json: str) -> None:
        """Keep the run's plan (ledger.plan_document) so --resume copies exactly the ranges it planned."""
        self.ensure()
        what = f"saving the plan of run {run_id} in the ledger"
        self._ep.execute(what, f"DELETE FROM {PLANS} WHERE run_id = {n_literal(run_id)}")
        parts = [plan_json[i : i + _PLAN_PART_CHARS] for i in range(0, len(plan_json), _PLAN_PART_CHARS)] or [""]
        for index, text in enumerate(parts):
            self._ep.execute(
                what,
                f"INSERT INTO {PLANS} (run_id, part, plan_text, saved_at) "
                f"VALUES ({n_literal(run_id)}, {index}, {n_literal(text)}, {_NOW})",
            )

    def load_plan(self, run_id: str) -> str | None:
        if not self._ep.table_exists(LEDGER_SCHEMA, "plans"):
            return None
        rows = self._ep.query(
            f"reading the plan of run {run_id} from the ledger",
            f"SELECT plan_text FROM {PLANS} WHERE run_id = {n_literal(run_id)} ORDER BY part",
        )
        return "".join(str(r[0]) for r in rows) if rows else None

    def claim_copying(self, run_id: str, range_id: str, node: str) -> None:
        """SQL Server's ledger has no 'copying' state: a range is planned until its rows and mark commit."""

    def save_value_changes(self, run_id: str, range_id: str, changes_json: str) -> None:
        where = _in_range(run_id, range_id)
        what = "saving a range's value changes in the ledger"
        self._ep.execute(what, f"DELETE FROM {VALUE_CHANGES} {where}")
        self._ep.execute(
            what,
            f"INSERT INTO {VALUE_CHANGES} (run_id, range_id, changes, saved_at) "
            f"VALUES ({n_literal(run_id)}, {n_literal(range_id)}, {n_literal(changes_json)}, {_NOW})",
        )

    def value_changes(self, run_id: str) -> dict[str, str]:
        if not self._ep.table_exists(LEDGER_SCHEMA, "value_changes"):
            return {}
        rows = self._ep.query(
            f"reading the value changes of run {run_id} from the ledger",
            f"SELECT range_id, changes FROM {VALUE_CHANGES} WHERE run_id = {n_literal(run_id)}",
        )
        return {str(r[0]): str(r[1]) for r in rows}

    # -- what the writers use -----------------------------------------------------------------------------
    def insert_ranges(self, run_id: str, ranges: list[KeyRange]) -> None:
        """Record ranges as 'planned', leaving those the run already has."""
        have = {
            str(r[0])
            for r in self._ep.query(
                "reading the ledger", f"SELECT range_id FROM {RANGES} WHERE run_id = {n_literal(run_id)}"
            )
        }
        fresh = [r for r in ranges if r.range_id not in have]
        for start in range(0, len(fresh), INSERT_ROWS):
            values = ", ".join(
                f"({n_literal(run_id)}, {n_literal(r.range_id)}, {n_literal(r.schema)}, {n_literal(r.table)}, "
                f"{n_literal(r.kind)}, N'planned', {_NOW})"
                for r in fresh[start : start + INSERT_ROWS]
            )
            self._ep.execute(
                "recording ranges in the ledger",
                f"INSERT INTO {RANGES} (run_id, range_id, schema_name, table_name, kind, state, updated_at) "
                f"VALUES {values}",
            )

    def claim(self, run_id: str, rng: KeyRange, what: str) -> str:
        """The range's state, recording it as 'planned' when the ledger does not have it yet."""
        rows = self._ep.query(what, f"SELECT state FROM {RANGES} {_in_range(run_id, rng.range_id)}")
        if rows:
            return str(rows[0][0])
        self.insert_ranges(run_id, [rng])
        return "planned"

    def lock_sql(self, run_id: str, range_id: str) -> str:
        """Holds the range's ledger row until the transaction that loads it ends."""
        return f"SELECT state FROM {RANGES} WITH (UPDLOCK, HOLDLOCK) {_in_range(run_id, range_id)}"

    def set_state(self, run_id: str, range_id: str, state: str, what: str) -> None:
        self._ep.execute(
            what, f"UPDATE {RANGES} SET state = {n_literal(state)}, updated_at = {_NOW} {_in_range(run_id, range_id)}"
        )

    def done_sql(self, run_id: str, range_id: str, rows: int, nbytes: int, seconds: float) -> str:
        """The statement that marks a range done, run in the transaction that loaded it (or alone after bulkcopy)."""
        return (
            f"UPDATE {RANGES} SET state = N'done', rows = {rows}, bytes = {nbytes}, "
            f"seconds = {seconds!r}, error = NULL, updated_at = {_NOW} {_in_range(run_id, range_id)}"
        )
