"""A stand-in in its own process, loaded with Arrow tables before clients are let in: the SQL Server of the demo
and the benchmarks (a generated StackOverflow2010 there).

    with preloaded_standin(Preload(tables, batches, "StackOverflow2010 scale 0.1 seed 42")) as src:
        src.url(reader="pymssql")      # mssql://sa:…@127.0.0.1:<port>/StackOverflow2010?reader=pymssql
    with preloaded_standin(None, bulk_dir=d):    # empty, a target; BULK INSERT may read files from d

The stand-in makes no data of its own: the caller names the tables (anything shaped like `TableDef`, such as
ray_replicator.synth's SynthTable) and gives a module-level `batches(table_name)`; both reach the child process by
pickle, so the generator stays with its caller and this package never imports it. By default nothing is kept on
disk; with `data_dir=DIR` the load is kept there (see persist.py) and the next stand-in given the same directory and
the same label reopens it instead of generating it again:

    with preloaded_standin(Preload(...), data_dir="/var/tmp/so-0.1") as src: ...   # first time: generate and load
    with preloaded_standin(Preload(...), data_dir="/var/tmp/so-0.1") as src: ...   # then: reopen in seconds
"""

from __future__ import annotations

import contextlib
import functools
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pyarrow as pa

from . import serve_process

USER = "sa"
PASSWORD = "Demo!Passw0rd"
DATABASE = "StackOverflow2010"


class ColumnDef(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def sql_type(self) -> str: ...
    @property
    def nullable(self) -> bool: ...


class TableDef(Protocol):
    """A table to create in dbo: its columns as SQL Server declares them and its clustered primary key (whose
    first column is an IDENTITY(1,1) the data fills)."""

    @property
    def name(self) -> str: ...
    @property
    def columns(self) -> Sequence[ColumnDef]: ...
    @property
    def pk_columns(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class Preload:
    """What to load: the tables, a picklable `batches(table_name)` giving each one's rows in Arrow record batches,
    and how the load is named in the line the child prints when it is done."""

    tables: Sequence[TableDef]
    batches: Callable[[str], Iterable[pa.RecordBatch]]
    label: str


def load_tables(engine: Any, preload: Preload | None) -> None:
    """serve_process's setup: create and fill every table vectorised inside the stand-in's process, so no row
    crosses a socket before a measurement starts (None: leave the database empty)."""
    if preload is None:
        return
    from .types import parse_type

    started = time.perf_counter()
    if _reopened(engine, preload.label):
        print(f"stand-in: {preload.label} reopened in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        return
    rows = 0
    for t in preload.tables:
        specs = [parse_type(c.sql_type).column_spec(c.name, nullable=c.nullable) for c in t.columns]
        rows += engine.load_arrow(
            t.name, specs, preload.batches(t.name), primary_key=list(t.pk_columns), identity=(1, 1)
        )
    if engine.store is not None:
        engine.store.save_state({"preload": preload.label})
    elapsed = time.perf_counter() - started
    print(f"stand-in: {preload.label}, {rows:,} rows loaded in {elapsed:.1f} s", file=sys.stderr, flush=True)


def _reopened(engine: Any, label: str) -> bool:
    """True when the engine's data directory already holds this complete load; an empty one (or none) is to
    be loaded; anything else (another load, or one a crash cut short) is refused rather than mixed into."""
    if engine.store is None:
        return False
    held = engine.store.state().get("preload")
    if held == label:
        return True
    if engine.catalog.tables:
        what = f"'{held}'" if held else "an unfinished or hand-made load"
        raise RuntimeError(f"the stand-in's data directory holds {what}, not '{label}': give an empty directory")
    return False


@dataclass(frozen=True)
class StandIn:
    """A running stand-in: where it listens and the mssql:// URL ray-replicator reaches it by."""

    host: str
    port: int
    pid: int
    bulk_dir: str | None = None

    def url(self, **options: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in options.items())
        base = f"mssql://{USER}:{PASSWORD}@{self.host}:{self.port}/{DATABASE}"
        return base + (f"?{query}" if query else "")


@contextlib.contextmanager
def preloaded_standin(
    preload: Preload | None, *, bulk_dir: str | None = None, start_timeout: float = 900.0, **serve_options: Any
) -> Iterator[StandIn]:
    """A stand-in on 127.0.0.1 holding `preload` (None: empty, a target), stopped on exit; other keywords are
    serve()'s (encryption, TLS files, packet size).

    It runs in a child process: pymssql, mssql-python's bulk copy and ConnectorX hold the GIL while they wait on
    the socket, so a server thread in their own process would starve.
    """
    with serve_process(
        DATABASE,
        setup=functools.partial(load_tables, preload=preload),
        start_timeout=start_timeout,
        user=USER,
        password=PASSWORD,
        host="127.0.0.1",
        bulk_dir=bulk_dir,
        **serve_options,
    ) as srv:
        yield StandIn(srv.host, srv.port, srv.pid, bulk_dir)


def mssql_python_connect(srv: StandIn) -> Any:
    """An autocommit mssql-python connection to the stand-in (Encrypt=no: the stand-in's certificate is
    self-signed)."""
    import mssql_python

    return mssql_python.connect(
        f"Server={srv.host},{srv.port};Database={DATABASE};UID={USER};PWD={PASSWORD};Encrypt=no;PacketSize=32767",
        autocommit=True,
    )
