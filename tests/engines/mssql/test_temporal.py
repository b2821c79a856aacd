"""datetime2(n), time(n) and datetimeoffset(n) over their whole range (0001-01-01 .. 9999-12-31, every 100 ns,
offsets ±14:00), SQL Server → SQL Server through each reader × writer, and PostgreSQL's timestamp, timestamptz,
time and date edges → SQL Server through each writer. Values are compared with real clients on both sides
(pymssql reading both stand-ins, psycopg reading PostgreSQL), never with our own verify."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from ray_replicator import replicate
from ray_replicator.catalog import Catalog
from ray_replicator.engines import source_url_for
from ray_replicator.engines.base import EngineError, KeyRange, Source, WriteOptions
from ray_replicator.engines.mssql import CAPABILITIES, MssqlSource, MssqlTarget
from ray_replicator.engines.postgres import PostgresSource
from tests.engines.mssql.servers import Server, standin
from tests.helpers import pg_execute

READERS = ("mssql-python", "pymssql")
WRITERS = ("bulkcopy", "bulk-insert", "insert")
SCALES = range(8)


def _fraction(digits: str, scale: int) -> str:
    return f".{digits[:scale]}" if scale else ""


def _row(key: int, when: str, time: str, offset: str) -> str:
    """One row: `when` 'YYYY-MM-DD hh:mm:ss' + 7 digits, `time` 'hh:mm:ss' + 7 digits, each cut to every scale."""
    day, digits = when.split(".")
    clock, time_digits = time.split(".")
    values = [str(key)]
    values += [f"'{day}{_fraction(digits, p)}'" for p in SCALES]
    values += [f"'{clock}{_fraction(time_digits, p)}'" for p in SCALES]
    values += [f"'{day}{_fraction(digits, p)} {offset}'" for p in SCALES]
    return "(" + ", ".join(values) + ")"


EDGE_ROWS = [
    _row(1, "0001-01-01 00:00:00.0000001", "00:00:00.0000001", "-14:00"),
    _row(2, "9999-12-31 23:59:59.9999999", "23:59:59.9999999", "+14:00"),
    _row(3, "0001-01-01 14:00:00.0000000", "00:00:00.0000000", "+14:00"),  # UTC 0001-01-01 00:00
    _row(4, "9999-12-31 09:59:59.9999999", "12:00:00.0000001", "-14:00"),  # UTC 9999-12-31 23:59:59.9999999
    _row(5, "2020-02-29 12:34:56.1234567", "12:34:56.1234567", "+05:45"),
    _row(6, "1677-09-21 00:12:43.1452241", "01:02:03.0000009", "-00:30"),  # just before int64 nanoseconds begin
    _row(7, "2262-04-11 23:47:16.8547759", "23:00:00.9999999", "+00:00"),  # just after they end
    _row(8, "1969-12-31 23:59:59.9999999", "00:00:00.9999999", "-08:00"),
    _row(9, "1500-06-15 01:02:03.0000000", "06:00:00.0000000", "+01:00"),  # no 100 ns digit, outside 1677..2262
]
COLUMNS = (
    [f"d2_{p}" for p in SCALES] + [f"t_{p}" for p in SCALES] + [f"o_{p}" for p in SCALES]
)  # fmt: skip


NO_OFFSET = [c for c in COLUMNS if not c.startswith("o_")]
"""edges_local: the same rows without datetimeoffset, which sends a table through the bulk copy itself (a table
with datetimeoffset goes through INSERT, as the Arrow writer would lose its offset)."""


def _create_edges(server: Server) -> None:
    decl = [f"d2_{p} datetime2({p}) NULL" for p in SCALES]
    decl += [f"t_{p} time({p}) NULL" for p in SCALES]
    decl += [f"o_{p} datetimeoffset({p}) NULL" for p in SCALES]
    local = ", ".join(NO_OFFSET)
    local_decl = ", ".join(d for d in decl if not d.startswith("o_"))
    server.run(
        f"CREATE TABLE dbo.edges (id int NOT NULL PRIMARY KEY, {', '.join(decl)})",
        f"INSERT INTO dbo.edges VALUES {', '.join(EDGE_ROWS)}",
        "INSERT INTO dbo.edges (id) VALUES (10)",
        f"CREATE TABLE dbo.edges_local (id int NOT NULL PRIMARY KEY, {local_decl})",
        f"INSERT INTO dbo.edges_local SELECT id, {local} FROM dbo.edges",
        f"CREATE TABLE dbo.edges_outside (id int NOT NULL PRIMARY KEY, {local_decl})",
        f"INSERT INTO dbo.edges_outside SELECT id, {local} FROM dbo.edges WHERE id IN (1, 2, 3, 9)",
    )


def _as_text(server: Server, name: str) -> list[tuple[Any, ...]]:
    """Every value as SQL Server's own text (CAST to varchar), read by pymssql."""
    cols = ", ".join(f"CAST({c} AS varchar(34))" for c in (COLUMNS if name == "edges" else NO_OFFSET))
    return server.rows(f"SELECT id, {cols} FROM dbo.{name} ORDER BY id")


