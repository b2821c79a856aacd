"""What a run decides before it copies, from its settings and the source: the tables, their names in the target,
the plan, the copy method, the memory caps and the Ray it runs on. `replicate`, `plan_only` and `verify_only`
decide alike because they all decide here."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace

import ray

from ray_replicator import local_ray
from ray_replicator.budget import MB, BudgetConfig
from ray_replicator.catalog import Catalog, Table, chosen_by, table_matches
from ray_replicator.config import Settings
from ray_replicator.engines.base import Capabilities, EngineError, KeyRange, Source, UsageError
from ray_replicator.plan import Plan, plan_catalog
from ray_replicator.preflight import check_policies
from ray_replicator.record import SchemaChange
from ray_replicator.typemap import text_twin
from ray_replicator.verify import TableCheck, portable_order, verify_checksums, verify_counts


def ensure_ray(settings: Settings) -> None:
    """Join the cluster named by --address/RAY_ADDRESS, else start a private local Ray (see local_ray)."""
    local_ray.ensure_ray(settings.ray_address, settings.ray_num_cpus)


def select_tables(
    database: str, names: list[tuple[str, str]], include: list[str], exclude: list[str]
) -> tuple[list[tuple[str, str]], list[str]]:
    """Apply glob filters over 'schema.table' and bare 'table' to the source's table names; an include pattern
    matching nothing is an error, so a typo never turns into a run that copies nothing and says it succeeded."""
    if not names:
        raise UsageError(f"the source database {database!r} has no tables; check the database name in the source URL")
    known = ", ".join(f"{s}.{n}" for s, n in names[:12]) + (", …" if len(names) > 12 else "")
    for pattern in include:
        if not any(table_matches(s, n, [pattern]) for s, n in names):
            raise UsageError(f"no source table matches --tables {pattern!r}; source tables are: {known}")
    chosen, excluded = [], []
    for schema, name in names:
        if chosen_by(schema, name, include, exclude):
            chosen.append((schema, name))
        else:
            excluded.append(f"{schema}.{name}")
    if not chosen:
        raise UsageError(
            f"--tables and --exclude leave no table to copy of the {len(names)} in {database!r}; "
            f"source tables are: {known}"
        )
    return chosen, excluded


def map_table(table: Table, schema_map: dict[str, str], changes: list[SchemaChange] | None = None) -> Table:
    """The target-side twin of a source table: same columns, schema renamed by schema_map, and the columns the
    type policy carries as text (type_text changes) typed as the target's text."""
    twin = text_twin(table, changes or [])
    fks = [replace(fk, ref_schema=schema_map.get(fk.ref_schema, fk.ref_schema)) for fk in twin.foreign_keys]
    return replace(twin, schema=schema_map.get(twin.schema, twin.schema), foreign_keys=fks)


def choose_tables(settings: Settings, source: Source) -> tuple[list[tuple[str, str]], list[str]]:
    """The chosen and the excluded tables, by the filters on table names alone; before that, a policy the target
    cannot hold is refused (preflight.check_policies)."""
    check_policies(settings)
    database, names = source.table_names()
    return select_tables(database, names, settings.tables, settings.exclude)


def load_catalog(
    settings: Settings, source: Source, filtered: tuple[list[tuple[str, str]], list[str]] | None = None
) -> tuple[Catalog, list[str]]:
    """The filters go first (choose_tables, or its answer as `filtered`); then only the chosen tables' details are
    read, so a table left out (a sql_variant column, no SELECT for this user, a type no policy takes) never stops
    the run."""
    chosen, excluded = filtered or choose_tables(settings, source)
    catalog = source.catalog(settings.tables, settings.exclude)
    got = {(t.schema, t.name) for t in catalog.tables}
    missing = [f"{s}.{n}" for s, n in chosen if (s, n) not in got]
    if missing:
        raise EngineError(f"source tables {', '.join(missing[:5])} were dropped while the catalog was read; run again")
    return catalog, excluded


