"""`python -m mssql_standin` as a separate process, reached by pymssql, then stopped with SIGTERM."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pymssql


def test_cli_serves_and_stops(tmp_path: Path) -> None:
    init = tmp_path / "init.sql"
    init.write_text("create table dbo.t (id int not null primary key, s nvarchar(10));\n"
                    "insert into dbo.t values (1, N'λ');\n")  # fmt: skip
    cmd = [sys.executable, "-m", "mssql_standin", "--port", "0", "--database", "Cli", "--user", "u",
           "--password", "p@ss", "--encryption", "on", "--init", str(init)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[2])  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        assert m, line + (proc.stderr.read() if proc.stderr else "")
        conn = pymssql.connect(server="127.0.0.1", port=m.group(1), user="u", password="p@ss", database="Cli")
        cur = conn.cursor()
        cur.execute("select id, s, db_name() from t")
        assert cur.fetchall() == [(1, "λ", "Cli")]
        conn.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=20)
        assert rc == 0, proc.stderr.read() if proc.stderr else ""
