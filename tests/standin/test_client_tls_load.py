"""Every real client reads a 1 M-row table exactly through the stand-in in every encryption mode it supports.

Modes: login-only (stand-in `off`, SQL Server's default: TLS for LOGIN7 only), forced (`on`: every packet in
TLS) and TDS 8.0 strict (`strict`: TLS before the first packet). The certificate comes from a test CA, so the
clients that can verify it do. Clients left out of a mode, and why:
- strict: FreeTDS 1.3.17 (Debian's `tsql`, `freebcp`), python-tds 1.17 and ConnectorX 0.4.6 (tiberius) do not
  implement TDS 8.0; pymssql's bundled FreeTDS 1.5 does (through freetds.conf), mssql-python's ODBC 18 does.
- python-tds encrypts only with pyOpenSSL installed (it is in the dev extras).
The regression this guards: mssql-python (ODBC 18.6) hung for ever reading more than a few dozen rows under
forced TLS with 32,767-byte packets when TLS records straddled TDS packets.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import multiprocessing
import os
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mssql_standin import ProcessServer, serve_process
from mssql_standin.tls import Pki, make_test_pki
from tests.standin.conftest import PASSWORD, USER

ROWS = 1_000_000
QUERY = "SELECT id, s FROM big ORDER BY id"
HANG_S = int(os.environ.get("HANG_S", "240"))
pytestmark = pytest.mark.timeout(600)


def _text(i: int) -> str:
    return f"row {i} λ😀" if i % 7 == 0 else f"row {i}"


def load_big(engine: Any) -> None:
    """Runs in the stand-in's process: (id bigint, s nvarchar(40)) with non-ASCII text in every 7th row."""
    import pyarrow as pa

    from mssql_standin.results import ColumnSpec

    ids = list(range(ROWS))
    engine.load_arrow(
        "big",
        [ColumnSpec("id", "bigint", nullable=False), ColumnSpec("s", "nvarchar", 40)],
        pa.table({"id": pa.array(ids, pa.int64()), "s": [_text(i) for i in ids]}),
        primary_key=["id"],
    )


def digest(rows: Iterable[tuple[Any, Any]]) -> tuple[int, str]:
    h = hashlib.sha256()
    n = 0
    for i, s in rows:
        h.update(f"{int(i)}\t{s}\n".encode())
        n += 1
    return n, h.hexdigest()


EXPECTED = digest((i, _text(i)) for i in range(ROWS))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


_servers: dict[str, ProcessServer] = {}


@pytest.fixture(scope="module")
def servers(pki: Pki) -> Iterator[dict[str, ProcessServer]]:
    """One stand-in per mode, each holding the 1 M-row table."""
    import contextlib

    with contextlib.ExitStack() as stack:
        for mode in ("off", "on", "strict"):
            _servers[mode] = stack.enter_context(
                serve_process(
                    "standin",
                    setup=load_big,
                    user=USER,
                    password=PASSWORD,
                    encryption=mode,
                    packet_size=32767,
                    tls_cert=str(pki.cert_file),
                    tls_key=str(pki.key_file),
                )
            )
        yield _servers
    _servers.clear()


# ------------------------------------------------------------------------------------------------ readers


def _fetch(cur: Any) -> Iterator[tuple[Any, Any]]:
    cur.execute(QUERY)
    while rows := cur.fetchmany(50_000):
        yield from rows


def read_pymssql(srv: ProcessServer, mode: str, pki: Pki, tmp: Path) -> tuple[int, str]:
    import pymssql

    kwargs: dict[str, Any] = {"server": srv.host, "port": str(srv.port)}
    if mode == "on":
        kwargs["encryption"] = "require"
    elif mode == "strict":  # pymssql takes no 'strict' or CA file itself: FreeTDS reads them from freetds.conf
        conf = tmp / "freetds.conf"
        conf.write_text(
            f"[standin_strict]\n\thost = {srv.host}\n\tport = {srv.port}\n\tencryption = strict\n"
            f"\tca file = {pki.ca_file}\n"
        )
        os.environ["FREETDSCONF"] = str(conf)
        kwargs["server"] = "standin_strict"
    conn = pymssql.connect(user=USER, password=PASSWORD, database="standin", tds_version="7.4", **kwargs)
    try:
        return digest(_fetch(conn.cursor()))
    finally:
        conn.close()
        os.environ.pop("FREETDSCONF", None)


def read_mssql_python(srv: ProcessServer, mode: str, pki: Pki, tmp: Path) -> tuple[int, str]:
    import mssql_python
    import pyarrow as pa

    tls = {
        "off": "Encrypt=no",
        "on": "Encrypt=yes;TrustServerCertificate=yes",  # ODBC 18 pins ServerCertificate= under strict only
        "strict": f"Encrypt=strict;ServerCertificate={pki.cert_file}",
    }[mode]
    conn = mssql_python.connect(
        f"Server={srv.host},{srv.port};Database=standin;UID={USER};PWD={PASSWORD};{tls};PacketSize=32767",
        autocommit=True,
    )
    try:
        cur = conn.cursor()
        cur.execute(QUERY)
        batches = []
        while (b := cur.arrow_batch(65536)).num_rows:
            batches.append(b)
        t = pa.Table.from_batches(batches)
        return digest(zip(t.column("id").to_pylist(), t.column("s").to_pylist(), strict=True))
    finally:
        conn.close()