def copy_slots(settings: Settings) -> int:
    """Copy tasks expected in flight: the setting, else the cluster's CPUs once Ray runs, else this machine's."""
    if settings.parallelism:
        return settings.parallelism
    if ray.is_initialized():
        return max(1, int(ray.cluster_resources().get("CPU", 1)))
    return os.cpu_count() or 1


def make_plan(
    settings: Settings,
    source: Source,
    catalog: Catalog,
    target: Capabilities | None = None,
    slots: int | None = None,
) -> Plan:
    """target: the engine the rows go to, when known. slots: the copy slots to plan for (copy_slots, taken before
    a Ray starting in the background could change its answer mid-plan).

    A raw PostgreSQL → PostgreSQL copy gets lead ranges unless it verifies checksums: the split table then finishes
    last, and its digest, taken after its finalize, can no longer overlap other tables' copies. Measured at scale
    0.14 on 2 cores, interleaved runs: verify counts 8.4-10.3 s (median 9.55) with lead ranges against 9.7-11.4 s
    (median 10.54) without; verify checksums 16.9-19.0 s with against 14.3-17.2 s without.

    Into SQL Server, a range retried after a worker died is cleared with its own predicate, evaluated by SQL
    Server; so a keyless table is one range there (no physical range can be selected again), and so is a table
    from another engine whose key SQL Server orders otherwise (text under its collation, GUIDs; see plan_catalog).
    """
    lead = (
        target is not None
        and settings.verify != "checksums"
        and choose_method(settings, source.capabilities, target) == "raw"
    )
    refills = target is not None and target.refills_ranges_by_predicate
    split_by_key: Callable[[Table], bool] | None = None
    if target is not None and refills and source.engine != target.name:
        source_shown, target_shown = settings.source.display(), settings.target_endpoint.display()

        def split_by_key(table: Table) -> bool:
            return portable_order(table, source_shown, target_shown)

    return plan_catalog(
        source,
        catalog,
        settings.rows_per_range,
        settings.bytes_per_range,
        settings.max_ranges_per_table,
        slots=slots or copy_slots(settings),
        lead=lead,
        physical=not refills,
        split_by_key=split_by_key,
    )


def choose_method(settings: Settings, source: Capabilities, target: Capabilities) -> str:
    """raw relays bytes when both engines share a raw format (else, even when asked for, rows go as Arrow)."""
    raw = source.raw_format is not None and source.raw_format == target.raw_format
    if settings.copy_method != "auto":
        return settings.copy_method if raw else "arrow"
    return "raw" if raw else "arrow"


def budget_config(settings: Settings) -> BudgetConfig:
    """The caps for copy tasks; the per-node actor only when the node cap can bind (copy tasks take one CPU each,
    so a node runs at most its CPU count of them at once) or when spill files need a shared cap."""
    task_cap = settings.memory_cap_mb * MB
    node_cap = settings.node_memory_cap_mb * MB
    widest = max((int(n.get("Resources", {}).get("CPU", 0)) for n in ray.nodes() if n.get("Alive")), default=0)
    return BudgetConfig(
        task_cap=task_cap,
        node_cap=node_cap,
        spill_dir=str(settings.spill_dir) if settings.spill_dir is not None else None,
        spill_cap=settings.spill_cap_mb * MB,
        node_actor=settings.spill_dir is not None or widest == 0 or widest * task_cap > node_cap,
    )


def ray_slots(settings: Settings) -> int:
    """Copy (or checksum) tasks in flight once Ray runs: the setting, else the cluster's CPUs."""
    return settings.parallelism or max(1, int(ray.cluster_resources().get("CPU", 2)))


def compare_tables(
    settings: Settings, source_url: str, target_url: str, pairs: list[tuple[Table, Table, list[KeyRange]]]
) -> list[TableCheck]:
    """Compare each (source table, target table, ranges) pair as settings.verify says: checksums or counts."""
    if settings.verify == "checksums":
        in_flight = ray_slots(settings)
        return verify_checksums(source_url, target_url, pairs, in_flight, settings.batch_rows, settings.batch_bytes)
    return verify_counts(source_url, target_url, pairs)
