"""End to end: a generated StackOverflow2010 in the SQL Server stand-in → embedded PostgreSQL through Ray,
compared row by row; and SQL Server → SQL Server through the same pipeline."""

from __future__ import annotations

import datetime as dt
import decimal
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from ray_replicator import replicate
from ray_replicator.synth import stackoverflow as so
from tests.engines.mssql.servers import Server, small_run_settings, standin, synth_rows

SCALE = 0.002
SEED = 7


@pytest.fixture(scope="module")
def so_source() -> Iterator[Server]:
    with standin(so={"scale": SCALE, "seed": SEED, "tables": [t.name for t in so.TABLES]}) as server:
        yield server


def _pg_rows(url: str, table: so.SynthTable) -> list[tuple[Any, ...]]:
    cols = ", ".join(f'"{c}"' for c in table.column_names)
    with psycopg.connect(url) as conn:
        return list(conn.execute(f'SELECT {cols} FROM dbo."{table.name}" ORDER BY "Id"').fetchall())


@pytest.mark.parametrize("reader", ["mssql-python", "pymssql"])
def test_stackoverflow_mssql_to_postgres_row_by_row(
    so_source: Server, make_database: Callable[[str], str], ray_local: None, reader: str
) -> None:
    pg_url = make_database("so")
    report = replicate(small_run_settings(so_source.url(reader=reader), pg_url))
    assert report.status == "ok", report.errors
    counts = so.row_counts(SCALE)
    assert {t.table.split(".")[-1]: t.rows for t in report.tables} == counts
    with psycopg.connect(pg_url) as conn:
        types: dict[str, str] = dict(
            conn.execute(
                "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'dbo'"
            ).fetchall()
        )
        pk = conn.execute(
            "SELECT count(*) FROM pg_constraint WHERE contype = 'p' AND connamespace = 'dbo'::regnamespace"
        ).fetchone()
        nxt = conn.execute("SELECT nextval(pg_get_serial_sequence('dbo.\"Votes\"', 'Id'))").fetchone()
        bodies = conn.execute(
            'SELECT count(*) FILTER (WHERE octet_length("Body") > 2000), '
            'count(*) FILTER (WHERE pg_column_compression("Body") IS NOT NULL) FROM dbo."Posts"'
        ).fetchone()
    assert bodies is not None and bodies[0] > 100 and bodies[1] == 0, "stored uncompressed, as SQL Server does"
    assert types["Posts.Body"] == "text" and types["Comments.Text"] == "character varying"
    assert types["Votes.CreationDate"] == "timestamp without time zone"
    assert pk is not None and pk[0] == len(so.TABLES)
    max_votes = so_source.rows("SELECT IDENT_CURRENT('dbo.Votes')")[0][0]
    assert nxt is not None and nxt[0] == int(max_votes) + 1
    for table in so.TABLES:
        src = synth_rows(so_source, table)
        dst = _pg_rows(pg_url, table)
        assert len(src) == len(dst) == counts[table.name]
        for a, b in zip(src, dst, strict=True):
            assert a == b, f"{table.name} Id={a[0]}: {a!r:.200} != {b!r:.200}"
    empty = sum(
        1 for r in _pg_rows(pg_url, so.table("Users")) if r[so.table("Users").column_names.index("WebsiteUrl")] == ""
    )
    assert empty > 0, "'' must stay '' (and NULL stay NULL)"


@pytest.mark.parametrize("writer", ["bulkcopy", "insert", "bulk-insert"])
def test_stackoverflow_mssql_to_mssql(so_source: Server, ray_local: None, writer: str) -> None:
    bulk = tempfile.mkdtemp(prefix="rr_bulk_")
    with standin(bulk_dir=bulk) as dst:
        opts = {"writer": writer, **({"bulk_dir": bulk} if writer == "bulk-insert" else {})}
        report = replicate(
            small_run_settings(so_source.url(), dst.url(**opts), tables=["dbo.Badges", "dbo.Users", "dbo.LinkTypes"])
        )
        assert report.status == "ok", report.errors
        for name in ("Badges", "Users", "LinkTypes"):
            table = so.table(name)
            assert synth_rows(so_source, table) == synth_rows(dst, table)
        dst.run("INSERT INTO dbo.LinkTypes ([Type]) VALUES ('new')")
        assert (
            dst.rows("SELECT MAX(Id) FROM dbo.LinkTypes")[0][0]
            == int(so_source.rows("SELECT IDENT_CURRENT('dbo.LinkTypes')")[0][0]) + 1
        )


def test_datetime_grid_survives(so_source: Server) -> None:
    rows = so_source.rows("SELECT TOP (50) CreationDate FROM dbo.Votes")
    assert all(isinstance(r[0], dt.datetime) and r[0].microsecond % 1000 == 0 for r in rows)


BULK_HEX_BUG = pytest.mark.xfail(
    reason="stand-in: an empty quoted CSV field loads into varbinary as NULL, not 0x", strict=False
)


