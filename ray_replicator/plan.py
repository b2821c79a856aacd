"""Split every table into key ranges of about the configured rows/bytes, and order them largest first.

Planning runs on the driver and asks the source for boundaries in the database's own sort order, so the same
predicates that cut the ranges also select their rows: ranges never overlap and together cover every row
(a separate range holds NULL split keys, the first and last ranges are open-ended).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ray_replicator.catalog import Catalog, Table
from ray_replicator.engines.base import KeyRange, Source


@dataclass
class Plan:
    catalog: Catalog
    ranges: list[KeyRange] = field(default_factory=list)

    def ranges_of(self, table: Table) -> list[KeyRange]:
        return [r for r in self.ranges if r.schema == table.schema and r.table == table.name]

    def plan_hash(self) -> str:
        """A digest of the tables' shapes and the ranges: resume refuses to continue when it changes."""
        payload = {
            "schema": schema_hash(self.catalog),
            "ranges": [_range_key(r) for r in sorted(self.ranges, key=lambda r: (r.schema, r.table, r.index))],
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def schema_hash(catalog: Catalog) -> str:
    """A digest of every table's columns and keys (not of row estimates, which drift)."""
    shape = [
        {
            "table": [t.schema, t.name],
            "columns": [[c.name, c.native_type, c.nullable] for c in t.columns],
            "pk": list(t.primary_key.columns) if t.primary_key else None,
        }
        for t in sorted(catalog.tables, key=lambda t: (t.schema, t.name))
    ]
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]


def _range_key(r: KeyRange) -> dict[str, Any]:
    d = asdict(r)
    d.pop("estimated_rows")
    d.pop("estimated_bytes")
    return d


def parts_for(table: Table, rows_per_range: int, bytes_per_range: int, max_ranges: int) -> int:
    """How many ranges a table deserves: enough that none exceeds the rows or the bytes target."""
    by_rows = math.ceil(max(table.row_estimate, 0) / rows_per_range)
    by_bytes = math.ceil(max(table.byte_estimate, 0) / bytes_per_range)
    return max(1, min(max_ranges, max(by_rows, by_bytes)))


def plan_table_ranges(
    source: Source,
    table: Table,
    rows_per_range: int,
    bytes_per_range: int,
    max_ranges: int,
    lead_fraction: float | None = None,
    physical: bool = True,
    by_key: bool = True,
) -> list[KeyRange]:
    """Key (or physical) ranges of about rows_per_range/bytes_per_range. With lead_fraction, a key-split table
    gets a lead range holding that share of its rows, and the rest is cut into the same number of ranges as
    without it (see plan_catalog)."""
    parts = parts_for(table, rows_per_range, bytes_per_range, max_ranges)
    key = table.split_key if by_key else ()
    ranges: list[KeyRange] = []

    def add(kind: str, lower: tuple[Any, ...] | None = None, upper: tuple[Any, ...] | None = None) -> None:
        ranges.append(
            KeyRange(
                schema=table.schema,
                table=table.name,
                index=len(ranges),
                kind=kind,  # type: ignore[arg-type]
                columns=key if kind in ("key", "null") else (),
                lower=lower,
                upper=upper,
            )
        )

    share_of_lead = lead_fraction if parts > 1 and key else None
    if parts > 1 and key:
        tile_starts = source.split_boundaries(table, LEAD_TILES_PER_PART * parts) if share_of_lead else []
        tiles = len(tile_starts) + 1
        if tiles != LEAD_TILES_PER_PART * parts:  # no lead, or fewer distinct keys than tiles: plain ranges
            share_of_lead = None
        if share_of_lead is not None:
            first = min(tiles - parts, max(1, round(share_of_lead * tiles)))
            bounds = [tile_starts[first + round((tiles - first) * j / parts) - 1] for j in range(parts)]
        else:
            bounds = source.split_boundaries(table, parts)
        edges: list[tuple[Any, ...] | None] = [None, *bounds, None]
        for lo, hi in zip(edges, edges[1:], strict=False):
            add("key", lo, hi)
        nullable = any(table.column(c).nullable for c in key)
        if nullable and source.has_null_keys(table):
            add("null")
    elif parts > 1 and not table.split_key and physical and (pages := source.physical_pages(table)) > 1:
        count = min(parts, pages)
        cuts = sorted({round(i * pages / count) for i in range(1, count)})
        page_edges: list[int | None] = [0, *cuts, None]
        for lo_page, hi_page in zip(page_edges, page_edges[1:], strict=False):
            add("physical", (lo_page,), None if hi_page is None else (hi_page,))
    else:
        add("full")
    share = len(ranges)
    weights = [1.0 / share] * share
    if share_of_lead is not None:
        rest = share - 1
        weights = [share_of_lead] + [(1 - share_of_lead) / rest] * rest
    return [
        KeyRange(
            **{
                **asdict(r),
                "estimated_rows": int(table.row_estimate * w),
                "estimated_bytes": int(table.byte_estimate * w),
                "lead": share_of_lead is not None and r.index == 0,
            }
        )
        for r, w in zip(ranges, weights, strict=True)
    ]


