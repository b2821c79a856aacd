"""Compare source and target: per-range row counts, or order-independent checksums of every value.

Key ranges are compared with the same predicate on both sides. Physical ranges (ctid pages) mean nothing on the
target, and key ranges cut in one engine's order select other rows in another engine whose order differs (GUIDs,
collations), so such tables are compared whole.

Counts and checksums run as Ray tasks, a bounded number at a time (schedule.run_bounded); a checksum task digests
its range on both sides (digest) and bisects a mismatch to the differing keys (bisection).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import ray

from ray_replicator.bisection import (
    RangeDigest,
    checksum_range_local,
    on_target,
    portable_order,
    servers_can_hash,
)
from ray_replicator.catalog import Table, compare_computed
from ray_replicator.endpoints import cached_source, cached_target, drop_cached
from ray_replicator.engines import capabilities, capabilities_of, engine_of, open_source
from ray_replicator.engines.base import KeyRange, Source, Target
from ray_replicator.retry import TransientError, is_transient, retrying
from ray_replicator.schedule import SYSTEM_RETRIES, run_bounded


@dataclass
class TableCheck:
    schema: str
    table: str
    source_rows: int = 0
    target_rows: int = 0
    mismatched_ranges: list[str] = field(default_factory=list)
    differing_keys: list[str] = field(default_factory=list)
    rows_read: int = 0
    """Rows read from both sides to digest the table."""
    locate_rows_read: int = 0
    """Rows read again from both sides to bisect mismatched ranges down to their keys."""

    @property
    def ok(self) -> bool:
        return not self.mismatched_ranges and self.source_rows == self.target_rows


def comparable_ranges(table: Table, ranges: list[KeyRange], portable: bool = True) -> list[KeyRange]:
    if ranges and (
        (portable and all(r.kind in ("key", "null") for r in ranges)) or (len(ranges) == 1 and ranges[0].kind == "full")
    ):
        return ranges
    return [
        KeyRange(
            schema=table.schema,
            table=table.name,
            index=0,
            kind="full",
            estimated_rows=sum(r.estimated_rows for r in ranges),
            estimated_bytes=sum(r.estimated_bytes for r in ranges),
        )
    ]


def target_read_url(source_url: str, target_url: str) -> str:
    """The URL verify reads a SQL Server target with: the source's value policies (hundred_ns, nul, sql_variant),
    so values the copy kept (100 ns digits, NUL) are read back as kept, not refused or rounded."""
    engine = engine_of(source_url)
    policies = capabilities(engine).read_policies
    if not policies or engine_of(target_url) != engine:
        return target_url
    wanted = {k: v for k, v in parse_qsl(urlsplit(source_url).query) if k.lower() in policies}
    if not wanted:
        return target_url
    parts = urlsplit(target_url)
    query = {k: v for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() not in policies}
    query.update(wanted)
    return urlunsplit(parts._replace(query=urlencode(query)))


COUNTS_IN_FLIGHT = 64
"""Count tasks take no CPU slot (the database counts), but each holds a connection on a server."""


@dataclass(frozen=True)
class _Count:
    """One side's count of one range; `pair` indexes the range in verify_counts."""

    pair: int
    side: str
    table: Table
    rng: KeyRange

    def name(self) -> str:
        return f"counting {self.rng.range_id} on the {self.side} (verify counts)"


# Counts run inside the database: they take no Ray CPU slot.
@ray.remote(num_cpus=0, max_retries=SYSTEM_RETRIES, retry_exceptions=False)
def count_range_task(url: str, is_source: bool, table: Table, rng: KeyRange) -> int:
    try:
        conn: Source | Target = cached_source(url) if is_source else cached_target(url)
        return conn.count_range(table, rng)
    except Exception as exc:
        drop_cached(url)
        if is_transient(exc, capabilities_of(url)):
            raise TransientError(str(exc)) from None
        raise


def verify_counts(
    source_url: str,
    target_url: str,
    pairs: list[tuple[Table, Table, list[KeyRange]]],
) -> list[TableCheck]:
    """Count every range on both sides as Ray tasks and report mismatches per table; a count that lost its
    connection is tried again (run_bounded), one that fails otherwise ends verify with its cause in one line."""
    ranges_counted: list[tuple[TableCheck, KeyRange]] = []
    jobs: list[_Count] = []
    checks: list[TableCheck] = []
    for source_table, target_table, ranges in pairs:
        check = TableCheck(schema=target_table.schema, table=target_table.name)
        checks.append(check)
        for rng in comparable_ranges(source_table, ranges, portable_order(source_table, source_url, target_url)):
            jobs.append(_Count(len(ranges_counted), "source", source_table, rng))
            jobs.append(_Count(len(ranges_counted), "target", target_table, on_target(rng, target_table)))
            ranges_counted.append((check, rng))
    rows: list[dict[str, int]] = [{} for _ in ranges_counted]

    def submit(job: _Count) -> ray.ObjectRef:
        url = source_url if job.side == "source" else target_url
        return count_range_task.remote(url, job.side == "source", job.table, job.rng)

    def done(job: _Count, counted: int) -> None:
        rows[job.pair][job.side] = counted

    run_bounded(jobs, submit, COUNTS_IN_FLIGHT, done, name=_Count.name)
    for (check, rng), both in zip(ranges_counted, rows, strict=True):
        src, dst = both["source"], both["target"]
        check.source_rows += src
        check.target_rows += dst
        if src != dst:
            check.mismatched_ranges.append(f"{rng.range_id}: source {src} rows, target {dst} rows")
    return checks


