"""No side effects from what fails or only reads: status and --resume on a target no run wrote to create nothing;
a bad report path or an unreachable Ray is found before any target table is created or dropped; --tables and
--exclude are applied before a table's details are read; and the line says what happened (an empty source
database, a refused login, a missing privilege). Each target is checked afterwards through a real client."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import psycopg
import pytest

from tests.engines.mssql.servers import PASSWORD as MS_PASSWORD
from tests.engines.mssql.servers import Server
from tests.helpers import WRONG_PW, assert_one_line_error, cli
from tests.pgserver import PasswordPostgres

PARTIAL_PW = "pt-Secret-2718"
_names = itertools.count()


def new_db(pwpg: PasswordPostgres, prefix: str) -> str:
    name = f"se_{prefix}_{os.getpid()}_{next(_names)}"  # conftest's fresh_db names dst_<pid>_<n> on the same server
    pwpg.sql(f"CREATE DATABASE {name}")
    return name


def pg_objects(pwpg: PasswordPostgres, db: str) -> list[tuple[str, str]]:
    """Every schema and relation a run could have made in `db` (the empty database has only schema public)."""
    with psycopg.connect(pwpg.url(db)) as conn:
        schemas = conn.execute(
            "SELECT 'schema', nspname::text FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' "
            "AND nspname NOT IN ('information_schema', 'public')"
        ).fetchall()
        relations = conn.execute(
            "SELECT 'relation', n.nspname || '.' || c.relname FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT LIKE 'pg\\_%' "
            "AND n.nspname <> 'information_schema'"
        ).fetchall()
    return [tuple(r) for r in schemas + relations]


def ms_objects(server: Server) -> list[tuple[str, str]]:
    tables = server.rows(
        "SELECT s.name, t.name FROM sys.tables t JOIN sys.schemas s ON s.schema_id = t.schema_id ORDER BY 1, 2"
    )
    ledger = server.rows("SELECT SCHEMA_ID(N'_ray_replicator')")
    return [*tables, *([("schema", "_ray_replicator")] if ledger[0][0] is not None else [])]


# -- reading creates nothing -------------------------------------------------------------------------------


def test_status_on_an_empty_postgres_target_creates_nothing(pwpg: PasswordPostgres) -> None:
    db = new_db(pwpg, "st")
    done = cli("status", "--target", pwpg.url(db))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "no runs recorded in this target" and not done.stderr.strip()
    assert pg_objects(pwpg, db) == []


def test_status_on_an_empty_sql_server_target_creates_nothing(ms_target: Server) -> None:
    done = cli("status", "--target", ms_target.url())
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "no runs recorded in this target"
    assert ms_objects(ms_target) == []


def test_resume_with_nothing_recorded_creates_nothing_in_postgres(pwpg: PasswordPostgres) -> None:
    db = new_db(pwpg, "rs")
    done = cli("run", "--source", pwpg.url("src"), "--target", pwpg.url(db), "--resume")
    line = assert_one_line_error(done, 2, "nothing to resume", "records no run", "without --resume")
    assert line == (
        "error: nothing to resume: the target records no run of ray-replicator; run the same command without --resume"
    )
    assert pg_objects(pwpg, db) == []


def test_resume_with_nothing_recorded_creates_nothing_in_sql_server(pwpg: PasswordPostgres, ms_target: Server) -> None:
    done = cli("run", "--source", pwpg.url("src"), "--target", ms_target.url(), "--resume", "--tables", "t")
    assert_one_line_error(done, 2, "nothing to resume", "without --resume")
    assert ms_objects(ms_target) == []


# -- checked before the target changes ---------------------------------------------------------------------


@pytest.fixture
def kept_target(pwpg: PasswordPostgres) -> str:
    """A target that already holds public.t with one row of its own (existing = drop would drop it)."""
    db = new_db(pwpg, "kept")
    pwpg.sql("CREATE TABLE t (id int PRIMARY KEY, v text, n int)", "INSERT INTO t VALUES (-1, 'mine', 0)", database=db)
    return db


def assert_kept(pwpg: PasswordPostgres, db: str) -> None:
    assert pg_objects(pwpg, db) == [("relation", "public.t"), ("relation", "public.t_pkey")]
    with psycopg.connect(pwpg.url(db)) as conn:
        assert conn.execute("SELECT * FROM t").fetchall() == [(-1, "mine", 0)]


def test_report_path_that_is_a_directory_leaves_the_target_untouched(
    pwpg: PasswordPostgres, kept_target: str, tmp_path: Path
) -> None:
    args = ["run", "--source", pwpg.url("src"), "--target", pwpg.url(kept_target), "--existing", "drop"]
    done = cli(*args, "--tables", "t", "--report", str(tmp_path))
    line = assert_one_line_error(done, 2, f"cannot write the report to {tmp_path}", "--report FILE.json")
    assert line == f"error: cannot write the report to {tmp_path} (Is a directory); pass --report FILE.json"
    assert_kept(pwpg, kept_target)


def test_report_path_under_a_file_leaves_the_target_and_the_disk_untouched(
    pwpg: PasswordPostgres, kept_target: str, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    report = blocker / "sub" / "report.json"
    args = ["run", "--source", pwpg.url("src"), "--target", pwpg.url(kept_target), "--existing", "drop"]
    done = cli(*args, "--report", str(report))
    assert_one_line_error(done, 2, f"cannot write the report to {report} (Not a directory)")
    assert_kept(pwpg, kept_target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_unreachable_ray_leaves_the_target_untouched(pwpg: PasswordPostgres, kept_target: str) -> None:
    args = ["run", "--source", pwpg.url("src"), "--target", pwpg.url(kept_target), "--existing", "drop"]
    done = cli(*args, env={"RAY_ADDRESS": "127.0.0.1:1"})
    assert_one_line_error(done, 1, "cannot reach Ray at 127.0.0.1:1", "unset RAY_ADDRESS")
    assert_kept(pwpg, kept_target)


# -- the line says what happened ---------------------------------------------------------------------------


def test_empty_source_database_is_named(pwpg: PasswordPostgres) -> None:
    empty, target = new_db(pwpg, "empty"), new_db(pwpg, "dst")
    done = cli("run", "--source", pwpg.url(empty), "--target", pwpg.url(target))
    line = assert_one_line_error(done, 2, f"the source database {empty!r} has no tables")
    assert "filters" not in line
    assert pg_objects(pwpg, target) == []


def test_filters_leaving_nothing_list_the_source_tables(pwpg: PasswordPostgres) -> None:
    target = new_db(pwpg, "dst")
    done = cli("run", "--source", pwpg.url("src"), "--target", pwpg.url(target), "--exclude", "*")
    assert_one_line_error(done, 2, "--tables and --exclude leave no table to copy", "public.heap", "public.t")
    assert pg_objects(pwpg, target) == []


def test_wrong_target_password_is_a_login_failure_not_a_missing_privilege(pwpg: PasswordPostgres) -> None:
    target = new_db(pwpg, "dst")
    done = cli("run", "--source", pwpg.url("src"), "--target", pwpg.url(target, password=WRONG_PW))
    line = assert_one_line_error(
        done, 1, "connecting on postgresql://postgres:***@", 'password authentication failed for user "postgres"'
    )
    assert line.endswith("; check the user and password (URL, password_env or password_file)"), line
    assert "CREATE" not in line and "ledger" not in line
    assert pg_objects(pwpg, target) == []
    status = cli("status", "--target", pwpg.url(target, password=WRONG_PW))
    line = assert_one_line_error(status, 1, "password authentication failed", "check the user and password")
    assert "CREATE" not in line


def test_wrong_sql_server_target_password_is_a_login_failure(pwpg: PasswordPostgres, ms_target: Server) -> None:
    target = ms_target.url().replace(MS_PASSWORD, WRONG_PW)
    done = cli("run", "--source", pwpg.url("src"), "--target", target, "--tables", "t")
    line = assert_one_line_error(done, 1, "Login failed for user 'sa'", "password")
    assert "CREATE" not in line and MS_PASSWORD not in done.stdout + done.stderr
    assert ms_objects(ms_target) == []


# -- filters before details ---------------------------------------------------------------------------------


def test_a_table_the_source_user_cannot_read_is_left_out_by_exclude(pwpg: PasswordPostgres, tmp_path: Path) -> None:
    """locked was never analyzed, so reading its details counts its rows, which needs SELECT: excluded, it is
    never read, and the run copies the table the user may read."""
    src, target = new_db(pwpg, "psrc"), new_db(pwpg, "dst")
    pwpg.sql(
        f"DO $$ BEGIN CREATE ROLE partial LOGIN PASSWORD '{PARTIAL_PW}'; EXCEPTION WHEN duplicate_object THEN END $$"
    )
    pwpg.sql(
        "CREATE TABLE readable (id int PRIMARY KEY, v text)",
        "INSERT INTO readable SELECT g, md5(g::text) FROM generate_series(1, 500) g",
        "ANALYZE readable",
        "CREATE TABLE locked (id int PRIMARY KEY, secret text)",
        "INSERT INTO locked VALUES (1, 'no')",
        "GRANT SELECT ON readable TO partial",
        database=src,
    )
    source = pwpg.url(src, user="partial", password=PARTIAL_PW)
    refused = cli("plan", "--source", source)
    assert_one_line_error(refused, 1, "permission denied for table locked", "--exclude")
    report = tmp_path / "new" / "dir" / "report.json"
    done = cli("run", "--source", source, "--target", pwpg.url(target), "--exclude", "locked", "--report", str(report))
    assert done.returncode == 0, done.stderr[-3000:]
    assert PARTIAL_PW not in done.stdout + done.stderr
    assert report.exists() and report.with_suffix(".md").exists()
    with psycopg.connect(pwpg.url(src)) as a, psycopg.connect(pwpg.url(target)) as b:
        query = "SELECT id, v FROM readable ORDER BY id"
        assert a.execute(query).fetchall() == b.execute(query).fetchall()
    assert ("relation", "public.locked") not in pg_objects(pwpg, target)


def test_an_excluded_sql_variant_table_never_blocks_the_run(pwpg: PasswordPostgres, variant_source: Server) -> None:
    target = new_db(pwpg, "dst")
    refused = cli("plan", "--source", variant_source.url())
    assert_one_line_error(refused, 1, "dbo.variant.x is sql_variant", "exclude the table")
    done = cli("run", "--source", variant_source.url(), "--target", pwpg.url(target), "--exclude", "dbo.variant")
    assert done.returncode == 0, done.stderr[-3000:]
    with psycopg.connect(pwpg.url(target)) as conn:
        assert conn.execute("SELECT id, v FROM dbo.kept ORDER BY id").fetchall() == [(1, "a"), (2, None), (3, "ç")]
    assert ("relation", "dbo.variant") not in pg_objects(pwpg, target)
    only = cli("plan", "--source", variant_source.url(), "--tables", "kept")
    assert only.returncode == 0, only.stderr
    assert "dbo.kept#0" in only.stdout and "excluded by filters: dbo.variant" in only.stdout
