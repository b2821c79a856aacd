"""The command line end to end, as a user runs it: real processes, exit codes, one-line errors, no secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from ray_replicator.synth.stackoverflow import generate
from tests.helpers import assert_same_database

SECRET = "topsecret-pw-4711"


def cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", **(env or {}))
    full_env.pop("RAY_ADDRESS", None)
    return subprocess.run(
        [sys.executable, "-m", "ray_replicator", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full_env,
        timeout=300,
    )


def with_password(url: str) -> str:
    """Embedded PostgreSQL trusts its socket, so a password in the URL is accepted and ignored: ideal for
    checking that it never shows."""
    return url.replace("postgres:@", f"postgres:{SECRET}@")


@pytest.fixture(scope="module")
def small_source(pg_base_url: str) -> str:
    from ray_replicator.embedded import recreate_database

    url = recreate_database(pg_base_url, "cli_src")
    generate(url, 0.001, 3)
    return url


def test_run_then_verify_then_status(small_source: str, make_database: Callable[[str], str], tmp_path: Path) -> None:
    target = make_database("cli_dst")
    report = tmp_path / "out" / "report.json"
    done = cli("run", "--source", with_password(small_source), "--target", with_password(target),
               "--report", str(report))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert SECRET not in done.stdout + done.stderr
    assert "Posts" in done.stdout and "total" in done.stdout
    data = json.loads(report.read_text())
    assert data["status"] == "ok" and data["total_rows"] > 0
    assert SECRET not in report.read_text() and SECRET not in report.with_suffix(".md").read_text()
    assert_same_database(small_source, target)

    ok = cli("verify", "--source", small_source, "--target", target)
    assert ok.returncode == 0, ok.stderr
    assert "ok   public.Votes" in ok.stdout

    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute('DELETE FROM "Votes" WHERE "Id" = (SELECT min("Id") FROM "Votes")')
    bad = cli("verify", "--source", small_source, "--target", target)
    assert bad.returncode == 1
    assert "DIFF public.Votes" in bad.stdout and "differ" in bad.stderr

    status = cli("status", "--target", target)
    assert status.returncode == 0, status.stderr
    assert "done" in status.stdout


def test_plan_prints_ranges_and_moves_nothing(small_source: str) -> None:
    done = cli("plan", "--source", small_source, "--json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert plan["plan_hash"] and plan["ranges"]
    assert {r["range"].split("#")[0] for r in plan["ranges"]} >= {"public.Votes", "public.Posts"}
    assert all(r["lead"] is False for r in plan["ranges"])  # no target given: nothing can load frozen


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "--source", "mysql://u:x@h/db", "--target", "postgresql://h/db"], "unsupported URL scheme"),
        (["run", "--target", "postgresql://h/db"], "no source given"),
        (["run", "--source", "{src}", "--target", "{src}", "--tables", "NoSuchTable"], "NoSuchTable"),
        (["run", "--source", "{src}", "--target", "{src}", "--existing", "overwrite"], "allowed values"),
        (["run", "--config", "/nonexistent/job.toml"], "does not exist"),
    ],
    ids=["bad-scheme", "no-source", "unknown-table", "bad-policy", "missing-config"],
)
def test_usage_errors_exit_2_with_one_line(small_source: str, args: list[str], needle: str) -> None:
    done = cli(*[a.replace("{src}", with_password(small_source)) for a in args])
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], done.stderr
    assert "Traceback" not in done.stderr and SECRET not in done.stderr


def test_unreachable_database_is_runtime_error_without_secret() -> None:
    done = cli("plan", "--source", f"postgresql://u:{SECRET}@127.0.0.1:1/nodb?connect_timeout=3")
    assert done.returncode == 1, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert SECRET not in done.stderr and "Traceback" not in done.stderr
