"""Bisection: a mismatched range is cut in key order and only the differing pieces are read again, down to the
exact keys; the counters show how few rows that took."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import psycopg
import pytest

from ray_replicator import replicate
from ray_replicator.bisection import LEAF_ROWS, checksum_range_local
from ray_replicator.endpoints import drop_cached
from ray_replicator.engines.postgres import PostgresSource
from ray_replicator.plan import plan_catalog
from ray_replicator.verify import verify_checksums

ROWS = 200_000


@pytest.fixture(scope="module")
def copied(ray_local: None, pg_base_url: str) -> tuple[str, str]:
    """A 200k-row table copied and verified equal, then 3 rows changed on the target in different places: one
    value altered, one row deleted, one row only the target has."""
    from ray_replicator.embedded import recreate_database

    source = recreate_database(pg_base_url, "bisect_src")
    target = recreate_database(pg_base_url, "bisect_dst")
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("CREATE TABLE big (id bigint PRIMARY KEY, body text, amount numeric(12,2))")
        conn.execute(f"INSERT INTO big SELECT 2 * g, md5(g::text), g / 3.0 FROM generate_series(1, {ROWS}) g")
        conn.execute("CREATE TABLE pairs (a int, b text, v int, PRIMARY KEY (a, b))")
        conn.execute("INSERT INTO pairs SELECT g % 500, 'k' || (g / 500), g FROM generate_series(1, 60000) g")
        conn.execute("ANALYZE")
    report = replicate({"source": {"url": source}, "target": {"url": target}, "report_path": None})
    assert report.status == "ok", report.errors
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("UPDATE big SET body = 'changed' WHERE id = 10000")
        conn.execute("DELETE FROM big WHERE id = 200000")
        conn.execute("INSERT INTO big VALUES (345677, 'only on the target', 1)")
        conn.execute("UPDATE pairs SET v = -1 WHERE a = 7 AND b = 'k3'")
        conn.execute("DELETE FROM pairs WHERE a = 499 AND b = 'k100'")
    return source, target


def _pairs(source: str, table: str, rows_per_range: int) -> list:
    with PostgresSource(source) as src:
        catalog = src.catalog([f"public.{table}"], [])
        plan = plan_catalog(src, catalog, rows_per_range, 1 << 40, 64)
    t = catalog.table("public", table)
    return [(t, t, plan.ranges_of(t))]


def test_bisection_names_exactly_the_differing_keys_reading_little(copied: tuple[str, str]) -> None:
    source, target = copied
    [check] = verify_checksums(source, target, _pairs(source, "big", 2_000_000), in_flight=2)
    assert (check.source_rows, check.target_rows) == (ROWS, ROWS)
    assert check.differing_keys == ["id=10000", "id=200000", "id=345677"]
    assert len(check.mismatched_ranges) == 1 and "3 row(s) differ" in check.mismatched_ranges[0]
    assert check.rows_read == 2 * ROWS
    # Locating 3 rows re-read 3 small pieces on each side, not the 400k rows of the range.
    assert 0 < check.locate_rows_read <= 3 * 2 * 2 * LEAF_ROWS
    assert check.locate_rows_read < check.rows_read / 10


def test_bisection_cuts_when_the_range_was_digested_whole(copied: tuple[str, str]) -> None:
    """Without a row estimate the range is digested in one piece; the mismatch is then cut level by level."""
    source, target = copied
    [(table, _, ranges)] = _pairs(source, "big", 2_000_000)
    try:
        result = checksum_range_local(source, target, table, table, replace(ranges[0], estimated_rows=0))
    finally:
        drop_cached(source)
        drop_cached(target)
    assert result.differing_rows == 3
    assert result.keys == ("id=10000", "id=200000", "id=345677")
    assert result.rows_read == 2 * ROWS
    # The first cut reads the range once more; after that only the 3 differing pieces are read.
    assert result.rows_read <= result.locate_rows_read <= result.rows_read + 3 * 2 * 2 * LEAF_ROWS


def test_bisection_with_a_composite_key_across_plan_ranges(copied: tuple[str, str]) -> None:
    source, target = copied
    [check] = verify_checksums(source, target, _pairs(source, "pairs", 20_000), in_flight=2)
    assert (check.source_rows, check.target_rows) == (60_000, 59_999)
    assert sorted(check.differing_keys) == ["a=499, b='k100'", "a=7, b='k3'"]
    assert check.locate_rows_read < check.rows_read / 4


def test_bisection_cuts_in_sql_server_order(ray_local: None, make_database: Callable[[str], str]) -> None:
    """The SQL Server source cuts the pieces (NTILE over the range): generated Votes in the stand-in → PostgreSQL."""
    from ray_replicator.engines.mssql import MssqlSource
    from tests.engines.mssql.servers import standin

    target = make_database("bisect_ms_pg")
    with standin(so={"scale": 0.002, "seed": 7, "tables": ["Votes"]}) as src:
        report = replicate({"source": {"url": src.url()}, "target": {"url": target}, "report_path": None})
        assert report.status == "ok", report.errors
        ids = [r[0] for r in src.rows("SELECT Id FROM dbo.Votes ORDER BY Id")]
        assert len(ids) > 4 * LEAF_ROWS
        changed, gone = ids[len(ids) // 3], ids[-2]
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute('UPDATE dbo."Votes" SET "VoteTypeId" = "VoteTypeId" + 1 WHERE "Id" = %s', (changed,))
            conn.execute('DELETE FROM dbo."Votes" WHERE "Id" = %s', (gone,))
        with MssqlSource(src.url()) as source:
            catalog = source.catalog(["dbo.Votes"], [])
            plan = plan_catalog(source, catalog, 10_000_000, 1 << 40, 64)
        table = catalog.table("dbo", "Votes")
        [check] = verify_checksums(src.url(), target, [(table, table, plan.ranges_of(table))], in_flight=2)
    assert check.differing_keys == [f"Id={changed}", f"Id={gone}"]
    assert check.rows_read == 2 * len(ids) - 1
    # Digested as pieces of at most LEAF_ROWS from the start: locating re-read the 2 differing pieces only.
    assert 0 < check.locate_rows_read <= 2 * 2 * LEAF_ROWS
