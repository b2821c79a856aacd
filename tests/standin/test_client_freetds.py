"""FreeTDS command-line clients (Debian freetds-bin): `tsql` queries and `freebcp` bulk loads."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from mssql_standin import serve
from mssql_standin.results import ColumnSpec
from mssql_standin.wire import arrow_type
from tests.standin.conftest import PASSWORD, USER, StubEngine, freebcp_in, ticks

pytestmark = pytest.mark.skipif(shutil.which("tsql") is None, reason="Debian freetds-bin is not installed")


def freetds_env(tmp_path: Path, srv, encryption: str = "request") -> dict[str, str]:
    conf = tmp_path / "freetds.conf"
    conf.write_text(
        f"[standin]\n\thost = {srv.host}\n\tport = {srv.port}\n\ttds version = 7.4\n"
        f"\tclient charset = UTF-8\n\tencryption = {encryption}\n"
    )
    return dict(os.environ, FREETDSCONF=str(conf))


def tsql(env: dict[str, str], sql: str, password: str = PASSWORD) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["tsql", "-S", "standin", "-U", USER, "-P", password, "-D", "standin", "-o", "q"],
        input=sql + "\ngo\n",
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )


@pytest.mark.parametrize(("server_mode", "client_mode"), [("off", "request"), ("off", "require"),
                                                          ("on", "request"), ("notsup", "off")])  # fmt: skip
def test_tsql_reads_values(tmp_path: Path, stub_engine: StubEngine, server_mode: str, client_mode: str) -> None:
    cols = [ColumnSpec("i", "int"), ColumnSpec("d", "decimal", precision=38, scale=10), ColumnSpec("s", "nvarchar", 50),
            ColumnSpec("b", "varbinary", length=-1), ColumnSpec("g", "uniqueidentifier")]  # fmt: skip
    stub_engine.add_table(
        "t",
        cols,
        pa.table(
            {
                "i": pa.array([-2147483648, None], pa.int32()),
                "d": pa.array([Decimal("-9999999999999999999999999999.9999999999"), None], pa.decimal128(38, 10)),
                "s": ["héllo 😀", ""],
                "b": [b"\x00\xab", None],
                "g": pa.array([bytes.fromhex("6F9619FF8B86D011B42D00C04FC964FF"), None], pa.binary(16)),
            }
        ),
    )
    with serve("standin", user=USER, password=PASSWORD, encryption=server_mode, engine=stub_engine) as srv:
        out = tsql(freetds_env(tmp_path, srv, client_mode), "select * from t")
    lines = [line.split("\t") for line in out.stdout.splitlines() if line.strip()]
    assert lines[0] == ["i", "d", "s", "b", "g"]
    assert lines[1] == ["-2147483648", "-9999999999999999999999999999.9999999999", "héllo 😀", "00ab",
                        "6F9619FF-8B86-D011-B42D-00C04FC964FF"]  # fmt: skip
    assert lines[2][2] == "" and len(lines) == 3


def test_tsql_wrong_password_and_errors(tmp_path: Path, stub_server) -> None:
    env = freetds_env(tmp_path, stub_server)
    bad = tsql(env, "select 1", password="nope")
    assert "Login failed for user 'sa'." in bad.stderr + bad.stdout and "18456" in bad.stderr + bad.stdout
    out = tsql(env, "raise 8152 13 16 String or binary data would be truncated.")
    assert "Msg 8152 (severity 16, state 13)" in out.stderr
    assert "String or binary data would be truncated." in out.stderr


def test_freebcp_loads_exact_values(tmp_path: Path, child_server) -> None:
    cols = [
        ColumnSpec("id", "int", nullable=False),
        ColumnSpec("name", "nvarchar", length=100),
        ColumnSpec("amount", "decimal", precision=18, scale=4),
        ColumnSpec("at", "datetime2", scale=7),
        ColumnSpec("v", "varchar", length=20),
    ]
    srv = child_server({"target": (cols, pa.table({c.name: pa.array([], arrow_type(c)) for c in cols}))})
    data = tmp_path / "data.tsv"
    data.write_text("1\théllo 😀\t12.3456\t2024-01-02 03:04:05.1234567\tcafé\n2\t\t-0.0001\t\t\n", encoding="utf-8")
    out = freebcp_in("target", data, freetds_env(tmp_path, srv))
    assert "2 rows copied." in out.stdout, out.stdout + out.stderr
    (batch,) = srv.bulk_batches()
    assert batch.to_pylist() == [
        {"id": 1, "name": "héllo 😀", "amount": Decimal("12.3456"),
         "at": ticks(dt.datetime(2024, 1, 2, 3, 4, 5, 123456), 7), "v": "café"},
        {"id": 2, "name": None, "amount": Decimal("-0.0001"), "at": None, "v": None},
    ]  # fmt: skip
