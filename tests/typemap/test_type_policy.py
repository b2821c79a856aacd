"""The unsupported_types setting: a column whose type has no mapping to the target is refused before anything is
written (exit 2, one line naming table, column, type and the setting), left out with a warning, or copied as text."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import psycopg
import pytest

from ray_replicator.catalog import Catalog, Column, Key, LogicalType, Table
from ray_replicator.engines import capabilities
from ray_replicator.engines.base import UsageError
from ray_replicator.engines.mssql.catalog import declared
from ray_replicator.record import SchemaChange
from ray_replicator.typemap import apply_type_policy
from tests.engines.mssql.servers import Server
from tests.helpers import assert_one_line_error, cli
from tests.pgserver import PasswordPostgres


@pytest.fixture
def pg_source(pwpg: PasswordPostgres, fresh_db: str) -> str:
    """hosts(id, name, addr inet, seen tsvector) and keyed(addr inet primary key)."""
    pwpg.sql(
        "CREATE TABLE hosts (id int PRIMARY KEY, name text NOT NULL, addr inet, seen tsvector)",
        "INSERT INTO hosts VALUES (1, 'a', '192.168.0.1', 'x y'), (2, 'b', NULL, NULL), (3, '', '::1/128', 'z')",
        database=fresh_db.rsplit("/", 1)[1],
    )
    return fresh_db


def _user_tables(server: Server) -> list[tuple[str, str]]:
    return server.rows(
        "SELECT s.name, t.name FROM sys.tables t JOIN sys.schemas s ON s.schema_id = t.schema_id ORDER BY 1, 2"
    )


def run(source: str, target: Server, *extra: str, policy: str | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI copying `source` to the SQL Server stand-in, with unsupported_types = `policy` from the
    environment when given."""
    env = {"RAY_REPLICATOR_UNSUPPORTED_TYPES": policy} if policy is not None else None
    return cli("run", "--source", source, "--target", target.url(), *extra, env=env)


def test_fail_refuses_before_anything_is_written(pg_source: str, ms_target: Server) -> None:
    done = run(pg_source, ms_target, "--tables", "hosts")
    line = assert_one_line_error(done, 2, "public.hosts.addr", "inet", "unsupported_types = skip-column")
    assert "text" in line and "exclude the table" in line
    assert _user_tables(ms_target) == []


def test_plan_refuses_as_run_does(pg_source: str, ms_target: Server) -> None:
    """`plan` with a target applies unsupported_types too, so it refuses what `run` would refuse."""
    done = cli("plan", "--source", pg_source, "--tables", "hosts", env={"RAY_REPLICATOR_TARGET__URL": ms_target.url()})
    assert_one_line_error(done, 2, "public.hosts.addr", "inet", "unsupported_types = skip-column")
    assert _user_tables(ms_target) == []
    skipped = cli(
        "plan",
        "--source",
        pg_source,
        "--tables",
        "hosts",
        env={"RAY_REPLICATOR_TARGET__URL": ms_target.url(), "RAY_REPLICATOR_UNSUPPORTED_TYPES": "skip-column"},
    )
    assert skipped.returncode == 0, skipped.stderr[-2000:]
    assert "public.hosts#0" in skipped.stdout


