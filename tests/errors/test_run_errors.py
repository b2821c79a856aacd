"""Failures during a run (Ray up): duplicate keys, Ray unreachable, Ctrl-C, content mismatches, and no password in
any output, report, ledger row, Ray log or process title."""

from __future__ import annotations

import signal
from pathlib import Path

import psutil
import psycopg

from tests.helpers import SECRETS, CliRun, assert_one_line_error, cli, done_ranges, fill_big, pg_table_digest
from tests.pgserver import PasswordPostgres


def test_duplicate_key_in_target(pwpg: PasswordPostgres, fresh_db: str) -> None:
    """heap has (1), (1), (2); a target that keeps its own primary key on a rejects the second 1."""
    pwpg.sql("CREATE TABLE heap (a int PRIMARY KEY)", database=fresh_db.rsplit("/", 1)[1])
    done = cli("run", "--source", pwpg.url("src"), "--target", fresh_db, "--tables", "heap", "--existing", "truncate")
    assert_one_line_error(done, 1, "public.heap", "Key (a)=(1) already exists", "rejects rows the source holds twice")


def test_ray_cluster_unreachable(pwpg: PasswordPostgres, fresh_db: str) -> None:
    done = cli("run", "--source", pwpg.url("src"), "--target", fresh_db, env={"RAY_ADDRESS": "127.0.0.1:1"})
    assert_one_line_error(done, 1, "cannot reach Ray at 127.0.0.1:1", "unset RAY_ADDRESS")


def test_checksum_mismatch_names_the_keys(pwpg: PasswordPostgres, fresh_db: str, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    done = cli("run", "--source", pwpg.url("src"), "--target", fresh_db, "--tables", "t", "--report", str(report))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "public.t" in done.stdout and report.exists()
    pwpg.sql("UPDATE t SET v = 'changed' WHERE id = 1234", database=fresh_db.rsplit("/", 1)[1])
    sums = cli("verify", "--checksums", "--source", pwpg.url("src"), "--target", fresh_db, "--tables", "t")
    assert_one_line_error(sums, 1, "1 table(s) differ")
    assert "DIFF public.t" in sums.stdout and "id=1234" in sums.stdout


def _ledger_text(url: str) -> str:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT r::text FROM _ray_replicator.runs r UNION ALL SELECT g::text FROM _ray_replicator.ranges g "
            "UNION ALL SELECT p::text FROM _ray_replicator.plans p"
        ).fetchall()
    return "\n".join(r[0] for r in rows)


def _processes_showing(secrets: tuple[str, ...]) -> list[str]:
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        line = " ".join(proc.info.get("cmdline") or [])
        if any(s in line for s in secrets):
            found.append(f"{proc.info['pid']}: {line[:200]}")
    return found


def test_ctrl_c_exits_130_notes_the_ledger_and_resumes(
    pwpg: PasswordPostgres, fresh_db: str, tmp_path: Path, ray_tmp: Path
) -> None:
    """SIGINT mid-copy: exit 130 with one line, run 'interrupted' in the ledger, --resume finishes it exactly.
    While it runs, no process title shows the password; afterwards no report, ledger row or Ray log holds it."""
    fill_big(pwpg)
    report = tmp_path / "report.json"
    args = ["run", "--source", pwpg.url("src"), "--target", fresh_db, "--tables", "big", "--parallelism", "1"]
    args += ["--report", str(report)]
    config = tmp_path / "small-ranges.toml"
    config.write_text("rows_per_range = 2000\n")
    run = CliRun([*args, "--config", str(config)], ray_tmp)
    run.wait_for(lambda: done_ranges(fresh_db) >= 3, 90, every=0.2)
    assert _processes_showing(SECRETS) == []
    run.proc.send_signal(signal.SIGINT)
    interrupted = run.finish(timeout=60)
    assert_one_line_error(interrupted, 130, "interrupted by SIGINT", "--resume")
    with psycopg.connect(fresh_db) as conn:
        state = conn.execute("SELECT state FROM _ray_replicator.runs").fetchall()
        left = conn.execute("SELECT count(*) FROM _ray_replicator.ranges WHERE state <> 'done'").fetchone()
    assert state == [("interrupted",)] and left and left[0] > 0

    resumed = cli(*args, "--config", str(config), "--resume", env={"RAY_TMPDIR": str(ray_tmp)})
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert pg_table_digest(pwpg.url("src"), "public", "big") == pg_table_digest(fresh_db, "public", "big")

    texts = {"report": report.read_text() + report.with_suffix(".md").read_text(), "ledger": _ledger_text(fresh_db)}
    logs = [p for p in ray_tmp.rglob("*") if p.is_file() and p.stat().st_size < 50_000_000]
    assert logs, "Ray wrote no logs where we pointed it"
    for path in logs:
        texts[str(path)] = path.read_bytes().decode("utf-8", "replace")
    leaks = [where for where, text in texts.items() if any(s in text for s in SECRETS)]
    assert leaks == []
