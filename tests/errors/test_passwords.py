"""Passwords through the real CLI: a URL that drivers could read two ways is bad usage (exit 2, one line naming the
endpoint, never a piece of the password); a password full of URL specials, percent-encoded, works against a server
that checks it, and afterwards no output, report, ledger row, Ray log or process title holds it."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import psutil
import psycopg
import pytest

from ray_replicator.redact import spellings_of
from tests.helpers import CliRun, assert_one_line_error, cli, pg_table_digest
from tests.pgserver import PasswordPostgres

RAW = "Zq@7/x#?y:;}{%&=+ Wv'9"
"""Every character that ends or splits a URL part, a connection-string value or a libpq DSN value."""
ENCODED = quote(RAW, safe="")
ROLE = "rr_special"
LEAKS = sorted({*spellings_of(RAW), *(RAW[i : i + 5] for i in range(len(RAW) - 4))}, key=len)
"""The password in every spelling a driver or log might use, and every 5-character piece of it."""


def leaks_in(text: str) -> list[str]:
    return [s for s in LEAKS if s in text]


def assert_refused(done: subprocess.CompletedProcess[str], endpoint: str, *needles: str) -> str:
    line = assert_one_line_error(done, 2, f"{endpoint} URL ({endpoint}.url) ", *needles)
    assert leaks_in(done.stdout + done.stderr) == [], line
    return line


MALFORMED = {
    "raw @ in the password": ("postgresql://u:Zq@7x:y;}Wv9@127.0.0.1:5432/src", "more than one '@'"),
    "raw specials in the password": (f"postgresql://u:{RAW}@127.0.0.1:5432/src", "contains '#'"),
    "raw / and ? in the password": ("postgresql://u:Zq7/x?yWv9@127.0.0.1:5432/src", "an '@' after the host"),
    "raw # in the password": ("mssql://sa:Zq7#yWv9@127.0.0.1:1433/db", "contains '#'"),
    "no // after the scheme": ("postgresql:u:Zq7yWv9@127.0.0.1:5432/src", "no '//' after 'postgresql:'"),
    "password without @host": ("mssql://sa:Zq7yWv9/db", "port that is not a number"),
    "bad % escape": ("postgresql://u:Zq7%yWv9@127.0.0.1/src", "'%' in the user or password"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_source_url(case: str) -> None:
    url, says = MALFORMED[case]
    assert_refused(cli("plan", "--source", url), "source", says, "password_env")


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_target_url(case: str) -> None:
    url, says = MALFORMED[case]
    done = cli("run", "--source", "postgresql://u@127.0.0.1:1/src", "--target", url)
    assert_refused(done, "target", says, "password_file")


def test_malformed_url_from_config_file_and_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "job.toml"
    cfg.write_text(f'[source]\nurl = "postgresql://u:{RAW.replace(chr(34), "")}@h/src"\n')
    assert_refused(cli("plan", "--config", str(cfg)), "source", "contains '#'", "@ → %40")
    env = {"RAY_REPLICATOR_TARGET__URL": "postgresql://u:Zq7/x#yWv9@127.0.0.1/dst"}
    done = cli("run", "--source", "postgresql://u@127.0.0.1:1/src", env=env)
    assert_refused(done, "target", "contains '#'", "# → %23")


def test_malformed_url_in_status_and_generate() -> None:
    assert_refused(cli("status", "--target", f"postgresql://u:{RAW}@127.0.0.1/dst"), "target", "contains '#'")
    done = cli("generate", "--target", "mssql://sa:Zq7?yWv9@127.0.0.1:1433/db", "--scale", "0.001")
    assert_refused(done, "target", "an '@' after the host")


@pytest.fixture(scope="module")
def special_role(pwpg: PasswordPostgres) -> str:
    literal = RAW.replace("'", "''")
    with psycopg.connect(pwpg.url(), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ROLE,)).fetchone():
            conn.execute(f"CREATE ROLE {ROLE} LOGIN SUPERUSER PASSWORD '{literal}'")
    return ROLE


def _ledger_text(url: str) -> str:
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = '_ray_replicator'"
        ).fetchall()
        assert tables, "the run kept no ledger"
        rows = []
        for (table,) in tables:
            rows += conn.execute(f'SELECT t::text FROM _ray_replicator."{table}" t').fetchall()
    return "\n".join(r[0] for r in rows)


def _titles(pids: set[int]) -> list[tuple[int, str]]:
    """Every process's command line as `ps` shows it (read from /proc, as ps does)."""
    seen = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            seen.append((proc.info["pid"], " ".join(proc.info.get("cmdline") or [])))
        except psutil.Error:
            continue
    return seen