def test_skip_column_leaves_it_out_on_the_record(pg_source: str, ms_target: Server, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    done = run(
        pg_source,
        ms_target,
        "--tables",
        "hosts",
        "--report",
        str(report),
        policy="skip-column",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads(report.read_text())
    assert data["warnings"] == []  # the dropped columns are schema changes, listed once
    assert [c["column"] for t in data["tables"] for c in t["schema_changes"] if c["kind"] == "column_dropped"] == [
        "addr",
        "seen",
    ]
    assert (
        "public.hosts.addr: column dropped: inet not kept "
        "(PostgreSQL type inet has no SQL Server type; unsupported_types = skip-column)"
    ) in done.stdout
    assert "warning:" not in done.stdout
    columns = ms_target.rows(
        "SELECT c.name FROM sys.columns c WHERE c.object_id = OBJECT_ID('public.hosts') ORDER BY c.column_id"
    )
    assert columns == [("id",), ("name",)]
    assert ms_target.rows("SELECT id, name FROM public.hosts ORDER BY id") == [(1, "a"), (2, "b"), (3, "")]


def test_text_copies_the_postgresql_text_form(pg_source: str, ms_target: Server, tmp_path: Path) -> None:
    cfg = tmp_path / "job.toml"
    cfg.write_text('unsupported_types = "text"\n')
    done = run(pg_source, ms_target, "--tables", "hosts", "--config", str(cfg))
    assert done.returncode == 0, done.stderr[-2000:]
    rows = ms_target.rows("SELECT id, addr, seen FROM public.hosts ORDER BY id")
    assert rows == [(1, "192.168.0.1/32", "'x' 'y'"), (2, None, None), (3, "::1/128", "'z'")]
    with psycopg.connect(pg_source) as conn:
        assert rows == conn.execute("SELECT id, addr::text, seen::text FROM hosts ORDER BY id").fetchall()
    assert (
        "public.hosts.addr: type text: inet → nvarchar(max) "
        "(PostgreSQL type inet has no SQL Server type; unsupported_types = text)"
    ) in done.stdout


def test_a_table_the_filters_exclude_is_never_judged(
    pwpg: PasswordPostgres, pg_source: str, ms_target: Server, tmp_path: Path
) -> None:
    """hosts would stop the run (unsupported_types = fail); excluded, its columns are never read or judged."""
    pwpg.sql(
        "CREATE TABLE plain (id int PRIMARY KEY, b bytea)",
        "INSERT INTO plain VALUES (1, ''), (2, NULL)",
        database=pg_source.rsplit("/", 1)[1],
    )
    done = run(pg_source, ms_target, "--exclude", "hosts", "--report", str(tmp_path / "r.json"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert [t for t in _user_tables(ms_target) if t[0] != "_ray_replicator"] == [("public", "plain")]
    assert sorted(ms_target.rows("SELECT id, b FROM public.plain")) == [(1, b""), (2, None)]


def test_a_key_column_cannot_be_left_out(pwpg: PasswordPostgres, fresh_db: str, ms_target: Server) -> None:
    pwpg.sql("CREATE TABLE keyed (addr inet PRIMARY KEY, n int)", database=fresh_db.rsplit("/", 1)[1])
    done = run(fresh_db, ms_target, policy="skip-column")
    assert_one_line_error(done, 2, "public.keyed.addr", "inet", "in key keyed_pkey", "exclude the table")
    assert _user_tables(ms_target) == []


def test_bad_setting_value_is_a_usage_error(pg_source: str, ms_target: Server) -> None:
    done = run(pg_source, ms_target, policy="ignore")
    assert_one_line_error(done, 2, "unsupported_types", "'ignore'", "skip-column")


def _clr_table() -> Catalog:
    """A SQL Server table with a CLR user-defined type, as the catalog reads it (the stand-in has no CLR types)."""
    d = declared(
        {
            "type_name": "PhoneNumber",
            "is_user_defined": True,
            "base_type": None,
            "max_length": -1,
            "precision": 0,
            "scale": 0,
        }
    )
    assert d.name == "phonenumber"
    from ray_replicator.engines.mssql.types import logical_type, native_type

    table = Table(
        "dbo",
        "people",
        [
            Column("id", "int", LogicalType("int32"), nullable=False),
            Column("phone", native_type(d), logical_type(d)),
        ],
        primary_key=Key("PK_people", ("id",), primary=True),
    )
    return Catalog(engine="mssql", database="db", tables=[table])


@pytest.mark.parametrize("target", ["postgres", "mssql"])
def test_sql_server_clr_type_is_refused_or_left_out(target: str) -> None:
    with pytest.raises(UsageError) as err:
        apply_type_policy(_clr_table(), capabilities("mssql"), capabilities(target), "fail")
    assert str(err.value) == (
        "dbo.people.phone: SQL Server type phonenumber has no mapping in ray-replicator (unsupported_types = fail); "
        "set unsupported_types = skip-column to leave the column out, or exclude the table"
    )
    with pytest.raises(UsageError, match="unsupported_types = text"):
        apply_type_policy(_clr_table(), capabilities("mssql"), capabilities(target), "text")
    catalog, changes = apply_type_policy(_clr_table(), capabilities("mssql"), capabilities(target), "skip-column")
    assert [c.name for c in catalog.tables[0].columns] == ["id"]
    assert changes == [
        SchemaChange(
            "dbo.people",
            "phone",
            "column_dropped",
            "phonenumber",
            "",
            "SQL Server type phonenumber has no mapping in ray-replicator; unsupported_types = skip-column",
        )
    ]