@ray.remote(max_retries=SYSTEM_RETRIES, retry_exceptions=False)
def checksum_range_task(
    source_url: str,
    target_url: str,
    source_table: Table,
    target_table: Table,
    rng: KeyRange,
    batch_rows: int,
    batch_bytes: int,
) -> RangeDigest:
    return checksum_range_local(source_url, target_url, source_table, target_table, rng, batch_rows, batch_bytes)


def target_tables(target_url: str, tables: list[Table]) -> dict[tuple[str, str], Table]:
    """The target's own catalog entries for the mapped tables, restricted to the columns the source copies and
    the computed columns the target has too (compared, not copied), so range bounds are cast to the target's types
    and the select lists line up column by column."""
    reader = open_source(target_url)
    try:
        found = {(t.schema, t.name): t for t in reader.catalog([], []).tables}
    finally:
        with contextlib.suppress(Exception):
            reader.close()
    stored = reader.stored_name
    out: dict[tuple[str, str], Table] = {}
    for wanted in tables:
        have = found.get((stored(wanted.schema), stored(wanted.name)))
        if have is None:
            out[(wanted.schema, wanted.name)] = wanted
            continue
        by_name = {c.name: c for c in have.columns}
        present = {c.name for c in wanted.columns if stored(c.name) in by_name}
        wanted = compare_computed(wanted, present)
        # the target's types under the source's names: the target engine maps a name again when it quotes it
        cols = [replace(by_name[stored(c.name)], name=c.name) if c.name in present else c for c in wanted.copy_columns]
        found_table = replace(
            have,
            schema=wanted.schema,
            name=wanted.name,
            columns=cols,
            primary_key=wanted.primary_key,
            unique_keys=wanted.unique_keys,
        )
        out[(wanted.schema, wanted.name)] = compare_computed(found_table, present)
    return out


def database_check(
    source_url: str, target_url: str, source_table: Table, target_table: Table, ranges: list[KeyRange]
) -> TableCheck | None:
    """Every range of one table digested by both PostgreSQL servers, on connections of its own (it runs on a
    driver thread while other tables copy). None when the servers cannot hash this table alike or a range
    differs: the worker path then verifies the table and bisects to the keys."""
    if not servers_can_hash(source_url, target_url, [], []):
        return None
    target = target_tables(target_url, [target_table])[(target_table.schema, target_table.name)]
    columns = source_table.copy_columns
    if not servers_can_hash(source_url, target_url, columns, target.copy_columns):
        return None
    source_side = open_source(source_url)
    target_side = open_source(target_url)
    try:
        if source_side.hash_probe() != target_side.hash_probe():
            return None
        check = TableCheck(schema=target_table.schema, table=target_table.name)
        names = [c.name for c in columns]
        for rng in comparable_ranges(source_table, ranges):
            src = source_side.range_digest(source_table, rng, names)
            dst = target_side.range_digest(target, on_target(rng, target), names)
            if src != dst:
                return None
            check.source_rows += src[0]
            check.target_rows += dst[0]
        return check
    finally:
        source_side.close()
        target_side.close()


def verify_checksums(
    source_url: str,
    target_url: str,
    pairs: list[tuple[Table, Table, list[KeyRange]]],
    in_flight: int,
    batch_rows: int = 65_536,
    batch_bytes: int = 16 << 20,
) -> list[TableCheck]:
    """Checksum every range on both sides as Ray tasks (at most in_flight at once); report per table."""
    target_url = target_read_url(source_url, target_url)
    mapped = retrying(
        "reading the target's tables (verify checksums)",
        lambda: target_tables(target_url, [t for _, t, _ in pairs]),
        capabilities_of(target_url),
    )
    checks: list[TableCheck] = []
    jobs: list[tuple[TableCheck, Table, Table, KeyRange]] = []
    for source_table, target_table, ranges in pairs:
        check = TableCheck(schema=target_table.schema, table=target_table.name)
        checks.append(check)
        tgt = mapped[(target_table.schema, target_table.name)]
        src = compare_computed(source_table, {c.name for c in tgt.copy_columns})
        for rng in comparable_ranges(source_table, ranges, portable_order(source_table, source_url, target_url)):
            jobs.append((check, src, tgt, rng))

    def submit(job: tuple[TableCheck, Table, Table, KeyRange]) -> ray.ObjectRef:
        _, src_table, tgt_table, rng = job
        return checksum_range_task.remote(source_url, target_url, src_table, tgt_table, rng, batch_rows, batch_bytes)

    def done(job: tuple[TableCheck, Table, Table, KeyRange], result: RangeDigest) -> None:
        check = job[0]
        check.source_rows += result.source.rows
        check.target_rows += result.target.rows
        check.rows_read += result.rows_read
        check.locate_rows_read += result.locate_rows_read
        if not result.ok:
            where = f"; keys {', '.join(result.keys)}" if result.keys else ""
            more = result.differing_rows - len(result.keys)
            if result.keys and more > 0:
                where += f" and {more} more"
            check.mismatched_ranges.append(
                f"{result.range_id}: {result.differing_rows} row(s) differ (source {result.source.rows} rows, "
                f"target {result.target.rows}){where}"
            )
            check.differing_keys.extend(result.keys)

    run_bounded(
        jobs, submit, max(1, in_flight), done, name=lambda job: f"checksumming {job[3].range_id} (verify checksums)"
    )
    return checks
