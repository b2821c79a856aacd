"""Fault 4: the SQL Server source drops connections mid-stream. A TCP proxy between the copy workers and the
stand-in cuts the first connections that have carried a few hundred KB of results; the ranges they were reading
must be retried and the copy end exact (every row equal, no duplicate keys), or the run must fail loudly.

The cut is a reset from the proxy, as from a dying server: pymssql then reports "DBPROCESS is dead" (FreeTDS
20047) and mssql-python "Communication link failure" (08S01); both are transient, so Ray retries the range on a
fresh connection. RR_FAULT_TRIALS sets the repetitions.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from ray_replicator import replicate
from ray_replicator.synth import stackoverflow as so
from tests.engines.mssql.servers import Server, standin

TRIALS = range(int(os.environ.get("RR_FAULT_TRIALS", "2")))
SCALE = 0.004
CUT_AFTER_BYTES = 256 * 1024


class CuttingProxy:
    """Forwards 127.0.0.1 connections to the stand-in; the first `cuts` connections whose server→client stream
    passes `after` bytes are shut down hard in both directions (as a server that dies or a network that drops)."""

    def __init__(self, target_port: int, cuts: int, after: int, cut: Any) -> None:
        self.target_port = target_port
        self.cuts_left = cuts
        self.after = after
        self.shared_cut = cut
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def cut(self) -> int:
        return int(self.shared_cut.value)

    def _accept(self) -> None:
        while not self.closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            state = {"down": 0, "doomed": False}
            threading.Thread(target=self._pump, args=(client, server, None), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, state), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, state: dict[str, int | bool] | None) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
                if state is None:
                    continue
                state["down"] = int(state["down"]) + len(data)
                if int(state["down"]) >= self.after and not state["doomed"]:
                    with self.lock:
                        if self.cuts_left > 0:
                            self.cuts_left -= 1
                            self.shared_cut.value += 1
                            state["doomed"] = True
                    if state["doomed"]:
                        break
        except OSError:
            pass
        # close() alone does not end a connection while the opposite pump is blocked in recv() on the same socket
        # (the kernel keeps the file open until that call returns): shut the read side first to wake it, so the
        # last close, with a zero linger, resets the connection as a dying server would.
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RD)
            with contextlib.suppress(OSError):
                sock.close()

    def close(self) -> None:
        self.closing = True
        self.listener.close()


def _run_proxy(target_port: int, cuts: int, after: int, cut: Any, ports: Any, stop: Any) -> None:
    proxy = CuttingProxy(target_port, cuts, after, cut)
    ports.put(proxy.port)
    stop.wait()
    proxy.close()


@contextlib.contextmanager
def cutting_proxy(target_port: int, cuts: int, after: int) -> Iterator[tuple[int, Any]]:
    """The proxy in a process of its own: the driver's mssql-python holds the GIL while it waits on the socket,
    so a proxy thread in the test process would never get to forward its bytes."""
    ctx = multiprocessing.get_context("spawn")
    cut, ports, stop = ctx.Value("i", 0), ctx.Queue(), ctx.Event()
    proc = ctx.Process(target=_run_proxy, args=(target_port, cuts, after, cut, ports, stop), daemon=True)
    proc.start()
    try:
        yield ports.get(timeout=60), cut
    finally:
        stop.set()
        proc.join(10)
        if proc.is_alive():
            proc.kill()


@pytest.fixture(scope="module")
def so_source() -> Iterator[Server]:
    with standin(so={"scale": SCALE, "seed": 11, "tables": [t.name for t in so.TABLES]}) as server:
        yield server


@pytest.mark.parametrize("trial", TRIALS)
@pytest.mark.parametrize("reader", ["mssql-python", "pymssql"])
def test_source_drops_connections_mid_stream(
    so_source: Server, make_database: Callable[[str], str], ray_local: None, reader: str, trial: int
) -> None:
    with cutting_proxy(so_source.port, cuts=2, after=CUT_AFTER_BYTES) as (port, cut):
        url = Server("127.0.0.1", port).url(reader=reader)
        pg_url = make_database("drops")
        settings = {
            "source": {"url": url},
            "target": {"url": pg_url},
            "rows_per_range": 4_000,
            "batch_rows": 1_000,
            "report_path": None,
        }
        report = replicate(settings)
        print(f"trial {trial} reader {reader}: {cut.value} connection(s) cut mid-stream, status {report.status}")
        assert cut.value == 2, "the proxy must really have cut connections mid-stream"
        assert report.status == "ok", report.errors
        assert all(t.verified == "yes (checksums)" for t in report.tables)
        for table in so.TABLES:
            cols = ", ".join(f"[{c}]" for c in table.column_names)
            src = so_source.rows(f"SELECT {cols} FROM dbo.[{table.name}] ORDER BY [Id]")
            with psycopg.connect(pg_url) as conn:
                pg_cols = ", ".join(f'"{c}"' for c in table.column_names)
                dst = conn.execute(f'SELECT {pg_cols} FROM dbo."{table.name}" ORDER BY "Id"').fetchall()
                dupes = conn.execute(f'SELECT count(*) - count(DISTINCT "Id") FROM dbo."{table.name}"').fetchone()
            assert dupes is not None and dupes[0] == 0
            assert len(src) == len(dst), table.name
            assert [tuple(r) for r in src] == [tuple(r) for r in dst], table.name