def schedule_largest_first(ranges: list[KeyRange]) -> list[KeyRange]:
    """Big ranges first so the last task to finish is a short one; ties keep table order."""
    return sorted(ranges, key=lambda r: (-r.estimated_bytes, -r.estimated_rows, r.schema, r.table, r.index))


MIN_BALANCE_BYTES = 64 * 1024 * 1024


def balanced_bytes_per_range(catalog: Catalog, bytes_per_range: int, slots: int) -> int:
    """A table bigger than its fair share of the copy slots would be the run's critical path while other slots
    idle, so ranges are also capped at total bytes / slots (never below 64 MB: tiny ranges cost more than they
    save, and COPY of a whole table is cheaper than COPY of a key range)."""
    if slots < 2:
        return bytes_per_range
    total = sum(max(t.byte_estimate, 0) for t in catalog.tables)
    return max(MIN_BALANCE_BYTES, min(bytes_per_range, total // slots + 1))


LEAD_TILES_PER_PART = 20
"""Resolution of a lead range's share: the key is cut into this many tiles per range."""
MIN_LEAD_FRACTION = 0.2
MAX_LEAD_FRACTION = 0.5


COPY_ROW_COST_BYTES = 50
"""What one row costs a COPY beyond its bytes, in bytes. Fitted to one-stream copies at scale 0.14 (2 cores):
Comments (138 MB, 0.54 M rows, 1.47 s) and Votes (74 MB, 1.42 M rows, 1.31 s) give 8.8 ms per MB and 0.46 s per
million rows, which also predicts the Posts lead (240 MB, 0.16 M rows: 2.19 s against 2.07-2.20 s measured)."""


def copy_cost(table: Table) -> int:
    """A table's COPY time in bytes-equivalent: narrow tables of many rows take longer than their bytes say."""
    return max(table.byte_estimate, 0) + COPY_ROW_COST_BYTES * max(table.row_estimate, 0)


def others_share(table: Table, catalog: Catalog, slots: int) -> float:
    """How much of this table one stream copies while the other tables keep the other slots busy."""
    own = max(copy_cost(table), 1)
    others = sum(copy_cost(t) for t in catalog.tables if t is not table)
    return others / ((slots - 1) * own)


def lead_fraction(table: Table, catalog: Catalog, slots: int) -> float:
    """The share of a table its lead range copies: about what the other tables take on the other slots, so the
    lead (one stream) and they end together and the rest of the table then fills every slot."""
    return min(MAX_LEAD_FRACTION, max(MIN_LEAD_FRACTION, others_share(table, catalog, slots)))


def plan_catalog(
    source: Source,
    catalog: Catalog,
    rows_per_range: int,
    bytes_per_range: int,
    max_ranges: int,
    slots: int = 1,
    lead: bool = False,
    physical: bool = True,
    split_by_key: Callable[[Table], bool] | None = None,
) -> Plan:
    """lead: the target loads a lead range frozen (PostgreSQL's COPY FREEZE), and the table's other ranges wait
    for it. Splitting costs a PostgreSQL table its COPY FREEZE, and the key build, ANALYZE and count afterwards
    set hint bits on every page, each written to the WAL in full after a checkpoint when data checksums are on
    (measured on Posts at scale 0.14: 124,590 full-page images and 1,197 MB of WAL split in two, 1,537 and 623 MB
    in one frozen range).

    A table split only to balance the slots gets a lead of lead_fraction; a table split for its size makes its
    first range the lead, when the other tables can keep the other slots busy that long.

    physical: whether a keyless table may be cut into physical ranges (PostgreSQL ctid pages). Not for a SQL
    Server target: a retried range is cleared there by deleting its rows, and a heap's rows carry nothing that
    says which physical range of the source they came from, while the default bulk copy runs on a connection
    of its own, so its rows cannot commit together with the range's ledger mark either. One range for the whole
    table is cleared by emptying the table, whatever the writer.

    split_by_key: whether a keyed table may be cut into key ranges (all may when None). Not, for a SQL Server
    target, when the key is ordered otherwise there than at the source (text under another collation, GUIDs):
    the target's range predicate would clear other ranges' rows on a retry and leave some of its own."""
    cap = balanced_bytes_per_range(catalog, bytes_per_range, slots)
    ranges: list[KeyRange] = []
    for table in catalog.tables:
        fraction = None
        first_leads = False
        if lead and slots > 1:
            by_size = parts_for(table, rows_per_range, bytes_per_range, max_ranges)
            if by_size == 1:
                fraction = lead_fraction(table, catalog, slots)
            else:
                first_leads = others_share(table, catalog, slots) * by_size >= 1
        by_key = split_by_key is None or split_by_key(table)
        planned = plan_table_ranges(source, table, rows_per_range, cap, max_ranges, fraction, physical, by_key)
        if first_leads and len(planned) > 1 and planned[0].kind == "key":
            planned[0] = replace(planned[0], lead=True)
        ranges.extend(planned)
    return Plan(catalog=catalog, ranges=schedule_largest_first(ranges))
