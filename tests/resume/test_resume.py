"""Resume: the stored plan keeps typed bounds, only unfinished ranges are copied again, changes are refused, and a
retried range never duplicates rows."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from ray_replicator import replicate
from ray_replicator.config import Settings
from ray_replicator.copy import CopyItem, copy_range_local
from ray_replicator.engines.base import KeyRange, UsageError, WriteOptions
from ray_replicator.engines.postgres import PostgresSource
from ray_replicator.ledger import decode_range, decode_value, encode_range, encode_value
from tests.helpers import pg_table_digest, run_settings

SETUP = [
    "CREATE TABLE t_int (id int PRIMARY KEY, v text, n numeric(12,3), ts timestamptz)",
    "INSERT INTO t_int SELECT g, md5(g::text), g / 7.0, '2020-01-01'::timestamptz + g * interval '1 min' "
    "FROM generate_series(-3000, 9000) g",
    "CREATE TABLE t_text (k text PRIMARY KEY, v int)",
    "INSERT INTO t_text SELECT 'k' || md5(g::text), g FROM generate_series(1, 6000) g",
    "CREATE TABLE t_uuid (u uuid PRIMARY KEY, d date, b bytea)",
    "INSERT INTO t_uuid SELECT md5(g::text)::uuid, date '2000-01-01' + g, decode(md5(g::text), 'hex') "
    "FROM generate_series(1, 5000) g",
    "CREATE TABLE t_heap (a int, b text)",
    "INSERT INTO t_heap SELECT g % 10, 'x' FROM generate_series(1, 3000) g",
    "ANALYZE",
]
TABLES = ("t_int", "t_text", "t_uuid", "t_heap")


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        -(2**63),
        2**70,
        1.5e-300,
        decimal.Decimal("-12345678901234567890.000100"),
        "ünï\x01code ' \"",
        dt.datetime(2262, 4, 12, 0, 0, 0, 1),
        dt.datetime(1, 1, 1, tzinfo=dt.UTC),
        dt.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=dt.timezone(dt.timedelta(hours=-3, minutes=-30))),
        dt.date(9999, 12, 31),
        dt.time(23, 59, 59, 999999),
        dt.timedelta(days=-1, microseconds=5),
        uuid.UUID("00112233-4455-6677-8899-aabbccddeeff"),
        b"\x00\xff\x10",
    ],
)
def test_bounds_keep_type_and_value_through_json(value: Any) -> None:
    import json

    back = decode_value(json.loads(json.dumps(encode_value(value))))
    assert back == value and type(back) is type(value)


def test_range_round_trip() -> None:
    rng = KeyRange("s", "t", 3, "key", ("a", "b"), (1, "x"), (uuid.UUID(int=5), None), 10, 20)
    assert decode_range(encode_range(rng)) == rng


@pytest.fixture
def source_and_target(make_database: Callable[[str], str]) -> tuple[str, str]:
    source = make_database("resume_src")
    with psycopg.connect(source, autocommit=True) as conn:
        for sql in SETUP:
            conn.execute(sql)
    return source, make_database("resume_dst")


def settings_for(source: str, target: str, **extra: Any) -> dict[str, Any]:
    return run_settings(source, target, rows_per_range=1000) | extra


def break_table(target: str, run_id: str, table: str) -> dict[str, Any]:
    """Make a run look as if it died before `table` was copied: rows gone, its ranges planned, run failed.
    Returns the ledger's last update time of every other range."""
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute(f'TRUNCATE "{table}"')
        conn.execute(
            "UPDATE _ray_replicator.ranges SET state = 'planned' WHERE run_id = %s AND table_name = %s", (run_id, table)
        )
        conn.execute("UPDATE _ray_replicator.runs SET state = 'failed' WHERE run_id = %s", (run_id,))
        rows = conn.execute(
            "SELECT range_id, updated_at FROM _ray_replicator.ranges WHERE run_id = %s AND table_name <> %s",
            (run_id, table),
        ).fetchall()
    return dict(rows)


def test_resume_copies_only_unfinished_ranges(ray_local: None, source_and_target: tuple[str, str]) -> None:
    source, target = source_and_target
    first = replicate(settings_for(source, target))
    assert first.status == "ok", first.errors
    untouched = break_table(target, first.run_id, "t_text")

    again = replicate(settings_for(source, target, resume=True))
    assert again.status == "ok", again.errors
    assert again.run_id == first.run_id
    assert all(t.verified == "yes (checksums)" for t in again.tables)
    for table in TABLES:
        assert pg_table_digest(source, "public", table) == pg_table_digest(target, "public", table), table
    with psycopg.connect(target) as conn:
        after: dict[str, Any] = dict(
            conn.execute(
                "SELECT range_id, updated_at FROM _ray_replicator.ranges WHERE run_id = %s AND table_name <> 't_text'",
                (first.run_id,),
            ).fetchall()
        )
        states = conn.execute("SELECT DISTINCT state FROM _ray_replicator.ranges WHERE run_id = %s", (first.run_id,))
        assert {s for (s,) in states} == {"done"}
    assert after == untouched, "ranges done before the resume were copied again"

    with pytest.raises(UsageError, match="nothing to resume"):
        replicate(settings_for(source, target, resume=True))


def test_resume_refuses_changed_schema_or_plan(ray_local: None, source_and_target: tuple[str, str]) -> None:
    source, target = source_and_target
    first = replicate(settings_for(source, target, verify="none"))
    break_table(target, first.run_id, "t_int")

    with pytest.raises(UsageError, match=r"rows_per_range: 1000 -> 2000"):
        replicate(settings_for(source, target, resume=True, rows_per_range=2000))
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("ALTER TABLE t_uuid ADD COLUMN extra int")
    with pytest.raises(UsageError, match=r"source schema changed .*public\.t_uuid"):
        replicate(settings_for(source, target, resume=True))
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("ALTER TABLE t_uuid DROP COLUMN extra")
    done = replicate(settings_for(source, target, resume=True))
    assert done.status == "ok"
    assert pg_table_digest(source, "public", "t_int") == pg_table_digest(target, "public", "t_int")


def test_a_retried_range_does_not_duplicate(ray_local: None, source_and_target: tuple[str, str]) -> None:
    """What a Ray retry does: the same range written twice. The second write finds the done mark and skips."""
    source, target = source_and_target
    first = replicate(settings_for(source, target, verify="none"))
    with PostgresSource(source) as src:
        catalog = src.catalog([], [])
    for method in ("raw", "arrow"):
        for entry in (catalog.table("public", "t_text"), catalog.table("public", "t_heap")):
            rng = KeyRange("public", entry.name, 0, "full" if not entry.split_key else "key", entry.split_key)
            item = CopyItem(source, target, entry, entry, rng, 1000, 1 << 20, method, WriteOptions(run_id=first.run_id))
            copy_range_local(item)
            copy_range_local(item)
    for table in TABLES:
        assert pg_table_digest(source, "public", table) == pg_table_digest(target, "public", table), table


def test_settings_default_checksums() -> None:
    assert Settings.model_validate({"source": {"url": "postgresql://h/db"}}).verify == "checksums"
