"""`python -m mssql_standin` filled by `ray-replicator generate --target mssql://…`, then queried with FreeTDS tsql."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time

import pytest

from ray_replicator.synth.stackoverflow import row_counts

PASSWORD = "Gen3rate!pw"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(shutil.which("tsql") is None, reason="Debian freetds-bin is not installed")
def test_generate_into_standin_then_tsql_counts() -> None:
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mssql_standin", "--port", str(port), "--database", "StackOverflow2010",
         "--user", "sa", "--password", PASSWORD],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        url = f"mssql://sa:{PASSWORD}@127.0.0.1:{port}/StackOverflow2010?encrypt=no"
        done = subprocess.run(
            [sys.executable, "-m", "ray_replicator", "generate", "--target", url, "--scale", "0.001"],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert PASSWORD not in done.stdout + done.stderr
        expected = row_counts(0.001)
        query = "".join(f"SELECT '{t}', COUNT(*) FROM [{t}]\ngo\n" for t in expected)
        tsql = subprocess.run(
            ["tsql", "-H", "127.0.0.1", "-p", str(port), "-U", "sa", "-P", PASSWORD, "-D", "StackOverflow2010"],
            input=query, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        got = {}
        for line in tsql.stdout.splitlines():
            parts = line.replace("1> 2> ", "").split("\t")
            if len(parts) == 2 and parts[0] in expected:
                got[parts[0]] = int(parts[1])
        assert got == expected
    finally:
        server.terminate()
        server.wait(timeout=30)
