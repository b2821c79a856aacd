"""The plan as the target's ledger keeps it, and the rules for resuming a run.

A plan is stored as JSON next to the run (so a resumed run copies exactly the ranges it planned, not ranges
re-cut from data that moved meanwhile). Range bounds keep their types through JSON with a tag per value; the
settings that shape a plan and each table's shape are stored too, so a resume that would mix two plans is refused
with one line saying what changed.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import uuid
from dataclasses import dataclass
from typing import Any

from ray_replicator.catalog import Catalog
from ray_replicator.config import Settings
from ray_replicator.engines.base import KeyRange, Target, UsageError
from ray_replicator.plan import Plan, schema_hash

FORMAT = 1
RESUMABLE_STATES = ("running", "failed", "interrupted")
PLAN_SETTINGS = (
    "tables",
    "exclude",
    "schema_map",
    "rows_per_range",
    "bytes_per_range",
    "max_ranges_per_table",
    "keys",
    "unlogged",
    "copy_method",
    "unsupported_types",
)
"""Settings that decide which ranges exist and how tables are built: a resume refuses when any of them changed."""


def encode_value(value: Any) -> Any:
    """A range bound value as JSON with its type: [tag, text]; bool before int (bool is an int)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return ["bool", value]
    if isinstance(value, int):
        return ["int", str(value)]
    if isinstance(value, float):
        return ["float", value.hex()]
    if isinstance(value, decimal.Decimal):
        return ["decimal", str(value)]
    if isinstance(value, str):
        return ["str", value]
    if isinstance(value, dt.datetime):
        return ["datetime", value.isoformat()]
    if isinstance(value, dt.date):
        return ["date", value.isoformat()]
    if isinstance(value, dt.time):
        return ["time", value.isoformat()]
    if isinstance(value, dt.timedelta):
        return ["timedelta", [value.days, value.seconds, value.microseconds]]
    if isinstance(value, uuid.UUID):
        return ["uuid", str(value)]
    if isinstance(value, bytes | bytearray | memoryview):
        return ["bytes", base64.b64encode(bytes(value)).decode()]
    raise UsageError(f"cannot store a range bound of type {type(value).__name__} in the ledger: {value!r}")


def decode_value(item: Any) -> Any:
    if item is None:
        return None
    tag, text = item
    decoders: dict[str, Any] = {
        "bool": bool,
        "int": int,
        "float": float.fromhex,
        "decimal": decimal.Decimal,
        "str": str,
        "datetime": dt.datetime.fromisoformat,
        "date": dt.date.fromisoformat,
        "time": dt.time.fromisoformat,
        "timedelta": lambda parts: dt.timedelta(days=parts[0], seconds=parts[1], microseconds=parts[2]),
        "uuid": uuid.UUID,
        "bytes": base64.b64decode,
    }
    if tag not in decoders:
        raise UsageError(f"the ledger holds a range bound of unknown type {tag!r}; run without --resume")
    return decoders[tag](text)


def _bound(values: tuple[Any, ...] | None) -> list[Any] | None:
    return None if values is None else [encode_value(v) for v in values]


def _unbound(values: list[Any] | None) -> tuple[Any, ...] | None:
    return None if values is None else tuple(decode_value(v) for v in values)


def encode_range(rng: KeyRange) -> dict[str, Any]:
    return {
        "schema": rng.schema,
        "table": rng.table,
        "index": rng.index,
        "kind": rng.kind,
        "columns": list(rng.columns),
        "lower": _bound(rng.lower),
        "upper": _bound(rng.upper),
        "estimated_rows": rng.estimated_rows,
        "estimated_bytes": rng.estimated_bytes,
        "lead": rng.lead,
    }


def decode_range(data: dict[str, Any]) -> KeyRange:
    return KeyRange(
        schema=data["schema"],
        table=data["table"],
        index=int(data["index"]),
        kind=data["kind"],
        columns=tuple(data["columns"]),
        lower=_unbound(data["lower"]),
        upper=_unbound(data["upper"]),
        estimated_rows=int(data["estimated_rows"]),
        estimated_bytes=int(data["estimated_bytes"]),
        lead=bool(data.get("lead", False)),
    )