@pytest.fixture(scope="module")
def edges() -> Iterator[Server]:
    with standin() as server:
        _create_edges(server)
        yield server


def _copy(source: Source, target: MssqlTarget, catalog: Catalog, engine: str, run_id: str, batch_rows: int) -> None:
    options = WriteOptions(run_id=run_id)
    target.prepare(catalog, engine, options)
    ranges = [KeyRange(t.schema, t.name, 0, "full") for t in catalog.tables]
    target.ledger.init(run_id, "p", "s", ranges)
    for table, rng in zip(catalog.tables, ranges, strict=True):
        batches = source.read_range(table, rng, batch_rows, 1 << 20)
        try:
            target.write_range(table, rng, batches, options)
        finally:
            batches.close()  # type: ignore[attr-defined]  # a refused range leaves its reader half-read
        target.finalize_table(table, engine, options)
    target.finalize(catalog, engine, options)


def test_the_edge_rows_are_what_sql_server_holds(edges: Server) -> None:
    """The source holds the edges exactly (so the copies below compare against the real thing)."""
    got = {r[0]: r[1:] for r in _as_text(edges, "edges")}
    assert got[1][COLUMNS.index("d2_7")] == "0001-01-01 00:00:00.0000001"
    assert got[1][COLUMNS.index("d2_0")] == "0001-01-01 00:00:00"
    assert got[2][COLUMNS.index("d2_7")] == "9999-12-31 23:59:59.9999999"
    assert got[2][COLUMNS.index("t_7")] == "23:59:59.9999999"
    assert got[2][COLUMNS.index("o_7")] == "9999-12-31 23:59:59.9999999 +14:00"
    assert got[1][COLUMNS.index("o_7")] == "0001-01-01 00:00:00.0000001 -14:00"
    assert got[3][COLUMNS.index("o_3")] == "0001-01-01 14:00:00.000 +14:00"
    assert got[4][COLUMNS.index("o_7")] == "9999-12-31 09:59:59.9999999 -14:00"
    assert got[10] == (None,) * len(COLUMNS)


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("reader", READERS)
def test_sql_server_to_sql_server_keeps_every_digit_without_options(
    edges: Server, mssql_target_server: Server, reader: str, writer: str
) -> None:
    """No hundred_ns on the URL: the target holds 100 ns, so the copy keeps them (batches of 3 rows, so that the
    bulk copy meets batches with and without rows outside 1677..2262)."""
    source_url = source_url_for(edges.url(reader=reader), mssql_target_server.url())
    assert "hundred_ns=keep" in source_url
    tables = ["dbo.edges", "dbo.edges_local", "dbo.edges_outside"]
    with MssqlSource(source_url) as src, MssqlTarget(mssql_target_server.writer_url(writer)) as dst:
        _copy(src, dst, src.catalog(tables, []), "mssql", "r1", 3)
    for name in ("edges", "edges_local", "edges_outside"):
        assert _as_text(mssql_target_server, name) == _as_text(edges, name), name
    assert len(_as_text(mssql_target_server, "edges_outside")) == 4


def test_a_target_that_holds_no_100ns_gets_them_refused_by_default(edges: Server) -> None:
    """hundred_ns unset, the target PostgreSQL: the first non-zero 100 ns digit stops the read with its key."""
    from ray_replicator.engines.postgres import CAPABILITIES as POSTGRES

    assert not POSTGRES.carries.hundred_ns and CAPABILITIES.carries.hundred_ns
    url = MssqlSource.url_for_target(edges.url(), POSTGRES)
    assert "hundred_ns=refuse" in url
    with MssqlSource(url) as src:
        table = src.catalog(["dbo.edges"], []).tables[0]
        with pytest.raises(EngineError) as err:
            list(src.read_range(table, KeyRange("dbo", "edges", 0, "full"), 100, 1 << 20))
    msg = str(err.value)
    assert "dbo.edges.d2_7" in msg and "id=1" in msg and "0001-01-01 00:00:00.0000001" in msg and "\n" not in msg
    assert "hundred_ns=round" in msg


