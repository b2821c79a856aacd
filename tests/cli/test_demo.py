"""`ray-replicator demo` as a user runs it: a real process, both legs verified, every server stopped afterwards."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from ray_replicator.synth.stackoverflow import row_counts

ROOT = Path(__file__).resolve().parents[2]
SCALE = 0.002


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_demo_replicates_sql_server_to_postgres_and_sql_server(tmp_path: Path) -> None:
    pgdata = tmp_path / "pg"
    env = dict(os.environ, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_REPLICATOR_PGDATA=str(pgdata))
    env.pop("RAY_ADDRESS", None)
    # The repository first on the path: an editable install made before mssql_standin had its __init__.py
    # resolves it as an empty namespace package from any other directory.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    done = subprocess.run(
        [sys.executable, "-m", "ray_replicator", "demo", "--scale", str(SCALE)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    expected = sum(row_counts(SCALE).values())
    for leg in ("postgres", "mssql"):
        report = json.loads((tmp_path / f"demo-{leg}-report.json").read_text())
        assert report["status"] == "ok", report
        assert report["total_rows"] == expected
        assert all(t["verified"] == "yes (checksums)" for t in report["tables"])
        for endpoint in ("source", "target"):
            url = urlsplit(report[endpoint])
            if url.scheme == "mssql":
                assert url.port is not None and not _listening(url.port), f"stand-in {report[endpoint]} still up"
    assert "SQL Server → PostgreSQL: ok" in done.stdout and "SQL Server → SQL Server: ok" in done.stdout
    assert not (pgdata / "postmaster.pid").exists(), "the embedded PostgreSQL was left running"