def read_pytds(srv: ProcessServer, mode: str, pki: Pki, tmp: Path) -> tuple[int, str]:
    import pytds

    conn = pytds.connect(
        srv.host,
        "standin",
        USER,
        PASSWORD,
        port=srv.port,
        cafile=str(pki.ca_file),
        validate_host=False,
        enc_login_only=mode == "off",
        autocommit=True,
    )
    try:
        return digest(_fetch(conn.cursor()))
    finally:
        conn.close()


def read_connectorx(srv: ProcessServer, mode: str, pki: Pki, tmp: Path) -> tuple[int, str]:
    import connectorx as cx

    query = "?encrypt=true&trust_server_certificate=true" if mode == "on" else ""
    url = f"mssql://{USER}:{PASSWORD.replace('!', '%21')}@{srv.host}:{srv.port}/standin{query}"
    t = cx.read_sql(url, QUERY, return_type="arrow")
    return digest(zip(t.column("id").to_pylist(), t.column("s").to_pylist(), strict=True))


def _freetds_conf(tmp: Path, srv: ProcessServer, mode: str, pki: Pki) -> dict[str, str]:
    enc = {"off": "request", "on": "require"}[mode]
    conf = tmp / "freetds.conf"
    conf.write_text(
        f"[standin]\n\thost = {srv.host}\n\tport = {srv.port}\n\ttds version = 7.4\n"
        f"\tclient charset = UTF-8\n\tencryption = {enc}\n\tca file = {pki.ca_file}\n"
    )
    return dict(os.environ, FREETDSCONF=str(conf))


def read_tsql(srv: ProcessServer, mode: str, pki: Pki, tmp: Path) -> tuple[int, str]:
    done = subprocess.run(
        ["tsql", "-S", "standin", "-U", USER, "-P", PASSWORD, "-D", "standin", "-o", "fhq"],
        input=QUERY + "\ngo\n",
        capture_output=True,
        text=True,
        timeout=300,
        env=_freetds_conf(tmp, srv, mode, pki),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stdout.split("\n") if line]
    return digest(tuple(line.split("\t", 1)) for line in lines)  # type: ignore[misc]


def read_freebcp(srv: ProcessServer, mode: str, pki: Pki, tmp: Path) -> tuple[int, str]:
    out = tmp / "big.bcp"
    done = subprocess.run(
        ["freebcp", QUERY, "queryout", str(out), "-c", "-S", "standin", "-U", USER, "-P", PASSWORD, "-D", "standin"],
        capture_output=True,
        text=True,
        timeout=300,
        env=_freetds_conf(tmp, srv, mode, pki),
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    lines = [line for line in out.read_text(encoding="utf-8").split("\n") if line]
    return digest(tuple(line.split("\t", 1)) for line in lines)  # type: ignore[misc]


READERS = {
    "pymssql": (read_pymssql, ("off", "on", "strict")),
    "mssql-python": (read_mssql_python, ("off", "on", "strict")),
    "python-tds": (read_pytds, ("off", "on")),
    "connectorx": (read_connectorx, ("off", "on")),
    "tsql": (read_tsql, ("off", "on")),
    "freebcp": (read_freebcp, ("off", "on")),
}
CASES = [(client, mode) for client, (_f, modes) in READERS.items() for mode in modes]


@pytest.mark.parametrize(("client", "mode"), CASES, ids=[f"{c}-{m}" for c, m in CASES])
def test_client_reads_a_million_rows_exactly(
    servers: dict[str, ProcessServer], pki: Pki, tmp_path: Path, client: str, mode: str
) -> None:
    if client in ("tsql", "freebcp") and shutil.which(client) is None:
        pytest.skip("Debian freetds-bin is not installed")
    reader, _modes = READERS[client]
    assert _in_child(reader, servers[mode], mode, pki, tmp_path) == EXPECTED


def _in_child(reader: Any, *args: Any) -> tuple[int, str]:
    """Run a reader in its own process: a client that hangs inside C while holding the GIL (as mssql-python did)
    would stop pytest's own timeout too; here it fails the test."""
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx) as pool:
        future = pool.submit(reader, *args)
        try:
            return future.result(timeout=HANG_S)
        except concurrent.futures.TimeoutError:
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.kill()
            pytest.fail(f"{reader.__name__} made no progress for {HANG_S} s: the client hangs")


def test_strict_server_refuses_a_client_without_tds8(servers: dict[str, ProcessServer]) -> None:
    """A pre-TDS-8.0 client (PRELOGIN first) is turned away by a strict server instead of being left waiting."""
    import pymssql

    srv = servers["strict"]
    with pytest.raises(pymssql.OperationalError, match="20002"):
        pymssql.connect(
            server=srv.host,
            port=str(srv.port),
            user=USER,
            password=PASSWORD,
            database="standin",
            encryption="require",
            login_timeout=20,
        )
