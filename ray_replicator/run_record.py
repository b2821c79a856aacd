"""What a run puts on the record besides rows: the schema changes decided at plan time (kept with the plan in the
ledger, so a resumed run reports the same ones), the value changes of every range done, and for a run that stops
early each table's state and what the target needs next."""

from __future__ import annotations

import json
from dataclasses import replace

from ray_replicator.catalog import Catalog
from ray_replicator.choices import map_table
from ray_replicator.config import Settings
from ray_replicator.constraint_names import renamed_twin
from ray_replicator.engines import open_target
from ray_replicator.engines.base import Source, WriteOptions
from ray_replicator.record import SchemaChange, ValueChanges, merge_value_changes, value_changes_from_json
from ray_replicator.report import RunReport, TableReport
from ray_replicator.run_state import RunState
from ray_replicator.typemap import apply_type_policy


def write_options(settings: Settings, run_id: str) -> WriteOptions:
    """How the target receives data in this run."""
    return WriteOptions(
        existing=settings.existing,
        keys_before_load=settings.keys == "before-load",
        unlogged=settings.unlogged,
        run_id=run_id,
        large_values_as_source=settings.large_values == "as-source",
        collation=settings.collation,
    )


def planned_schema_changes(settings: Settings, source: Source, catalog: Catalog) -> list[SchemaChange]:
    """The schema changes a run with these settings would make (`plan` with a target), decided as the run decides
    them: the type policy's, then the target's own. Reads the target, writes nothing."""
    target = open_target(settings.target_endpoint.resolved_url())
    try:
        engines = (source.capabilities, target.capabilities)
        kept, changes = apply_type_policy(catalog, *engines, settings.unsupported_types)
        mapped = [map_table(t, settings.schema_map, changes) for t in kept.tables]
        options = write_options(settings, "")
        return changes + target.schema_changes(replace(kept, tables=mapped), source.engine, options)
    finally:
        target.close()


def plan_with_changes(plan_json: str, changes: list[SchemaChange]) -> str:
    """The plan document (ledger.plan_document) with the run's schema changes in it."""
    doc = json.loads(plan_json)
    doc["schema_changes"] = [c.to_json() for c in changes]
    return json.dumps(doc, sort_keys=True)


def stored_changes(plan_json: str | None) -> list[SchemaChange] | None:
    """The schema changes kept with a stored plan, or None for a plan stored without them (an older version)."""
    if not plan_json:
        return None
    items = json.loads(plan_json).get("schema_changes")
    return None if items is None else [SchemaChange.from_json(item) for item in items]


def name_target_constraints(state: RunState) -> None:
    """The target tables get the index and constraint names the target gives them (constraint_renamed changes,
    constraint_names' rule), so prepare, finalize and verify name the objects the record lists."""
    for key, table in state.mapped.items():
        state.mapped[key] = renamed_twin(table, state.schema_changes)


def resumed_changes(state: RunState, saved: dict[str, str]) -> dict[str, list[ValueChanges]]:
    """The value changes the ledger holds for the ranges a resumed run finds done."""
    return {rid: value_changes_from_json(text) for rid, text in saved.items() if rid in state.done_before}


def record_tables(state: RunState) -> None:
    """Each table of the report with its schema changes, value changes and how far it got."""
    if not state.report.tables:  # the copy stage did not finish: its tables as far as they got
        state.report.tables = [
            progress.report
            if (progress := state.tables.get((t.schema, t.name))) is not None
            else TableReport(table=state.mapped[(t.schema, t.name)].qualified, ranges=len(state.plan.ranges_of(t)))
            for t in state.catalog.tables
        ]
    for table, entry in zip(state.catalog.tables, state.report.tables, strict=True):
        names = {table.qualified, entry.table}
        entry.schema_changes = [c for c in state.schema_changes if c.table in names]
        progress = state.tables.get((table.schema, table.name))
        if progress is None:
            entry.state = "not started"
            continue
        in_key_order = sorted(state.plan.ranges_of(table), key=lambda r: r.index)
        parts = [progress.value_changes[r.range_id] for r in in_key_order if r.range_id in progress.value_changes]
        entry.value_changes = merge_value_changes(parts)
        done = entry.ranges - progress.remaining
        job = progress.finalized
        if job is not None and job.done() and not job.cancelled() and job.exception() is None:
            entry.state = "finalized"
        elif progress.remaining == 0:
            entry.state = "copied, keys and indexes not added yet"
        elif done:
            entry.state = f"partly copied: {done} of {entry.ranges} ranges"
        else:
            entry.state = "not started"


def next_step(state: RunState, in_ledger: bool) -> str:
    """What the target needs after the run stopped, from how far the run got."""
    if in_ledger:
        return (
            "run the same command with --resume: ranges done stay and the others are copied, then keys, indexes and "
            "foreign keys are added. The run keeps its plan: a changed source URL value policy (hundred_ns, nul) "
            "applies to the ranges left and is counted here, but changed tables, exclude, schema_map, "
            "unsupported_types or range settings refuse the resume; then run without --resume with --existing drop "
            "to start over"
        )
    if state.target_touched:
        return (
            "the target's tables may be partly created and the ledger does not know the run: run the same command "
            "with --existing drop to start over"
        )
    return "nothing was written to the target: run the same command again once the cause is fixed"


def stopped_report(state: RunState, status: str, reason: str, in_ledger: bool) -> RunReport | None:
    """The report of a run that stopped after its plan (None before: there is nothing to report)."""
    report: RunReport | None = getattr(state, "report", None)
    if report is None:
        return None
    record_tables(state)
    report.status, report.reason, report.next_step = status, reason, next_step(state, in_ledger)
    return report
