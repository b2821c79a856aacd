"""The run's ledger in a PostgreSQL target (schema `_ray_replicator`): runs, their ranges, their plans, and the
table settings a load changed. The write paths claim and mark their range with the SQL here inside their own
transaction, so a range's rows and its done mark commit together."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ray_replicator.engines.base import KeyRange, UsageError
from ray_replicator.engines.postgres.sql import quote_ident
from ray_replicator.errors import OnDenied

if TYPE_CHECKING:
    from ray_replicator.engines.postgres.connect import PostgresEndpoint

LEDGER_SCHEMA = "_ray_replicator"
_SCHEMA = quote_ident(LEDGER_SCHEMA)
RUNS = f"{_SCHEMA}.runs"
RANGES = f"{_SCHEMA}.ranges"
PLANS = f"{_SCHEMA}.plans"
LOAD_SETTINGS = f"{_SCHEMA}.load_settings"
VALUE_CHANGES = f"{_SCHEMA}.value_changes"

_LEDGER_DDL = [
    f"CREATE SCHEMA IF NOT EXISTS {_SCHEMA}",
    f"""CREATE TABLE IF NOT EXISTS {RUNS} (
        run_id text PRIMARY KEY, plan_hash text, schema_hash text, state text NOT NULL DEFAULT 'running',
        started_at timestamptz NOT NULL DEFAULT now(), finished_at timestamptz)""",
    f"""CREATE TABLE IF NOT EXISTS {RANGES} (
        run_id text NOT NULL, range_id text NOT NULL, schema_name text, table_name text, kind text,
        state text NOT NULL DEFAULT 'planned', rows int8, bytes int8, seconds float8, node text, error text,
        updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (run_id, range_id))""",
    f"""CREATE TABLE IF NOT EXISTS {LOAD_SETTINGS} (
        run_id text NOT NULL, schema_name text NOT NULL, table_name text NOT NULL,
        extended_columns text[] NOT NULL, toast_tuple_target int,
        PRIMARY KEY (run_id, schema_name, table_name))""",
    # Its own table, not a column of ranges: the copy task saves it on another connection while the range's
    # writing transaction holds the range's row, and a ledger from an older version gains it by IF NOT EXISTS.
    f"""CREATE TABLE IF NOT EXISTS {VALUE_CHANGES} (
        run_id text NOT NULL, range_id text NOT NULL, changes jsonb NOT NULL,
        saved_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (run_id, range_id))""",
]

CLAIM_SQL = (
    f"INSERT INTO {RANGES} (run_id, range_id, schema_name, table_name, kind) VALUES ($1, $2, $3, $4, $5) "
    "ON CONFLICT (run_id, range_id) DO NOTHING"
)
"""Record a range as planned unless it is (parameters: run_id, range_id, schema, table, kind)."""
LOCK_SQL = f"SELECT state, rows, bytes FROM {RANGES} WHERE run_id = $1 AND range_id = $2 FOR UPDATE"
"""Lock a range's row for the writing transaction; its state tells whether it is done already."""
OTHERS_DONE_SQL = (
    f"SELECT EXISTS (SELECT 1 FROM {RANGES} WHERE run_id = $1 AND schema_name = $2 AND table_name = $3 "
    "AND range_id <> $4 AND state IN ('done', 'verified'))"
)
DONE_SQL = (
    f"UPDATE {RANGES} SET state = 'done', rows = $3::int8, bytes = $4::int8, seconds = $5::float8, "
    "error = NULL, updated_at = now() WHERE run_id = $1 AND range_id = $2"
)
_FIELDS = ("state", "rows", "bytes", "seconds", "node", "error")


def is_done(state: str | None) -> bool:
    return state in ("done", "verified")


def ensure_ledger(target: PostgresEndpoint) -> None:
    """Create the ledger's schema and tables if missing (one creator at a time)."""

    async def go(c: Any) -> None:
        async with c.transaction():
            await c.execute("SELECT pg_advisory_xact_lock(hashtext('ray_replicator ledger'))")
            for ddl in _LEDGER_DDL:
                await c.execute(ddl)

    target.run(
        "creating the ledger schema _ray_replicator", go, OnDenied("the target user needs CREATE on the database")
    )


