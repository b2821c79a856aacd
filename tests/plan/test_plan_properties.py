"""Planner properties against a real PostgreSQL: ranges never overlap, cover every row, and are even even when
keys are sparse or negative."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ray_replicator.engines.postgres import PostgresSource
from ray_replicator.plan import (
    COPY_ROW_COST_BYTES,
    LEAD_TILES_PER_PART,
    MAX_LEAD_FRACTION,
    MIN_LEAD_FRACTION,
    lead_fraction,
    plan_table_ranges,
    schedule_largest_first,
)


def _keys_by_range(source: PostgresSource, table: Any, ranges: list[Any]) -> list[list[tuple[Any, ...]]]:
    out = []
    for rng in ranges:
        got: list[tuple[Any, ...]] = []
        for batch in source.read_range(table, rng, 10_000, 1 << 20):
            cols = (
                [batch.column(c).to_pylist() for c in table.split_key]
                if table.split_key
                else [batch.column(0).to_pylist()]
            )
            got.extend(zip(*cols, strict=True))
        out.append(got)
    return out


def _norm(value: Any) -> Any:
    """uuid keys come back as 16 bytes or UUID objects; compare them as canonical strings."""
    if isinstance(value, bytes | bytearray) and len(value) == 16:
        return str(uuid.UUID(bytes=bytes(value)))
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str) and len(value) == 32 and all(c in "0123456789abcdef" for c in value):
        return str(uuid.UUID(value))
    return value


def _assert_partition(per_range: list[list[tuple[Any, ...]]], expected: list[tuple[Any, ...]]) -> None:
    seen = Counter(k for keys in per_range for k in keys)
    dupes = [k for k, n in seen.items() if n > 1]
    assert not dupes, f"rows in more than one range: {dupes[:5]}"
    assert Counter(expected) == seen, "the union of the ranges is not every row"


def _load(url: str, ddl: str, rows: list[tuple[Any, ...]], cols: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS t")
        conn.execute(ddl)
        with conn.cursor().copy(f"COPY t ({cols}) FROM STDIN") as cp:
            for row in rows:
                cp.write_row(row)
        conn.execute("ANALYZE t")


@pytest.fixture(scope="module")
def plan_db(pg_base_url: str) -> str:
    from ray_replicator.embedded import recreate_database

    return recreate_database(pg_base_url, "plan_props")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    keys=st.sets(st.integers(min_value=-(2**62), max_value=2**62), min_size=0, max_size=400),
    rows_per_range=st.integers(min_value=1, max_value=120),
)
def test_integer_keys_partition_exactly(plan_db: str, keys: set[int], rows_per_range: int) -> None:
    _load(plan_db, "CREATE TABLE t (id bigint PRIMARY KEY, v text)", [(k, str(k)) for k in keys], "id, v")
    source = PostgresSource(plan_db)
    try:
        table = source.catalog(["public.t"], []).table("public", "t")
        ranges = plan_table_ranges(source, table, rows_per_range, 1 << 40, 64)
        assert [r.index for r in ranges] == list(range(len(ranges)))
        _assert_partition(_keys_by_range(source, table, ranges), [(k,) for k in keys])
        assert sum(source.count_range(table, r) for r in ranges) == len(keys)
    finally:
        source.close()


def test_sparse_negative_keys_give_even_ranges(plan_db: str) -> None:
    keys = list(range(-5000, -4000)) + list(range(0, 50)) + list(range(10**12, 10**12 + 3000, 3))
    _load(plan_db, "CREATE TABLE t (id bigint PRIMARY KEY, v text)", [(k, "x") for k in keys], "id, v")
    source = PostgresSource(plan_db)
    try:
        table = source.catalog(["t"], []).table("public", "t")
        ranges = plan_table_ranges(source, table, 500, 1 << 40, 64)
        counts = [source.count_range(table, r) for r in ranges]
        assert len(ranges) == 5 and sum(counts) == len(keys)
        assert max(counts) <= 1.3 * len(keys) / 5, counts
        assert min(counts) >= 0.7 * len(keys) / 5, counts
    finally:
        source.close()


@pytest.mark.parametrize(
    ("ddl", "cols", "make"),
    [
        (
            'CREATE TABLE t (a int NOT NULL, b text COLLATE "C" NOT NULL, v int, PRIMARY KEY (a, b))',
            "a, b, v",
            lambda i: (i % 7, f"k{i:05d}", i),
        ),
        (
            "CREATE TABLE t (k text PRIMARY KEY, v int)",
            "k, v",
            lambda i: (["Zeta", "alpha", "Äpfel", "ß", "", " x", "emoji😀"][i % 7] + str(i), i),
        ),
        (
            "CREATE TABLE t (k uuid PRIMARY KEY, v int)",
            "k, v",
            lambda i: (f"{(i * 2654435761) % 2**128:032x}", i),
        ),
    ],
    ids=["composite", "text-collation", "uuid"],
)
def test_non_integer_keys_partition_exactly(
    plan_db: str, ddl: str, cols: str, make: Callable[[int], tuple[Any, ...]]
) -> None:
    rows = [make(i) for i in range(2000)]
    _load(plan_db, ddl, rows, cols)
    source = PostgresSource(plan_db)
    try:
        table = source.catalog(["t"], []).table("public", "t")
        ranges = plan_table_ranges(source, table, 300, 1 << 40, 64)
        assert len(ranges) >= 5
        per_range = _keys_by_range(source, table, ranges)
        expected = [tuple(_norm(v) for v in r[: len(table.split_key)]) for r in rows]
        got = [[tuple(_norm(v) for v in k) for k in keys] for keys in per_range]
        _assert_partition(got, expected)
    finally:
        source.close()


def test_unique_key_with_nulls_gets_a_null_range(plan_db: str) -> None:
    rows = [(i if i % 10 else None, i) for i in range(1000)]
    _load(plan_db, "CREATE TABLE t (k int UNIQUE, v int NOT NULL)", rows, "k, v")
    source = PostgresSource(plan_db)
    try:
        table = source.catalog(["t"], []).table("public", "t")
        ranges = plan_table_ranges(source, table, 200, 1 << 40, 64)
        assert ranges[-1].kind == "null"
        assert sum(source.count_range(table, r) for r in ranges) == 1000
        assert source.count_range(table, ranges[-1]) == 100
    finally:
        source.close()


def test_keyless_table_uses_physical_ranges(plan_db: str) -> None:
    rows = [(i, "y" * 200) for i in range(5000)]
    _load(plan_db, "CREATE TABLE t (a int, b text)", rows, "a, b")
    source = PostgresSource(plan_db)
    try:
        table = source.catalog(["t"], []).table("public", "t")
        ranges = plan_table_ranges(source, table, 1000, 1 << 40, 64)
        assert {r.kind for r in ranges} == {"physical"} and len(ranges) >= 3
        per_range = _keys_by_range(source, table, ranges)
        _assert_partition(per_range, [(i,) for i in range(5000)])
    finally:
        source.close()


def test_schedule_largest_first(plan_db: str) -> None:
    _load(plan_db, "CREATE TABLE t (id int PRIMARY KEY, v text)", [(i, "z") for i in range(100)], "id, v")
    source = PostgresSource(plan_db)
    try:
        table = source.catalog(["t"], []).table("public", "t")
        ranges = plan_table_ranges(source, table, 10, 1 << 40, 64)
        ordered = schedule_largest_first(ranges)
        sizes = [r.estimated_bytes for r in ordered]
        assert sizes == sorted(sizes, reverse=True)
    finally:
        source.close()


@pytest.mark.parametrize("fraction", [0.2, 0.31, 0.5])
def test_lead_range_holds_its_share_and_the_ranges_partition(plan_db: str, fraction: float) -> None:
    """A lead range takes `fraction` of the rows; the rest is cut into as many ranges as without a lead; together
    they still cover every row exactly once."""
    _load(plan_db, "CREATE TABLE t (id int PRIMARY KEY, v text)", [(i * 7 - 5000, "z") for i in range(6000)], "id, v")
    source = PostgresSource(plan_db)
    try:
        table = source.catalog(["t"], []).table("public", "t")
        ranges = plan_table_ranges(source, table, 3_000, 1 << 40, 64, lead_fraction=fraction)
        assert [r.lead for r in ranges] == [True, False, False]
        per_range = _keys_by_range(source, table, ranges)
        _assert_partition(per_range, [(i * 7 - 5000,) for i in range(6000)])
        sizes = [len(keys) for keys in per_range]
        assert abs(sizes[0] - fraction * 6000) <= 6000 / (LEAD_TILES_PER_PART * 2), sizes
        assert abs(sizes[1] - sizes[2]) <= 6000 / (LEAD_TILES_PER_PART * 2), sizes
        plain = plan_table_ranges(source, table, 3_000, 1 << 40, 64)
        assert len(plain) == 2 and not any(r.lead for r in plain)
    finally:
        source.close()


def test_lead_fraction_matches_the_other_tables_work() -> None:
    """The lead copies what the other tables take on the other slots, between 20 % and 50 % of its table."""
    from ray_replicator.catalog import Catalog, Table

    def table(name: str, size: int, rows: int = 0) -> Table:
        return Table(schema="public", name=name, columns=[], byte_estimate=size, row_estimate=rows)

    posts, comments, votes = table("Posts", 739), table("Comments", 132), table("Votes", 99)
    catalog = Catalog(engine="postgres", database="so", tables=[posts, comments, votes])
    assert lead_fraction(posts, catalog, slots=2) == pytest.approx(231 / 739)
    # Rows cost beyond their bytes: a million narrow rows weigh like COPY_ROW_COST_BYTES MB more.
    mb = 1_000_000
    posts = table("Posts", 775 * mb, 521_539)
    comments, votes = table("Comments", 138 * mb, 542_526), table("Votes", 74 * mb, 1_420_071)
    catalog = Catalog(engine="postgres", database="so", tables=[posts, comments, votes])
    others = 212 * mb + COPY_ROW_COST_BYTES * (542_526 + 1_420_071)
    want = others / (775 * mb + COPY_ROW_COST_BYTES * 521_539)
    assert lead_fraction(posts, catalog, slots=2) == pytest.approx(want)
    assert want > 212 / 775 + 0.1
    posts, comments, votes = table("Posts", 739), table("Comments", 132), table("Votes", 99)
    catalog = Catalog(engine="postgres", database="so", tables=[posts, comments, votes])
    assert lead_fraction(posts, catalog, slots=8) == MIN_LEAD_FRACTION
    assert lead_fraction(comments, catalog, slots=2) == MAX_LEAD_FRACTION
