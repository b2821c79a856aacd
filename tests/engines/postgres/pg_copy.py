"""Drive a PostgreSQL→PostgreSQL copy through the engine API the way the pipeline does, without Ray."""

from __future__ import annotations

from typing import Any, Literal

from ray_replicator.catalog import Catalog, Table
from ray_replicator.engines.base import KeyRange, WriteOptions
from ray_replicator.engines.postgres import PostgresSource, PostgresTarget, qualified


def plan_ranges(source: PostgresSource, table: Table, parts: int) -> list[KeyRange]:
    """Key ranges from split boundaries (plus a NULL range), physical ranges without a key."""
    keys = table.split_key
    ranges: list[KeyRange] = []
    if keys:
        cuts: list[Any] = source.split_boundaries(table, parts)
        bounds = [None, *cuts, None]
        for i in range(len(bounds) - 1):
            ranges.append(KeyRange(table.schema, table.name, i, "key", keys, lower=bounds[i], upper=bounds[i + 1]))
        if source.has_null_keys(table):
            ranges.append(KeyRange(table.schema, table.name, len(ranges), "null", keys))
        return ranges
    pages = source.physical_pages(table)
    if pages == 0:
        return [KeyRange(table.schema, table.name, 0, "full")]
    step = max(1, -(-pages // parts))
    starts = list(range(0, pages, step))
    for i, lo in enumerate(starts):
        upper = (lo + step,) if i < len(starts) - 1 else None
        ranges.append(KeyRange(table.schema, table.name, i, "physical", (), lower=(lo,), upper=upper))
    return ranges


def copy_database(
    source: PostgresSource,
    target: PostgresTarget,
    path: Literal["arrow", "raw"],
    parts: int = 3,
    options: WriteOptions | None = None,
    include: list[str] | None = None,
) -> Catalog:
    options = options or WriteOptions(run_id="test")
    catalog = source.catalog(include or [], [])
    target.prepare(catalog, "postgres", options)
    for table in catalog.tables:
        for rng in plan_ranges(source, table, parts):
            if path == "raw":
                target.write_range_raw(table, rng, source.read_range_raw(table, rng, 1 << 16), options)
            else:
                target.write_range(table, rng, source.read_range(table, rng, 1000, 1 << 20), options)
        target.finalize_table(table, "postgres", options)
    target.finalize(catalog, "postgres", options)
    return catalog


def table_text(db: Any, schema: str, name: str) -> list[str]:
    """Every row as PostgreSQL's own text form, sorted: equal lists mean equal tables."""
    return [r[0] for r in db.rows(f"SELECT t::text FROM {qualified(schema, name)} t ORDER BY 1")]
