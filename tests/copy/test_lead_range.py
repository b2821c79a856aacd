"""Lead ranges: a table split only to balance the copy slots loads its first range alone with TRUNCATE + COPY
FREEZE, and its other ranges start after that range committed. A lead that finds another range of its table
already done (a resume) must not TRUNCATE."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import psycopg
import pytest

from ray_replicator import plan as plan_mod
from ray_replicator.config import load_settings
from ray_replicator.engines import capabilities
from ray_replicator.engines.base import KeyRange, WriteOptions
from ray_replicator.engines.postgres import PostgresSource, PostgresTarget
from ray_replicator.pipeline import make_plan, replicate
from tests.helpers import pg_execute

FROZEN = 0x0300  # HEAP_XMIN_COMMITTED | HEAP_XMIN_INVALID: the tuple was written frozen


def _source(make_database: Callable[[str], str]) -> str:
    return pg_execute(
        make_database("lead_src"),
        "CREATE TABLE big (id int PRIMARY KEY, v text NOT NULL)",
        "INSERT INTO big SELECT g, repeat('b', g % 40) FROM generate_series(1, 20000) g",
        "CREATE TABLE small (id int PRIMARY KEY, v text)",
        "INSERT INTO small SELECT g, 's' || g FROM generate_series(1, 3000) g",
        "ANALYZE",
    )


def _frozen_tuples(url: str, table: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
        row = conn.execute(
            f"SELECT count(*) FROM generate_series(0, pg_relation_size('{table}') / 8192 - 1) AS b, "
            f"heap_page_items(get_raw_page('{table}', b::int)) WHERE t_infomask & {FROZEN} = {FROZEN}"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_lead_range_loads_frozen_before_the_rest(
    ray_local: None, make_database: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plan_mod, "MIN_BALANCE_BYTES", 0)  # split these small tables as a big one would be
    source = _source(make_database)
    target = make_database("lead_dst")
    events: list[tuple[str, dict[str, Any]]] = []
    settings = load_settings(None, {"source": source, "target": target, "verify": "counts", "parallelism": 2})
    report = replicate(settings, on_event=lambda event: events.append((event.name, event.fields())))
    assert report.status == "ok", report.errors
    assert {t.table: (t.rows, t.ranges) for t in report.tables} == {"public.big": (20000, 3), "public.small": (3000, 1)}

    order = [(kind, data["range"]) for kind, data in events if kind in ("range_start", "range")]
    lead_done = order.index(("range", "public.big#0"))
    assert order.index(("range_start", "public.big#1")) > lead_done
    assert order.index(("range_start", "public.big#2")) > lead_done
    lead_rows = next(data["rows"] for kind, data in events if kind == "range" and data["range"] == "public.big#0")
    assert 0.2 * 20000 <= lead_rows <= 0.5 * 20000
    assert _frozen_tuples(target, "big") == lead_rows  # the lead, and only the lead, went in frozen

    with psycopg.connect(source) as a, psycopg.connect(target) as b:
        for table in ("big", "small"):
            query = f"SELECT id, v FROM {table} ORDER BY id"
            assert a.execute(query).fetchall() == b.execute(query).fetchall()


def test_lead_does_not_truncate_rows_of_a_range_already_done(make_database: Callable[[str], str]) -> None:
    source_url = _source(make_database)
    target_url = make_database("lead_resume")
    source, target = PostgresSource(source_url), PostgresTarget(target_url)
    try:
        catalog = source.catalog(["big"], [])
        table = catalog.table("public", "big")
        options = WriteOptions(existing="fail", run_id="run1")
        target.prepare(catalog, "postgres", options)
        edge = (10000,)
        lead = KeyRange(schema="public", table="big", index=0, kind="key", columns=("id",), upper=edge, lead=True)
        rest = KeyRange(schema="public", table="big", index=1, kind="key", columns=("id",), lower=edge)
        target.ledger.init("run1", "plan", "schema", [lead, rest])
        done = target.write_range_raw(table, rest, source.read_range_raw(table, rest), options)
        assert done.rows == 10001
        target.ledger.mark("run1", [rest.range_id], "done")
        again = target.write_range_raw(table, replace(lead), source.read_range_raw(table, lead), options)
        assert again.rows == 9999
    finally:
        source.close()
        target.close()
    with psycopg.connect(target_url) as conn:
        assert conn.execute("SELECT count(*), min(id), max(id) FROM big").fetchone() == (20000, 1, 20000)
    assert _frozen_tuples(target_url, "big") == 0


@pytest.mark.parametrize(("verify", "method", "leads"), [("counts", "auto", 1), ("none", "auto", 1),
                                                         ("checksums", "auto", 0), ("counts", "arrow", 0)])  # fmt: skip
def test_which_runs_plan_a_lead(
    make_database: Callable[[str], str], monkeypatch: pytest.MonkeyPatch, verify: str, method: str, leads: int
) -> None:
    """Only a raw PostgreSQL → PostgreSQL copy can load a range frozen, and with verify = checksums a lead would
    push the split table's digest to the end of the run."""
    monkeypatch.setattr(plan_mod, "MIN_BALANCE_BYTES", 0)
    source_url = _source(make_database)
    settings = load_settings(
        None,
        {"source": source_url, "target": source_url, "verify": verify, "copy_method": method, "parallelism": 2},
    )
    source = PostgresSource(source_url)
    try:
        plan = make_plan(settings, source, source.catalog([], []), capabilities("postgres"))
    finally:
        source.close()
    assert sum(r.lead for r in plan.ranges) == leads
    assert len([r for r in plan.ranges if r.table == "big"]) == 2 + leads