def test_an_explicit_policy_is_kept_for_any_target(edges: Server) -> None:
    for policy in ("refuse", "round", "keep"):
        url = edges.url(hundred_ns=policy)
        assert MssqlSource.url_for_target(url, CAPABILITIES) == url


def test_replicate_copies_the_edges_exactly_without_options(ray_local: None, edges: Server) -> None:
    """The whole pipeline (copy and checksum verify) with neither URL naming hundred_ns."""
    with standin() as dst:
        report = replicate(
            {
                "source": {"url": edges.url()},
                "target": {"url": dst.url()},
                "tables": ["edges", "edges_local"],
                "report_path": None,
            }
        )
        assert report.status == "ok", report.errors
        assert [t.verified for t in report.tables] == ["yes (checksums)"] * 2
        assert _as_text(dst, "edges") == _as_text(edges, "edges")
        assert _as_text(dst, "edges_local") == _as_text(edges, "edges_local")
        dst.run("UPDATE dbo.edges SET d2_7 = '0001-01-01 00:00:00.0000002' WHERE id = 1")
        from ray_replicator.config import load_settings
        from ray_replicator.pipeline import verify_only

        settings = load_settings(None, {"source": edges.url(), "target": dst.url(), "tables": ["edges"]})
        [(_, _, _, mismatches)] = verify_only(settings)
        assert mismatches and "id=1" in mismatches[0]


# ---------------------------------------------------------------------------------------------- PostgreSQL

PG_EDGES = (
    "CREATE TABLE pg_edges (id int PRIMARY KEY, ts timestamp, ts0 timestamp(0), ts3 timestamp(3), tz timestamptz, "
    "tm time, tm0 time(0), da date)",
    "INSERT INTO pg_edges VALUES "
    "(1, '0001-01-01 00:00:00', '0001-01-01 00:00:00', '0001-01-01 00:00:00', '0001-01-01 00:00:00+00', "
    "'00:00:00', '00:00:00', '0001-01-01'), "
    "(2, '9999-12-31 23:59:59.999999', '9999-12-31 23:59:59', '9999-12-31 23:59:59.999', "
    "'9999-12-31 23:59:59.999999+00', '23:59:59.999999', '23:59:59', '9999-12-31'), "
    "(3, '1969-12-31 23:59:59.999999', '1500-06-15 01:02:03', '2262-04-11 23:47:16.855', "
    "'0001-01-01 14:00:00+14', '12:34:56.123456', '12:34:56', '1970-01-01'), "
    "(4, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
)


@pytest.fixture
def pg_edges(make_database: Callable[[str], str]) -> str:
    return pg_execute(make_database("pgedges"), *PG_EDGES)