class PostgresLedger:
    """The LedgerStore of a PostgreSQL target, on the target's control connection."""

    def __init__(self, target: PostgresEndpoint) -> None:
        self._t = target

    def init(self, run_id: str, plan_hash: str, schema_hash: str, ranges: list[KeyRange]) -> None:
        ensure_ledger(self._t)

        async def go(c: Any) -> None:
            async with c.transaction():
                await c.execute(
                    f"INSERT INTO {RUNS} (run_id, plan_hash, schema_hash) VALUES ($1, $2, $3) "
                    "ON CONFLICT (run_id) DO UPDATE SET state = 'running', finished_at = NULL",
                    run_id,
                    plan_hash,
                    schema_hash,
                )
                await c.executemany(CLAIM_SQL, [(run_id, r.range_id, r.schema, r.table, r.kind) for r in ranges])

        self._t.run(f"recording run {run_id} in the ledger", go)

    def _exists(self) -> bool:
        """Readers (status, --resume) look without creating: a target no run has written to stays untouched."""
        sql = "SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL"
        return bool(self._t.run("looking for the ledger", lambda c: c.fetchval(sql, RUNS, RANGES)))

    def runs(self) -> list[dict[str, Any]]:
        if not self._exists():
            return []
        rows = self._t.fetch(
            "reading the ledger",
            f"SELECT run_id, plan_hash, schema_hash, state, started_at, finished_at FROM {RUNS} "
            "ORDER BY started_at DESC, run_id",
        )
        return [dict(r) for r in rows]

    def ranges(self, run_id: str) -> dict[str, dict[str, Any]]:
        if not self._exists():
            return {}
        rows = self._t.fetch(
            "reading the ledger",
            f"SELECT range_id, {', '.join(_FIELDS)} FROM {RANGES} WHERE run_id = $1",
            run_id,
        )
        return {r["range_id"]: {k: r[k] for k in _FIELDS} for r in rows}

    def mark(self, run_id: str, range_ids: list[str], state: str, **info: Any) -> None:
        allowed = set(_FIELDS) - {"state"}
        unknown = set(info) - allowed
        if unknown:
            raise UsageError(f"unknown ledger fields {sorted(unknown)}; allowed: {sorted(allowed)}")
        sets = ["state = $3", "updated_at = now()"] + [f"{k} = ${i}" for i, k in enumerate(info, start=4)]
        sql = f"UPDATE {RANGES} SET {', '.join(sets)} WHERE run_id = $1 AND range_id = ANY($2::text[])"
        self._t.execute(f"marking ranges {state} in the ledger", sql, run_id, range_ids, state, *info.values())

    def finish(self, run_id: str, state: str) -> None:
        self._t.execute(
            "finishing the run in the ledger",
            f"UPDATE {RUNS} SET state = $2, finished_at = now() WHERE run_id = $1",
            run_id,
            state,
        )

    # The plan JSON of a run, kept in its own table so the runs/ranges tables keep their shape.
    def save_plan(self, run_id: str, plan_json: str) -> None:
        ensure_ledger(self._t)

        async def go(c: Any) -> None:
            await c.execute(
                f"CREATE TABLE IF NOT EXISTS {PLANS} (run_id text PRIMARY KEY, plan text NOT NULL, "
                "saved_at timestamptz NOT NULL DEFAULT now())"
            )
            await c.execute(
                f"INSERT INTO {PLANS} (run_id, plan) VALUES ($1, $2) "
                "ON CONFLICT (run_id) DO UPDATE SET plan = EXCLUDED.plan, saved_at = now()",
                run_id,
                plan_json,
            )

        self._t.run(f"saving the plan of run {run_id} in the ledger", go)

    def load_plan(self, run_id: str) -> str | None:
        async def go(c: Any) -> str | None:
            if not await c.fetchval("SELECT to_regclass($1) IS NOT NULL", PLANS):
                return None
            value = await c.fetchval(f"SELECT plan FROM {PLANS} WHERE run_id = $1", run_id)
            return None if value is None else str(value)

        return self._t.run(f"reading the plan of run {run_id} from the ledger", go)

    def claim_copying(self, run_id: str, range_id: str, node: str) -> None:
        """Mark a range 'copying' by this worker (node:pid) unless it is already done: never demotes a done one."""
        self._t.execute(
            "marking a range copying in the ledger",
            f"UPDATE {RANGES} SET state = 'copying', node = $3, updated_at = now() "
            "WHERE run_id = $1 AND range_id = $2 AND state NOT IN ('done', 'verified')",
            run_id,
            range_id,
            node,
        )

    def save_value_changes(self, run_id: str, range_id: str, changes_json: str) -> None:
        self._t.execute(
            "saving a range's value changes in the ledger",
            f"INSERT INTO {VALUE_CHANGES} (run_id, range_id, changes) VALUES ($1, $2, $3::jsonb) "
            "ON CONFLICT (run_id, range_id) DO UPDATE SET changes = EXCLUDED.changes, saved_at = now()",
            run_id,
            range_id,
            changes_json,
        )

    def value_changes(self, run_id: str) -> dict[str, str]:
        async def go(c: Any) -> dict[str, str]:
            if not await c.fetchval("SELECT to_regclass($1) IS NOT NULL", VALUE_CHANGES):
                return {}
            rows = await c.fetch(f"SELECT range_id, changes::text FROM {VALUE_CHANGES} WHERE run_id = $1", run_id)
            return {str(r[0]): str(r[1]) for r in rows}

        return self._t.run(f"reading the value changes of run {run_id} from the ledger", go)
