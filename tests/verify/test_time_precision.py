"""Checksums see every digit both sides hold: SQL Server's 100 ns digit between two SQL Servers, the offset of a
datetimeoffset between two SQL Servers, and only the instant where one side is PostgreSQL timestamptz."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import psycopg
import pyarrow as pa
import pytest

from ray_replicator import replicate
from ray_replicator.catalog import Column, LogicalType
from ray_replicator.config import load_settings
from ray_replicator.digest import digest_batches
from ray_replicator.pipeline import verify_only
from tests.engines.mssql.servers import Server, standin
from tests.helpers import pg_execute

SEVEN = (
    "CREATE TABLE dbo.t7 (id int NOT NULL PRIMARY KEY, d2 datetime2(7) NULL, tm time(7) NULL, "
    "dto datetimeoffset(7) NULL)",
    "INSERT INTO dbo.t7 VALUES (1, '2020-01-01 10:00:00.1234567', '23:59:59.9999999', "
    "'2020-01-01 10:00:00.1234567 -08:00'), (2, '1999-12-31 23:59:59.0000001', '00:00:00.0000001', "
    "'2000-01-01 00:00:00.0000001 +05:30'), (3, NULL, NULL, NULL), (4, '2262-04-10 00:00:00', '12:00:00', "
    "'0001-01-01 00:00:00 -14:00')",
)


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[Server, Server]]:
    with standin() as src, standin() as dst:
        src.run(*SEVEN)
        yield src, dst


def _verify(source: str, target: str) -> list[str]:
    [(_, _, _, mismatches)] = verify_only(load_settings(None, {"source": source, "target": target, "tables": ["t7"]}))
    return mismatches


def test_a_difference_only_in_the_100ns_digit_is_reported(ray_local: None, pair: tuple[Server, Server]) -> None:
    src, dst = pair
    source = src.url(hundred_ns="keep")
    report = replicate({"source": {"url": source}, "target": {"url": dst.url()}, "report_path": None})
    assert report.status == "ok" and report.tables[0].verified == "yes (checksums)", report.errors
    query = "SELECT id, CAST(d2 AS varchar(27)), CAST(tm AS varchar(16)), CAST(dto AS varchar(34)) FROM dbo.t7"
    assert sorted(dst.rows(query)) == sorted(src.rows(query))

    dst.run("UPDATE dbo.t7 SET d2 = '2020-01-01 10:00:00.1234568' WHERE id = 1")
    [mismatch] = _verify(source, dst.url())
    assert "1 row(s) differ" in mismatch and "id=1" in mismatch
    dst.run(
        "UPDATE dbo.t7 SET d2 = '2020-01-01 10:00:00.1234567' WHERE id = 1",
        "UPDATE dbo.t7 SET tm = '00:00:00.0000002' WHERE id = 2",
    )
    [mismatch] = _verify(source, dst.url())
    assert "1 row(s) differ" in mismatch and "id=2" in mismatch
    dst.run("UPDATE dbo.t7 SET tm = '00:00:00.0000001' WHERE id = 2")
    assert _verify(source, dst.url()) == []

    # Between two datetimeoffset columns the offset is part of the value: the same instant elsewhere differs.
    dst.run("UPDATE dbo.t7 SET dto = '2020-01-01 19:00:00.1234567 +01:00' WHERE id = 1")
    [mismatch] = _verify(source, dst.url())
    assert "1 row(s) differ" in mismatch and "id=1" in mismatch
    dst.run("UPDATE dbo.t7 SET dto = '2020-01-01 10:00:00.1234568 -08:00' WHERE id = 1")
    [mismatch] = _verify(source, dst.url())
    assert "id=1" in mismatch


def test_rounded_to_microseconds_for_postgresql_verifies_equal(
    ray_local: None, pair: tuple[Server, Server], make_database: Callable[[str], str]
) -> None:
    """hundred_ns=round: SQL Server rounds on the way out, PostgreSQL keeps µs, and verify compares those µs;
    datetimeoffset text and timestamptz compare as instants."""
    src, _ = pair
    target = make_database("seven_pg")
    source = src.url(hundred_ns="round")
    report = replicate({"source": {"url": source}, "target": {"url": target}, "report_path": None})
    assert report.status == "ok" and report.tables[0].verified == "yes (checksums)", report.errors
    with psycopg.connect(target, autocommit=True) as conn:
        got = conn.execute("SELECT id, d2::text, dto AT TIME ZONE 'UTC' FROM dbo.t7 ORDER BY id").fetchall()
        assert [(r[0], r[1]) for r in got] == [
            (1, "2020-01-01 10:00:00.123457"),
            (2, "1999-12-31 23:59:59"),
            (3, None),
            (4, "2262-04-10 00:00:00"),
        ]
        # The same instant written with another offset is the same timestamptz: still equal.
        conn.execute("UPDATE dbo.t7 SET dto = '2020-01-01 20:00:00.123457+02' WHERE id = 1")
        assert _verify(source, target) == []
        conn.execute("UPDATE dbo.t7 SET dto = dto + interval '1 microsecond' WHERE id = 2")
    [mismatch] = _verify(source, target)
    assert "1 row(s) differ" in mismatch and "id=2" in mismatch


def test_postgresql_timestamptz_to_sql_server_compares_instants(
    ray_local: None, make_database: Callable[[str], str]
) -> None:
    source = pg_execute(
        make_database("tz_pg"),
        "CREATE TABLE tz (id int PRIMARY KEY, at timestamptz, at3 timestamptz(3))",
        "INSERT INTO tz VALUES (1, '2020-01-01 10:00:00.5+02', '1999-12-31 23:59:59.999-05'), "
        "(2, '0001-01-01 00:00:00+00', NULL), (3, NULL, '2020-06-01 12:00:00+00')",
    )
    with standin() as dst:
        report = replicate({"source": {"url": source}, "target": {"url": dst.url()}, "report_path": None})
        assert report.status == "ok" and report.tables[0].verified == "yes (checksums)", report.errors
        # SQL Server holds the instant with offset +00:00; another offset for the same instant is still equal,
        # because the source (timestamptz) has no offset to compare.
        dst.run("UPDATE public.tz SET at = '2020-01-01 13:00:00.5 +05:00' WHERE id = 1")
        assert _verify_pg(source, dst.url()) == []
        dst.run("UPDATE public.tz SET at3 = '2020-06-01 12:00:00.001 +00:00' WHERE id = 3")
        [mismatch] = _verify_pg(source, dst.url())
        assert "1 row(s) differ" in mismatch and "id=3" in mismatch


def _verify_pg(source: str, target: str) -> list[str]:
    [(_, _, _, mismatches)] = verify_only(load_settings(None, {"source": source, "target": target, "tables": ["tz"]}))
    return mismatches


def test_offset_text_hashes_by_instant_unless_both_sides_keep_offsets() -> None:
    col = Column("x", "datetimeoffset(7)", LogicalType("timestamptz", precision=7))
    a = pa.record_batch([pa.array(["2020-01-01 10:00:00.1234567 +00:00", None])], names=["x"])
    b = pa.record_batch([pa.array(["2020-01-01 15:30:00.1234567 +05:30", None])], names=["x"])
    c = pa.record_batch([pa.array(["2020-01-01 10:00:00.1234568 +00:00", None])], names=["x"])
    assert digest_batches([a], [col]) == digest_batches([b], [col])
    assert digest_batches([a], [col], ["offset"]) != digest_batches([b], [col], ["offset"])
    assert digest_batches([a], [col]) != digest_batches([c], [col])
    instant = pa.record_batch([pa.array([1577872800123456, None], pa.timestamp("us", "UTC"))], names=["x"])
    rounded = pa.record_batch([pa.array(["2020-01-01 10:00:00.123456 +00:00", None])], names=["x"])
    assert digest_batches([instant], [col]) == digest_batches([rounded], [col])
