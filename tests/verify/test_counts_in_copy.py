"""verify = counts during the copy: rows read per range against rows committed, and the target table's own count
after finalize against their sum. Triggers on a pre-existing target table make the target disagree."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from ray_replicator import replicate
from ray_replicator.config import load_settings

SOURCE_DDL = "CREATE TABLE t (id int PRIMARY KEY, v text)"


def _source(make_database: Callable[[str], str], rows: int) -> str:
    url = make_database("counts_src")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SOURCE_DDL)
        conn.execute("INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, %s) g", (rows,))
        conn.execute("ANALYZE t")
    return url


def _target_with_trigger(make_database: Callable[[str], str], body: str) -> str:
    url = make_database("counts_dst")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int, v text)")
        conn.execute(f"CREATE FUNCTION skew() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {body} END $$")
        conn.execute("CREATE TRIGGER skew BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION skew()")
    return url


@pytest.mark.parametrize("rows_per_range", [1_000_000, 2_500], ids=["one-range", "four-ranges"])
def test_counts_pass_on_an_exact_copy(
    ray_local: None, make_database: Callable[[str], str], rows_per_range: int
) -> None:
    source = _source(make_database, 10_000)
    target = make_database("counts_ok")
    settings = load_settings(
        None, {"source": source, "target": target, "verify": "counts", "rows_per_range": rows_per_range}
    )
    report = replicate(settings)
    assert report.status == "ok", report.errors
    assert [(t.table, t.rows, t.source_rows, t.verified) for t in report.tables] == [
        ("public.t", 10_000, 10_000, "yes (counts)")
    ]


def test_rows_a_target_trigger_drops_are_a_range_mismatch(ray_local: None, make_database: Callable[[str], str]) -> None:
    source = _source(make_database, 10_000)
    target = _target_with_trigger(make_database, "IF NEW.id % 100 = 0 THEN RETURN NULL; END IF; RETURN NEW;")
    settings = load_settings(
        None, {"source": source, "target": target, "verify": "counts", "existing": "truncate", "rows_per_range": 5000}
    )
    report = replicate(settings)
    assert report.status == "verify failed"
    assert report.tables[0].verified == "MISMATCH"
    assert sorted(report.errors) == [
        "public.t public.t#0: source 5000 rows, target 4950 rows",
        "public.t public.t#1: source 5000 rows, target 4950 rows",
    ]


def test_rows_a_target_trigger_adds_are_found_by_the_table_count(
    ray_local: None, make_database: Callable[[str], str]
) -> None:
    source = _source(make_database, 3_000)
    target = _target_with_trigger(
        make_database,
        "IF NEW.id % 1000 = 0 AND NEW.v NOT LIKE 'extra%' THEN "
        "INSERT INTO public.t VALUES (-NEW.id, 'extra' || NEW.id); END IF; RETURN NEW;",
    )
    settings = load_settings(None, {"source": source, "target": target, "verify": "counts", "existing": "truncate"})
    report = replicate(settings)
    assert report.status == "verify failed"
    assert report.tables[0].verified == "MISMATCH"
    assert report.errors == ["public.t: source 3000 rows, target 3003 rows"]
