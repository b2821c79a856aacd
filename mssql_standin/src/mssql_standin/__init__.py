"""A SQL Server stand-in: a TDS 7.4 server on loopback backed by DuckDB, for tests and benchmarks.

Real clients (pymssql/FreeTDS, python-tds, mssql-python, ConnectorX) connect to it as to SQL Server.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from . import scripts
from .server import EngineLike, Server, Settings

__all__ = ["ProcessServer", "Server", "Settings", "serve", "serve_process"]


def _make_engine(database: str, bulk_dir: str | None, data_dir: str | os.PathLike[str] | None = None) -> Any:
    from .engine import Engine  # the SQL side; imported late so protocol tests can run with a stub

    return Engine(database=database, bulk_dir=bulk_dir, data_dir=None if data_dir is None else os.fspath(data_dir))


@contextlib.contextmanager
def serve(
    database: str = "master",
    *,
    user: str | None = None,
    password: str | None = None,
    encryption: str = "off",
    host: str = "127.0.0.1",
    port: int = 0,
    packet_size: int = 4096,
    engine: EngineLike | None = None,
    bulk_dir: str | None = None,
    init_sql: str | None = None,
    init_files: Sequence[str | os.PathLike[str]] = (),
    data_dir: str | os.PathLike[str] | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
) -> Iterator[Server]:
    """Run a stand-in in a background thread for the `with` block: `srv.host`, `srv.port`, `srv.engine`.

    Port 0 picks a free port. Without `user` any login is accepted; with it, others get error 18456.
    `encryption`: "off" (login only, unless the client asks for more), "on" (forced), "notsup", or "strict"
    (TDS 8.0 only: TLS before the first packet). `tls_cert`/`tls_key`: PEM files; default a self-signed one.
    `init_sql` is one batch; `init_files` are GO-separated scripts run in order before clients are let in (the
    first failing batch raises scripts.ScriptFailed). `data_dir`: keep the database in a DuckDB file there,
    reopened by the next server given the same directory (see persist.py); without it, all is in memory.
    Clients that hold the GIL while waiting on the socket cannot talk to a server in their own process:
    use serve_process for those.
    """
    owned = _make_engine(database, bulk_dir, data_dir) if engine is None else None
    eng = engine if engine is not None else owned
    settings = Settings(
        user=user,
        password=password,
        encryption=encryption,
        packet_size=packet_size,
        tls_cert=tls_cert,
        tls_key=tls_key,
    )
    try:
        srv = _start(eng, init_sql, init_files, settings, host, port)
        try:
            yield srv
        finally:
            srv.stop()
    finally:
        if owned is not None:
            owned.close()


def _start(
    eng: Any,
    init_sql: str | None,
    init_files: Sequence[str | os.PathLike[str]],
    settings: Settings,
    host: str,
    port: int,
) -> Server:
    """Run the start-up scripts on the engine, then start listening."""
    if init_sql:
        session = eng.session()
        try:
            for _ in session.execute(init_sql):
                pass
        finally:
            session.close()
    for path in init_files:
        scripts.run_on_engine(eng, path)
    return Server(eng, host=host, port=port, settings=settings).start()


@dataclass(frozen=True)
class ProcessServer:
    host: str
    port: int
    pid: int


def _serve_child(conn: Any, database: str, kwargs: dict[str, Any], setup: Callable[[Any], None] | None) -> None:
    engine = _make_engine(database, kwargs.pop("bulk_dir", None), kwargs.pop("data_dir", None))
    try:
        if setup is not None:
            setup(engine)
        with serve(database, engine=engine, **kwargs) as srv:
            conn.send((srv.host, srv.port))
            with contextlib.suppress(EOFError):  # the parent went away: stop too
                conn.recv()
    finally:
        engine.close()
    # Every session is closed by now; skipping interpreter teardown avoids an intermittent abort
    # ("terminate called ... exception not rethrown") while DuckDB/Arrow objects are destroyed at exit.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


@contextlib.contextmanager
def serve_process(
    database: str = "master",
    *,
    setup: Callable[[Any], None] | None = None,
    start_timeout: float = 120.0,
    **kwargs: Any,
) -> Iterator[ProcessServer]:
    """The stand-in (real engine) in a child process, for clients that hold the GIL while they wait:
    pymssql's bulk_copy, mssql-python's bulkcopy and ConnectorX's partitioned reads deadlock against a
    server thread in their own process. `setup(engine)` (a module-level function) runs in the child before
    clients are let in, e.g. to call engine.load_arrow; other keywords are serve()'s."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve_child, args=(child, database, kwargs, setup), daemon=True)
    proc.start()
    child.close()  # the child's end is the child's alone: its exit reaches poll() as end of file
    try:
        if not parent.poll(start_timeout):
            raise RuntimeError("the stand-in process did not start")
        try:
            host, port = parent.recv()
        except EOFError:
            proc.join(15)
            raise RuntimeError(f"the stand-in process stopped before serving (exit code {proc.exitcode})") from None
        assert proc.pid is not None
        yield ProcessServer(host, port, proc.pid)
    finally:
        with contextlib.suppress(OSError):
            parent.send("stop")
        proc.join(15)
        if proc.is_alive():
            proc.kill()
            proc.join(5)