def table_shapes(catalog: Catalog) -> dict[str, str]:
    """'schema.table' -> digest of its columns and key, to name the table whose shape changed."""
    return {t.qualified: schema_hash(Catalog(engine=catalog.engine, database="", tables=[t])) for t in catalog.tables}


def plan_settings(settings: Settings) -> dict[str, Any]:
    return {name: _jsonable(getattr(settings, name)) for name in PLAN_SETTINGS}


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def plan_document(plan: Plan, settings: Settings) -> str:
    return json.dumps(
        {
            "format": FORMAT,
            "plan_hash": plan.plan_hash(),
            "schema_hash": schema_hash(plan.catalog),
            "tables": table_shapes(plan.catalog),
            "settings": plan_settings(settings),
            "ranges": [encode_range(r) for r in plan.ranges],
        },
        sort_keys=True,
    )


@dataclass
class Resume:
    """What a resumed run continues: its id, its stored plan, and the ranges already committed."""

    run_id: str
    plan: Plan
    done: dict[str, dict[str, Any]]


def _changed_tables(stored: dict[str, str], now: dict[str, str]) -> str:
    changed = sorted(name for name in stored.keys() & now.keys() if stored[name] != now[name])
    gone = sorted(stored.keys() - now.keys())
    new = sorted(now.keys() - stored.keys())
    parts = []
    if changed:
        parts.append("columns or key changed in " + ", ".join(changed[:5]))
    if gone:
        parts.append("no longer selected or gone: " + ", ".join(gone[:5]))
    if new:
        parts.append("new: " + ", ".join(new[:5]))
    return "; ".join(parts) or "table shapes differ"


def find_resume(target: Target, settings: Settings, catalog: Catalog) -> Resume:
    """The newest unfinished run in the target's ledger, checked against today's source and settings.

    Raises UsageError (exit 2) naming what changed when the run cannot be continued safely.
    """
    recorded = target.ledger.runs()
    if not recorded:
        raise UsageError(
            "nothing to resume: the target records no run of ray-replicator; run the same command without --resume"
        )
    runs = [r for r in recorded if r["state"] in RESUMABLE_STATES]
    if settings.run_id:
        runs = [r for r in runs if r["run_id"] == settings.run_id]
    if not runs:
        latest = recorded[0]
        raise UsageError(
            "nothing to resume: the target's ledger has no unfinished run"
            + (f" with id {settings.run_id}" if settings.run_id else "")
            + f" (latest run {latest['run_id']} is {latest['state']}); run without --resume"
        )
    run = runs[0]
    run_id = str(run["run_id"])
    text = target.ledger.load_plan(run_id)
    if not text:
        raise UsageError(f"run {run_id} has no stored plan in the target's ledger; run without --resume")
    doc = json.loads(text)
    if doc.get("format") != FORMAT:
        raise UsageError(f"run {run_id} was planned by another ray-replicator version; run without --resume")
    now_shapes = table_shapes(catalog)
    if schema_hash(catalog) != run["schema_hash"] or doc["tables"] != now_shapes:
        raise UsageError(
            f"cannot resume run {run_id}: the source schema changed since it started "
            f"({_changed_tables(doc['tables'], now_shapes)}); run without --resume and with existing = drop"
        )
    now_settings = plan_settings(settings)
    diffs = [
        f"{k}: {doc['settings'].get(k)!r} -> {now_settings[k]!r}"
        for k in PLAN_SETTINGS
        if doc["settings"].get(k) != now_settings[k]
    ]
    if diffs:
        raise UsageError(
            f"cannot resume run {run_id}: settings that shape the plan changed ({'; '.join(diffs)}); "
            "restore them or run without --resume"
        )
    plan = Plan(catalog=catalog, ranges=[decode_range(r) for r in doc["ranges"]])
    if plan.plan_hash() != run["plan_hash"] or plan.plan_hash() != doc["plan_hash"]:
        raise UsageError(
            f"cannot resume run {run_id}: its stored plan does not match its plan hash; run without --resume"
        )
    done = {rid: info for rid, info in target.ledger.ranges(run_id).items() if info["state"] in ("done", "verified")}
    return Resume(run_id=run_id, plan=plan, done=done)
