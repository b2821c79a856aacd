"""The entries to a replication: replicate (a whole run, see ray_replicator.run), plan_only and verify_only."""

from __future__ import annotations

from ray_replicator.choices import compare_tables, ensure_ray, load_catalog, make_plan, map_table
from ray_replicator.config import Settings
from ray_replicator.engines import capabilities, engine_of, open_source, source_url_for
from ray_replicator.events import OnEvent
from ray_replicator.plan import Plan
from ray_replicator.record import SchemaChange
from ray_replicator.report import RunReport
from ray_replicator.run import Run, ignore
from ray_replicator.run_record import planned_schema_changes
from ray_replicator.typemap import apply_type_policy

__all__ = ["make_plan", "plan_only", "replicate", "verify_only"]


def replicate(settings: Settings, on_event: OnEvent | None = None, will_save_report: bool = True) -> RunReport:
    """Run a whole replication and return its report (see Run); raises EngineError/UsageError with one-line
    messages. on_event receives the run's events (ray_replicator.events) as they happen."""
    return Run(settings, on_event or ignore, will_save_report).execute()


def plan_only(settings: Settings) -> tuple[Plan, list[str], list[SchemaChange]]:
    """The plan `run` would make, the tables the filters left out, and (with a target) how the target tables would
    differ; with a target, refused as `run` refuses (policies, unsupported types)."""
    source = open_source(settings.source.resolved_url())
    try:
        catalog, excluded = load_catalog(settings, source)
        target = capabilities(engine_of(settings.target.display())) if settings.target is not None else None
        changes: list[SchemaChange] = []
        if target is not None:
            changes = planned_schema_changes(settings, source, catalog)  # from the catalog before the type policy
            catalog, _ = apply_type_policy(catalog, source.capabilities, target, settings.unsupported_types)
        return make_plan(settings, source, catalog, target), excluded, changes
    finally:
        source.close()


def verify_only(settings: Settings) -> list[tuple[str, int, int, list[str]]]:
    """Compare every selected table range by range without copying: counts, or checksums when settings.verify
    says so."""
    target_url = settings.target_endpoint.resolved_url()
    source_url = source_url_for(settings.source.resolved_url(), target_url)
    source = open_source(source_url)
    try:
        catalog, _ = load_catalog(settings, source)
        catalog, changes = apply_type_policy(
            catalog, source.capabilities, capabilities(engine_of(target_url)), settings.unsupported_types
        )
        plan = make_plan(settings, source, catalog)
    finally:
        source.close()
    ensure_ray(settings)
    pairs = [(t, map_table(t, settings.schema_map, changes), plan.ranges_of(t)) for t in catalog.tables]
    checks = compare_tables(settings, source_url, target_url, pairs)
    return [(f"{c.schema}.{c.table}", c.source_rows, c.target_rows, c.mismatched_ranges) for c in checks]