@pytest.mark.parametrize(("medium_rows", "leads"), [(10000, 1), (500, 0)])
def test_a_table_split_for_its_size_leads_with_its_first_range(
    ray_local: None, make_database: Callable[[str], str], medium_rows: int, leads: int
) -> None:
    """Split into 4 ranges by rows_per_range, big's first range leads when the other tables can keep the other
    slot busy for a quarter of big; with only a tiny other table, the four ranges run without waiting."""
    source = _source(make_database)
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("CREATE TABLE medium (id int PRIMARY KEY, v text NOT NULL)")
        conn.execute(f"INSERT INTO medium SELECT g, repeat('m', g % 40) FROM generate_series(1, {medium_rows}) g")
        conn.execute("DROP TABLE small")
        conn.execute("ANALYZE")
    target = make_database("lead_size_dst")
    settings = load_settings(
        None,
        {"source": source, "target": target, "verify": "counts", "parallelism": 2, "rows_per_range": 5000},
    )
    pg = PostgresSource(source)
    try:
        plan = make_plan(settings, pg, pg.catalog([], []), capabilities("postgres"))
    finally:
        pg.close()
    big = [r for r in plan.ranges if r.table == "big"]
    assert len(big) == 4 and [r.lead for r in sorted(big, key=lambda r: r.index)] == [bool(leads), False, False, False]

    events: list[tuple[str, dict[str, Any]]] = []
    report = replicate(settings, on_event=lambda event: events.append((event.name, event.fields())))
    assert report.status == "ok", report.errors
    lead_rows = next(data["rows"] for kind, data in events if kind == "range" and data["range"] == "public.big#0")
    if leads:
        order = [(kind, data["range"]) for kind, data in events if kind in ("range_start", "range")]
        lead_done = order.index(("range", "public.big#0"))
        assert all(order.index(("range_start", f"public.big#{i}")) > lead_done for i in (1, 2, 3))
    assert _frozen_tuples(target, "big") == (lead_rows if leads else 0)
    with psycopg.connect(source) as a, psycopg.connect(target) as b:
        for table in ("big", "medium"):
            query = f"SELECT id, v FROM {table} ORDER BY id"
            assert a.execute(query).fetchall() == b.execute(query).fetchall()