def test_special_password_works_and_is_nowhere(
    pwpg: PasswordPostgres, fresh_db: str, special_role: str, tmp_path: Path, ray_tmp: Path
) -> None:
    """The percent-encoded password logs in (the server checks it); then stdout, stderr, the JSON and markdown
    report, every ledger row in the target, every file of the Ray session the run created and every process title
    sampled while it ran are searched for it in every spelling."""
    target_db = fresh_db.rsplit("/", 1)[1]
    source = f"postgresql://{special_role}:{ENCODED}@127.0.0.1:{pwpg.port}/src"
    target = f"postgresql://{special_role}:{ENCODED}@127.0.0.1:{pwpg.port}/{target_db}"
    report = tmp_path / "report.json"
    args = ["run", "--source", source, "--target", target, "--tables", "t", "--report", str(report)]
    run = CliRun(args, ray_tmp)
    proc = run.proc
    titles: list[tuple[float, int, str]] = []
    started = time.monotonic()
    while run.running() and time.monotonic() - started < 300:
        titles += [(time.monotonic() - started, pid, line) for pid, line in _titles({proc.pid})]
        time.sleep(0.05)
    done = run.finish(timeout=60)
    stdout, stderr = done.stdout, done.stderr
    assert proc.returncode == 0, stderr[-3000:]
    assert "public.t" in stdout and "2,000" in stdout
    assert pg_table_digest(pwpg.url("src"), "public", "t") == pg_table_digest(pwpg.url(target_db), "public", "t")

    ours = [(at, line) for at, pid, line in titles if pid == proc.pid]
    rewritten = [at for at, line in ours if line.startswith("ray-replicator run")]
    assert rewritten, "the driver's process title was never rewritten"
    assert "rr_special:***@" in next(line for _, line in ours if line.startswith("ray-replicator run"))
    shown_after = [(pid, line) for at, pid, line in titles if at >= rewritten[0] and leaks_in(line)]
    assert shown_after == []

    texts = {
        "stdout": stdout,
        "stderr": stderr,
        "report": report.read_text() + report.with_suffix(".md").read_text(),
        "ledger": _ledger_text(pwpg.url(target_db)),
    }
    assert "rr_special:***@" in texts["report"]
    sessions = sorted(ray_tmp.rglob("session_2*"), key=lambda p: p.stat().st_mtime)
    assert sessions, "Ray wrote no session where we pointed it"
    logs = [p for p in sessions[-1].rglob("*") if p.is_file() and p.stat().st_size < 50_000_000]
    assert any(p.parent.name == "logs" for p in logs), "the session has no logs"
    for path in logs:
        texts[str(path.relative_to(ray_tmp))] = path.read_bytes().decode("utf-8", "replace")
    leaks = {where: leaks_in(text) for where, text in texts.items() if leaks_in(text)}
    assert leaks == {}


def test_wrong_special_password_is_not_shown(pwpg: PasswordPostgres, special_role: str) -> None:
    """The server refuses the password: exit 1, one line saying what to check, the password in no spelling; with
    --json-logs the failed event holds none of it either."""
    wrong = quote(RAW + "-wrong", safe="")
    source = f"postgresql://{special_role}:{wrong}@127.0.0.1:{pwpg.port}/src"
    done = cli("plan", "--source", source)
    line = assert_one_line_error(done, 1, "password authentication failed", "check the user and password")
    assert f"{special_role}:***@" in line and leaks_in(done.stdout + done.stderr) == []
    logged = cli("run", "--source", source, "--target", source, "--json-logs")
    assert logged.returncode == 1 and '"event": "failed"' in logged.stderr
    assert leaks_in(logged.stdout + logged.stderr) == []


def test_debug_traceback_is_scrubbed_too(pwpg: PasswordPostgres, special_role: str) -> None:
    wrong = quote(RAW + "-wrong", safe="")
    done = cli("plan", "--debug", "--source", f"postgresql://{special_role}:{wrong}@127.0.0.1:{pwpg.port}/src")
    assert done.returncode == 1 and "Traceback" in done.stderr
    assert leaks_in(done.stdout + done.stderr) == []