def _pg_values(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        return [tuple(r) for r in conn.execute(sql).fetchall()]


def _utc(value: Any) -> Any:
    return value.astimezone(dt.UTC) if isinstance(value, dt.datetime) and value.tzinfo else value


@pytest.mark.parametrize("writer", WRITERS)
def test_postgresql_edges_arrive_exactly(pg_edges: str, mssql_target_server: Server, writer: str) -> None:
    with PostgresSource(pg_edges) as src, MssqlTarget(mssql_target_server.writer_url(writer)) as dst:
        _copy(src, dst, src.catalog(["public.pg_edges"], []), "postgres", "r1", 2)
    cols = "id, ts, ts0, ts3, tz, tm, tm0, da"
    want = _pg_values(pg_edges, f"SELECT {cols} FROM pg_edges ORDER BY id")
    got = mssql_target_server.rows(f"SELECT {cols} FROM public.pg_edges ORDER BY id")
    assert [tuple(_utc(v) for v in r) for r in got] == [tuple(_utc(v) for v in r) for r in want]
    assert want[1][1] == dt.datetime(9999, 12, 31, 23, 59, 59, 999999)
    text = mssql_target_server.rows("SELECT CAST(ts AS varchar(27)), CAST(tz AS varchar(34)) FROM public.pg_edges")
    assert ("0001-01-01 00:00:00.000000", "0001-01-01 00:00:00.000000 +00:00") in text
    assert ("9999-12-31 23:59:59.999999", "9999-12-31 23:59:59.999999 +00:00") in text


@pytest.mark.parametrize(
    ("column", "declared", "value", "shown"),
    [
        ("ts", "timestamp", "'0001-12-31 23:59:59.5 BC'", "0000-12-31 23:59:59.500000"),
        ("ts", "timestamp", "'10000-01-01 00:00:00'", "10000-01-01 00:00:00.000000"),
        ("tz", "timestamptz", "'0001-01-01 00:00:00+01'", "0000-12-31 23:00:00.000000Z"),
        ("tm", "time", "'24:00:00'", "24:00:00"),
        ("da", "date", "'10000-01-01'", "10000-01-01"),
        ("ts", "timestamp", "'infinity'", "infinity"),
        ("da", "date", "'-infinity'", "infinity"),
    ],
)
@pytest.mark.parametrize("writer", WRITERS)
def test_postgresql_values_sql_server_cannot_hold_are_refused_before_writing(
    make_database: Callable[[str], str],
    mssql_target_server: Server,
    writer: str,
    column: str,
    declared: str,
    value: str,
    shown: str,
) -> None:
    """One line naming table, column, key and value; the range is not marked done, so nothing counts as copied."""
    name = "bad"
    url = pg_execute(
        make_database("pgbad"),
        f"CREATE TABLE {name} (id int PRIMARY KEY, {column} {declared})",
        f"INSERT INTO {name} VALUES (1, NULL), (2, {value})",
    )
    with PostgresSource(url) as src, MssqlTarget(mssql_target_server.writer_url(writer)) as dst:
        catalog = src.catalog([f"public.{name}"], [])
        with pytest.raises(EngineError) as err:
            _copy(src, dst, catalog, "postgres", "r1", 1)
        done = dst.ledger.ranges("r1")
    msg = str(err.value)
    assert f"public.{name}.{column}" in msg and "id=2" in msg and shown in msg and "\n" not in msg, msg
    assert "9999-12-31" in msg or "infinity" in msg
    assert all(r["state"] != "done" for r in done.values())


def test_sql_server_refuses_a_datetimeoffset_whose_utc_instant_is_outside_its_range(edges: Server) -> None:
    """MS-BCP 2.1.9: datetimeoffset holds 0001-01-01 .. 9999-12-31 23:59:59.9999999 in UTC; the stand-in agrees."""
    for text in ("0001-01-01 00:00:00 +14:00", "9999-12-31 23:59:59.9999999 -14:00"):
        with pytest.raises(Exception, match="242|out-of-range"):
            edges.rows(f"SELECT CAST('{text}' AS datetimeoffset(7))")


def test_replicate_postgresql_edges_into_sql_server_verifies_equal(
    ray_local: None, pg_edges: str, mssql_target_server: Server
) -> None:
    report = replicate({"source": {"url": pg_edges}, "target": {"url": mssql_target_server.url()}, "report_path": None})
    assert report.status == "ok" and report.tables[0].verified == "yes (checksums)", report.errors
    cols = "id, ts, ts0, ts3, tz, tm, tm0, da"
    want = _pg_values(pg_edges, f"SELECT {cols} FROM pg_edges ORDER BY id")
    got = mssql_target_server.rows(f"SELECT {cols} FROM public.pg_edges ORDER BY id")
    assert [tuple(_utc(v) for v in r) for r in got] == [tuple(_utc(v) for v in r) for r in want]


def test_replicate_sql_server_into_postgresql_refuses_the_100ns_digit_by_default(
    ray_local: None, edges: Server, make_database: Callable[[str], str]
) -> None:
    with pytest.raises(EngineError) as err:
        replicate(
            {
                "source": {"url": edges.url()},
                "target": {"url": make_database("seven_default")},
                "tables": ["edges_local"],
                "report_path": None,
            }
        )
    msg = str(err.value)
    assert "dbo.edges_local.d2_7" in msg and "id=1" in msg and "0001-01-01 00:00:00.0000001" in msg, msg
    assert "hundred_ns=round" in msg and "\n" not in msg


def test_resolving_auto_changes_only_the_hundred_ns_option() -> None:
    from ray_replicator.engines.postgres import CAPABILITIES as POSTGRES

    url = "mssql://sa@h:1/db?password=p@ss%26w&reader=pymssql&HUNDRED_NS=auto"
    assert MssqlSource.url_for_target(url, CAPABILITIES) == (
        "mssql://sa@h:1/db?password=p@ss%26w&reader=pymssql&hundred_ns=keep"
    )
    assert MssqlSource.url_for_target("mssql://sa:p%40ss@h:1/db", POSTGRES) == (
        "mssql://sa:p%40ss@h:1/db?hundred_ns=refuse"
    )
