"""Split boundaries and range predicates: ranges are disjoint, cover every row and are about even."""

from __future__ import annotations

import psycopg
import pytest

from ray_replicator.catalog import Table
from ray_replicator.engines.base import KeyRange
from ray_replicator.engines.postgres import PostgresSource, range_predicate, split

from ..conftest import Db
from .pg_copy import plan_ranges


def _counts(source: PostgresSource, table: Table, ranges: list[KeyRange]) -> list[int]:
    return [source.count_range(table, r) for r in ranges]


def _assert_partition(src_db: Db, source: PostgresSource, name: str, parts: int, key: str) -> list[int]:
    """Every row lands in exactly one range: the ranges' row sets are disjoint and their union is the table."""
    table = source.catalog([name], []).table("public", name)
    ranges = plan_ranges(source, table, parts)
    seen: list[str] = []
    for rng in ranges:
        batches = list(source.read_range(table, rng, 10_000, 1 << 20))
        for b in batches:
            seen += [str(v) for v in b.column(key).to_pylist()]
    everything = [str(r[0]) for r in src_db.rows(f'SELECT "{key}" FROM "{name}"')]
    assert sorted(seen) == sorted(everything)
    return _counts(source, table, ranges)


@pytest.mark.parametrize("exact", [True, False])
def test_sparse_negative_integer_keys_split_evenly(
    exact: bool, src_db: Db, source: PostgresSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not exact:
        monkeypatch.setattr(split, "EXACT_SPLIT_ROWS", 100)
    src_db.run("CREATE TABLE sparse (id bigint PRIMARY KEY, v text)")
    # dense negatives, then a huge gap, then sparse large positives: equal-width ranges would be lopsided
    src_db.run(
        "INSERT INTO sparse SELECT g, 'n' FROM generate_series(-30000, -1) g UNION ALL "
        "SELECT g::bigint * 1000000000, 'p' FROM generate_series(1, 30000) g"
    )
    src_db.run("ANALYZE sparse")
    counts = _assert_partition(src_db, source, "sparse", 4, "id")
    assert len(counts) == 4 and sum(counts) == 60000
    assert max(counts) <= 15000 * (1.0 if exact else 1.15)


def test_composite_text_and_uuid_keys(src_db: Db, source: PostgresSource) -> None:
    src_db.run('CREATE TABLE comp (a int, b text COLLATE "C", PRIMARY KEY (a, b))')
    src_db.run("INSERT INTO comp SELECT g % 3, chr(65 + g % 26) || g FROM generate_series(1, 3000) g")
    counts = _assert_partition(src_db, source, "comp", 5, "b")
    assert sum(counts) == 3000 and max(counts) - min(counts) <= 1

    src_db.run("CREATE TABLE uu (id uuid PRIMARY KEY)")
    src_db.run("INSERT INTO uu SELECT gen_random_uuid() FROM generate_series(1, 2000)")
    counts = _assert_partition(src_db, source, "uu", 3, "id")
    assert sum(counts) == 2000 and max(counts) - min(counts) <= 1


def test_text_keys_follow_the_column_collation(src_db: Db, source: PostgresSource) -> None:
    # "C" sorts 'B' < 'a'; a client-side sort or the default collation could disagree: ranges must still
    # partition, because boundaries and predicates both use the column's collation.
    src_db.run('CREATE TABLE words (w text COLLATE "C" PRIMARY KEY)')
    src_db.run("INSERT INTO words SELECT x FROM unnest(ARRAY['a','B','b','A','_','é','E','z','Z','😀','']) x")
    table = source.catalog(["words"], []).table("public", "words")
    cuts = source.split_boundaries(table, 4)
    assert cuts == sorted(cuts, key=lambda t: t[0].encode())  # C collation is byte order
    counts = _assert_partition(src_db, source, "words", 4, "w")
    assert sum(counts) == 11


def test_nullable_unique_key_gets_a_null_range(src_db: Db, source: PostgresSource) -> None:
    src_db.run("CREATE TABLE nk (a int, b int, UNIQUE (a, b))")
    src_db.run("INSERT INTO nk SELECT g, CASE WHEN g % 10 = 0 THEN NULL ELSE g END FROM generate_series(1, 1000) g")
    table = source.catalog(["nk"], []).table("public", "nk")
    assert table.split_key == ("a", "b")
    assert source.has_null_keys(table)
    ranges = plan_ranges(source, table, 3)
    assert ranges[-1].kind == "null"
    counts = _counts(source, table, ranges)
    assert counts[-1] == 100 and sum(counts) == 1000


def test_keyless_table_uses_physical_ranges(src_db: Db, source: PostgresSource) -> None:
    src_db.run("CREATE TABLE heap (a int, b text)")
    src_db.run("INSERT INTO heap SELECT g, repeat('x', 100) FROM generate_series(1, 10000) g")
    table = source.catalog(["heap"], []).table("public", "heap")
    assert table.split_key == ()
    assert source.physical_pages(table) > 10
    ranges = plan_ranges(source, table, 4)
    assert [r.kind for r in ranges] == ["physical"] * 4 and ranges[-1].upper is None
    src_db.run("INSERT INTO heap SELECT g, 'late' FROM generate_series(1, 500) g")  # beyond the planned pages
    counts = _assert_partition(src_db, source, "heap", 4, "a")
    assert sum(counts) == 10500


def test_empty_table_has_no_boundaries(src_db: Db, source: PostgresSource) -> None:
    src_db.run("CREATE TABLE e (id int PRIMARY KEY)")
    table = source.catalog(["e"], []).table("public", "e")
    assert source.split_boundaries(table, 8) == []
    assert not source.has_null_keys(table)


def test_predicates_quote_and_never_inline_values(src_db: Db, source: PostgresSource) -> None:
    src_db.run('CREATE TABLE "we""ird" ("Sel ect" text PRIMARY KEY, "ü" int)')
    table = source.catalog([], []).table("public", 'we"ird')
    rng = KeyRange("public", 'we"ird', 0, "key", ("Sel ect",), lower=("'; DROP TABLE x; --",), upper=("zz",))
    pred = range_predicate(table, rng)
    assert "DROP" not in pred.sql and '"Sel ect"' in pred.sql
    assert pred.values == ("'; DROP TABLE x; --", "zz")
    assert source.count_range(table, rng) == 0
    null = range_predicate(table, KeyRange("public", 'we"ird', 1, "null", ("Sel ect",)))
    assert null.sql == '("Sel ect" IS NULL)'


def test_key_range_uses_the_index(src_db: Db, source: PostgresSource) -> None:
    src_db.run("CREATE TABLE big (a int, b int, v text, PRIMARY KEY (a, b))")
    src_db.run("INSERT INTO big SELECT g / 10, g % 10, 'x' FROM generate_series(1, 200000) g")
    src_db.run("ANALYZE big")
    table = source.catalog(["big"], []).table("public", "big")
    rng = KeyRange("public", "big", 0, "key", ("a", "b"), lower=(100, 5), upper=(200, 0))
    pred = range_predicate(table, rng)
    assert source.count_range(table, rng) == 995
    with psycopg.connect(src_db.url) as conn:
        for i, v in enumerate(pred.values, start=1):
            conn.execute("SELECT set_config(%s, %s, false)", (f"ray_replicator.p{i}", v))
        text = "\n".join(r[0] for r in conn.execute(f"EXPLAIN SELECT * FROM big WHERE {pred.sql}").fetchall())
    assert "Index" in text, text