@pytest.mark.parametrize("writer", ["bulkcopy", "insert", pytest.param("bulk-insert", marks=BULK_HEX_BUG)])
def test_postgres_to_mssql(make_database: Callable[[str], str], ray_local: None, writer: str) -> None:
    pg_url = make_database("pg2ms")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "CREATE SCHEMA app; CREATE TABLE app.things (id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
            "big bigint, amount numeric(12,2), name varchar(20) NOT NULL, body text, flag boolean, day date, "
            "at timestamp(6), at_tz timestamptz, guid uuid, raw bytea, r real, d double precision)"
        )
        conn.execute(
            "INSERT INTO app.things (id, big, amount, name, body, flag, day, at, at_tz, guid, raw, r, d) VALUES "
            "(-5, -9223372036854775808, 7082761.69, '', NULL, true, '0001-01-01', '2020-01-01 10:00:00.123456', "
            "'2020-01-01 10:00:00.5+02', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\\x00ff', 1.5, 0.1), "
            "(7, NULL, NULL, 'λ😀', 'x\r\ny', NULL, NULL, NULL, NULL, NULL, '\\x', NULL, NULL)"
        )
        conn.execute("SELECT setval(pg_get_serial_sequence('app.things', 'id'), 41)")
        conn.execute("CREATE TABLE app.tags (name text PRIMARY KEY); INSERT INTO app.tags VALUES ('a'), ('B'), ('')")
    bulk = tempfile.mkdtemp(prefix="rr_bulk_")
    with standin(bulk_dir=bulk) as dst:
        opts = {"writer": writer, **({"bulk_dir": bulk} if writer == "bulk-insert" else {})}
        report = replicate(small_run_settings(pg_url, dst.url(**opts)))
        assert report.status == "ok", report.errors
        assert all(t.verified == "yes (checksums)" for t in report.tables)
        rows = dst.rows(
            "SELECT id, big, amount, name, body, flag, day, at, at_tz, CAST(guid AS nvarchar(36)), raw, r, d "
            "FROM app.things ORDER BY id"
        )
        assert rows[0][:8] == (
            -5,
            -9223372036854775808,
            decimal.Decimal("7082761.69"),
            "",
            None,
            True,
            dt.date(1, 1, 1),
            dt.datetime(2020, 1, 1, 10, 0, 0, 123456),
        )
        assert rows[0][8] == dt.datetime(2020, 1, 1, 8, 0, 0, 500000, tzinfo=dt.UTC)
        assert rows[0][9].lower() == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
        assert rows[0][10:] == (b"\x00\xff", 1.5, 0.1)
        assert rows[1][:5] == (7, None, None, "λ😀", "x\r\ny") and rows[1][10] == b""
        assert sorted(r[0] for r in dst.rows("SELECT name FROM app.tags")) == ["", "B", "a"]
        dst.run("INSERT INTO app.things (name) VALUES (N'next')")
        assert dst.rows("SELECT MAX(id) FROM app.things")[0][0] == 42


def test_large_values_are_stored_as_sql_server_stores_them(
    make_database: Callable[[str], str], ray_local: None
) -> None:
    """A table SQL Server keeps uncompressed (the default) loads into PostgreSQL without TOAST compression; one
    with DATA_COMPRESSION = PAGE is compressed by PostgreSQL as usual. Either way the values are equal."""
    words = "lorem ipsum dolor sit amet, consectetur adipiscing elit, 😀 "
    rows = [(i, f"{i} " + words * 60) for i in range(1, 201)]
    values = ", ".join(f"({i}, N'{body}')" for i, body in rows)
    with standin() as server:
        server.run(
            "CREATE TABLE dbo.plain (id int NOT NULL PRIMARY KEY, body nvarchar(max) NOT NULL)",
            "CREATE TABLE dbo.packed (id int NOT NULL PRIMARY KEY, body nvarchar(max) NOT NULL) "
            "WITH (DATA_COMPRESSION = PAGE)",
            f"INSERT INTO dbo.plain (id, body) VALUES {values}",
            f"INSERT INTO dbo.packed (id, body) VALUES {values}",
        )
        pg_url = make_database("large_values")
        report = replicate(small_run_settings(server.url(), pg_url, verify="checksums"))
    assert report.status == "ok", report.errors
    with psycopg.connect(pg_url) as conn:
        for table in ("plain", "packed"):
            got = conn.execute(f"SELECT id, body FROM dbo.{table} ORDER BY id").fetchall()
            assert got == rows, table
        compressed = {
            table: conn.execute(
                f"SELECT count(*) FROM dbo.{table} WHERE pg_column_compression(body) IS NOT NULL"
            ).fetchone()
            for table in ("plain", "packed")
        }
        options = conn.execute(
            "SELECT count(*) FROM pg_class WHERE reloptions IS NOT NULL AND relname IN ('plain', 'packed')"
        ).fetchone()
    assert compressed == {"plain": (0,), "packed": (200,)}
    assert options == (0,)
