"""Bad input and unreachable or unwilling databases: exit 2 for usage/config, 1 at runtime, one line that names what
failed and what to do, no traceback, no password. None of these needs Ray, so each costs a second or two."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import NOCREATE_PW, NOSELECT_PW, WRONG_PW, assert_one_line_error, cli
from tests.pgserver import PasswordPostgres


def test_wrong_password(pwpg: PasswordPostgres) -> None:
    done = cli("plan", "--source", pwpg.url("src", password=WRONG_PW))
    assert_one_line_error(done, 1, "password authentication failed", "check the user and password")


def test_wrong_password_from_env_is_not_shown(pwpg: PasswordPostgres, tmp_path: Path) -> None:
    cfg = tmp_path / "job.toml"
    cfg.write_text(f'[source]\nurl = "postgresql://postgres@127.0.0.1:{pwpg.port}/src"\npassword_env = "SRC_PW"\n')
    done = cli("plan", "--config", str(cfg), env={"SRC_PW": WRONG_PW})
    assert_one_line_error(done, 1, "password authentication failed")


def test_password_from_file_works(pwpg: PasswordPostgres, tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text(pwpg.url("src").split(":")[2].split("@")[0] + "\n")
    cfg = tmp_path / "job.toml"
    cfg.write_text(f'[source]\nurl = "postgresql://postgres@127.0.0.1:{pwpg.port}/src"\npassword_file = "{secret}"\n')
    done = cli("plan", "--config", str(cfg), "--json")
    assert done.returncode == 0, done.stderr
    assert "public.t#0" in done.stdout


def test_missing_password_env_var(pwpg: PasswordPostgres, tmp_path: Path) -> None:
    cfg = tmp_path / "job.toml"
    cfg.write_text(f'[source]\nurl = "postgresql://postgres@127.0.0.1:{pwpg.port}/src"\npassword_env = "NO_SUCH_PW"\n')
    env = {k: v for k, v in os.environ.items() if k != "NO_SUCH_PW"}
    done = cli("plan", "--config", str(cfg), env=env)
    assert_one_line_error(done, 2, "NO_SUCH_PW", "not set")


def test_unreadable_password_file(pwpg: PasswordPostgres, tmp_path: Path) -> None:
    cfg = tmp_path / "job.toml"
    cfg.write_text(f'[source]\nurl = "postgresql://postgres@127.0.0.1:{pwpg.port}/src"\npassword_file = "{tmp_path}"\n')
    done = cli("plan", "--config", str(cfg))
    assert_one_line_error(done, 2, "cannot read password_file", str(tmp_path))


def test_unknown_host() -> None:
    done = cli("plan", "--source", f"postgresql://u:{WRONG_PW}@no-such-host.invalid/db?connect_timeout=5")
    assert_one_line_error(done, 1, "no-such-host.invalid", "check the host name")


def test_refused_port() -> None:
    done = cli("plan", "--source", f"postgresql://u:{WRONG_PW}@127.0.0.1:1/db?connect_timeout=5")
    assert_one_line_error(done, 1, "127.0.0.1:1", "listens on that host and port")


def test_unknown_database(pwpg: PasswordPostgres) -> None:
    done = cli("plan", "--source", pwpg.url("nosuchdb"))
    assert_one_line_error(done, 1, 'database "nosuchdb" does not exist', "create the database")


def test_unknown_table_in_filter(pwpg: PasswordPostgres, fresh_db: str) -> None:
    done = cli("run", "--source", pwpg.url("src"), "--target", fresh_db, "--tables", "public.nosuch")
    assert_one_line_error(done, 2, "'public.nosuch'", "public.t")


def test_filters_leave_nothing(pwpg: PasswordPostgres, fresh_db: str) -> None:
    done = cli("run", "--source", pwpg.url("src"), "--target", fresh_db, "--tables", "t", "--exclude", "t")
    assert_one_line_error(done, 2, "leave no table")


def test_empty_table_filter(pwpg: PasswordPostgres, fresh_db: str) -> None:
    done = cli("run", "--source", pwpg.url("src"), "--target", fresh_db, "--tables", "")
    assert_one_line_error(done, 2, "no source table matches --tables ''")


def test_bad_config_field(tmp_path: Path, pwpg: PasswordPostgres) -> None:
    cfg = tmp_path / "job.toml"
    cfg.write_text(f'memory_cap = 5\n[source]\nurl = "{pwpg.url("src")}"\n')
    done = cli("run", "--config", str(cfg))
    assert_one_line_error(done, 2, "unknown config field 'memory_cap'", "memory_cap_mb")


def test_bad_config_value(pwpg: PasswordPostgres, fresh_db: str) -> None:
    done = cli("run", "--source", pwpg.url("src"), "--target", fresh_db, "--verify", "sometimes")
    assert_one_line_error(done, 2, "'verify'", "checksums")


def test_negative_parallelism(pwpg: PasswordPostgres, fresh_db: str) -> None:
    done = cli("run", "--source", pwpg.url("src"), "--target", fresh_db, "--parallelism", "-1")
    assert_one_line_error(done, 2, "'parallelism'", "greater than or equal to 0")


def test_invalid_toml(tmp_path: Path) -> None:
    cfg = tmp_path / "job.toml"
    cfg.write_text("[source\nurl = 1\n")
    assert_one_line_error(cli("run", "--config", str(cfg)), 2, "is not valid TOML")


def test_bad_url() -> None:
    done = cli("plan", "--source", f"oracle://u:{WRONG_PW}@h/db")
    assert_one_line_error(done, 2, "unsupported URL scheme 'oracle'", "postgresql")


def test_missing_target(pwpg: PasswordPostgres) -> None:
    assert_one_line_error(cli("run", "--source", pwpg.url("src")), 2, "no target given")


def test_bad_scale() -> None:
    done = cli("generate", "--target", f"postgresql://u:{WRONG_PW}@127.0.0.1:1/db", "--scale", "-1")
    assert_one_line_error(done, 2, "--scale must be positive")


def test_target_table_exists(pwpg: PasswordPostgres, fresh_db: str) -> None:
    pwpg.sql("CREATE TABLE t (id int)", database=fresh_db.rsplit("/", 1)[1])
    done = cli("run", "--source", pwpg.url("src"), "--target", fresh_db, "--tables", "t")
    assert_one_line_error(done, 2, "target table public.t already exists", "existing")


def test_target_table_exists_with_other_columns(pwpg: PasswordPostgres, fresh_db: str) -> None:
    pwpg.sql("CREATE TABLE t (id int PRIMARY KEY, other text NOT NULL)", database=fresh_db.rsplit("/", 1)[1])
    done = cli("run", "--source", pwpg.url("src"), "--target", fresh_db, "--tables", "t", "--existing", "truncate")
    assert_one_line_error(done, 2, "public.t exists with other columns", "missing v, n", "extra NOT NULL other")


def test_value_out_of_range_for_target_type(pwpg: PasswordPostgres, fresh_db: str) -> None:
    """t.n holds values up to 2,000,000: a smallint target column is refused before anything is truncated."""
    db = fresh_db.rsplit("/", 1)[1]
    pwpg.sql(
        "CREATE TABLE t (id int PRIMARY KEY, v text, n smallint)", "INSERT INTO t VALUES (-1, 'keep', 1)", database=db
    )
    done = cli("run", "--source", pwpg.url("src"), "--target", fresh_db, "--tables", "t", "--existing", "truncate")
    assert_one_line_error(done, 2, "public.t.n is smallint", "integer")
    import psycopg

    with psycopg.connect(fresh_db) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (1,), "the refused run truncated the target"


def test_target_without_create_permission(pwpg: PasswordPostgres, fresh_db: str) -> None:
    db = fresh_db.rsplit("/", 1)[1]
    target = pwpg.url(db, user="nocreate", password=NOCREATE_PW)
    done = cli("run", "--source", pwpg.url("src"), "--target", target)
    assert_one_line_error(done, 1, "permission denied for database", "needs CREATE")


def test_source_without_select_privilege(pwpg: PasswordPostgres, fresh_db: str) -> None:
    source = pwpg.url("src", user="noselect", password=NOSELECT_PW)
    done = cli("run", "--source", source, "--target", fresh_db)
    assert_one_line_error(done, 1, "permission denied for table", "grant the user SELECT")


def test_spill_dir_not_writable(pwpg: PasswordPostgres, fresh_db: str, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    done = cli("run", "--source", pwpg.url("src"), "--target", fresh_db, "--spill-dir", str(blocker / "spill"))
    assert_one_line_error(done, 2, "spill_dir", "is not a writable directory")


def test_resume_with_nothing_to_resume(pwpg: PasswordPostgres, fresh_db: str) -> None:
    done = cli("run", "--source", pwpg.url("src"), "--target", fresh_db, "--resume")
    assert_one_line_error(done, 2, "nothing to resume", "without --resume")


@pytest.mark.parametrize("debug", [True])
def test_debug_shows_the_traceback(pwpg: PasswordPostgres, debug: bool) -> None:
    done = cli("plan", "--source", pwpg.url("nosuchdb"), "--debug")
    assert done.returncode == 1 and "Traceback" in done.stderr
    assert WRONG_PW not in done.stderr
