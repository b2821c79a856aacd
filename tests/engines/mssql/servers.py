"""SQL Server stand-ins for tests, on loopback and reached through the real drivers, and the hard-case table.

The fixtures that serve them are in tests/engines/mssql/conftest.py; tests elsewhere start their own with standin().

Each stand-in runs in its own process, as SQL Server would: mssql-python keeps the GIL while it waits for the
network inside `arrow_batch`, so a stand-in served by a thread of the test process can starve and the read hangs.
Data that needs the stand-in's Arrow loader is described by a JSON spec and loaded by the child (`load_spec`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pymssql

if TYPE_CHECKING:
    from ray_replicator.synth.stackoverflow import SynthTable

USER = "sa"
PASSWORD = "Str0ng!Passw0rd"
D = decimal.Decimal


REPO = Path(__file__).resolve().parents[3]
_CHILD = """
import json, os, signal, sys, threading
from mssql_standin import serve
from tests.engines.mssql.servers import load_spec
spec = json.loads(sys.argv[1])
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
tls = {k: spec[k] for k in ("encryption", "tls_cert", "tls_key") if k in spec}
with serve(user=spec["user"], password=spec["password"], bulk_dir=spec.get("bulk_dir"), packet_size=32767,
           **tls) as srv:
    load_spec(srv.engine, spec)
    print("PORT", srv.port, flush=True)
    stop.wait()
sys.stdout.flush()
os._exit(0)
"""


class Server:
    """A running stand-in with helpers to run T-SQL through pymssql and to build ray-replicator URLs."""

    def __init__(self, host: str, port: int, bulk_dir: str | None = None) -> None:
        self.host = host
        self.port = port
        self.bulk_dir = bulk_dir

    def url(self, **options: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in options.items())
        return f"mssql://{USER}:{PASSWORD}@{self.host}:{self.port}/master" + (f"?{query}" if query else "")

    def writer_url(self, writer: str) -> str:
        """This server as a target with `writer`; bulk-insert also names the folder BULK INSERT reads."""
        if writer != "bulk-insert":
            return self.url(writer=writer)
        assert self.bulk_dir is not None, "start the server with a bulk_dir for writer=bulk-insert"
        return self.url(writer=writer, bulk_dir=self.bulk_dir)

    def connect(self) -> Any:
        return pymssql.connect(
            server=self.host,
            port=str(self.port),
            user=USER,
            password=PASSWORD,
            database="master",
            autocommit=True,
            tds_version="7.4",
        )

    def run(self, *statements: str) -> None:
        conn = self.connect()
        try:
            cur = conn.cursor()
            for sql in statements:
                cur.execute(sql)
        finally:
            conn.close()

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        conn = self.connect()
        try:
            cur = conn.cursor()
            cur.execute(sql)
            return [tuple(r) for r in cur.fetchall()]
        finally:
            conn.close()


def synth_rows(server: Server, table: SynthTable) -> list[tuple[Any, ...]]:
    """A generated table's rows as the stand-in holds them, in the generator's column order, by Id."""
    cols = ", ".join(f"[{c}]" for c in table.column_names)
    return server.rows(f"SELECT {cols} FROM dbo.[{table.name}] ORDER BY [Id]")


def small_run_settings(source: str, target: str, **extra: Any) -> dict[str, Any]:
    """replicate() settings for the small generated databases of these tests: many ranges, no report file."""
    from tests.helpers import run_settings  # not at the top: every stand-in's child process imports this module

    return run_settings(source, target, rows_per_range=2_000, batch_rows=1_000) | extra


def load_spec(engine: Any, spec: dict[str, Any]) -> None:
    """Load Arrow data into a stand-in engine: {"so": {"scale", "seed", "tables"}} and/or {"nul": true}."""
    import pyarrow as pa

    from mssql_standin.results import ColumnSpec
    from mssql_standin.types import parse_type
    from ray_replicator.synth import stackoverflow as so

    if "so" in spec:
        for name in spec["so"]["tables"]:
            t = so.table(name)
            specs = [parse_type(c.sql_type).column_spec(c.name, nullable=c.nullable) for c in t.columns]
            batches = so.generate_batches(name, spec["so"]["scale"], spec["so"]["seed"])
            engine.load_arrow(name, specs, batches, primary_key=list(t.pk_columns), identity=(1, 1))
    if spec.get("nul"):
        engine.load_arrow(
            "nul",
            [ColumnSpec("id", "int", 4, nullable=False), ColumnSpec("t", "nvarchar", 40)],
            pa.table({"id": pa.array([1, 42], pa.int32()), "t": ["ok", "a\x00b"]}),
            primary_key=["id"],
        )


@contextlib.contextmanager
def standin(bulk_dir: str | None = None, **spec: Any) -> Iterator[Server]:
    """A stand-in in a child process on 127.0.0.1, loaded per `spec` (see load_spec); `encryption`, `tls_cert`
    and `tls_key` in `spec` go to serve()."""
    full = {"user": USER, "password": PASSWORD, "bulk_dir": bulk_dir, **spec}
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, json.dumps(full)], stdout=subprocess.PIPE, text=True, cwd=REPO, env=env
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the stand-in did not start (exit {proc.poll()}): {line!r}")
        yield Server("127.0.0.1", int(line.split()[1]), bulk_dir)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ------------------------------------------------------------------------------------------------- hard cases

BIG_TEXT = ("Ω long text with emoji 😀 and CR LF\r\n" * 80_000)[:3_000_000]
BIG_BYTES = bytes(range(256)) * 12_000

HARD_COLUMNS: list[tuple[str, str]] = [
    ("id", "int NOT NULL"),
    ("ti", "tinyint NULL"),
    ("si", "smallint NULL"),
    ("bi", "bigint NULL"),
    ("bt", "bit NULL"),
    ("m", "money NULL"),
    ("sm", "smallmoney NULL"),
    ("dec", "decimal(19,4) NULL"),
    ("dec28", "decimal(28,10) NULL"),
    ("r", "real NULL"),
    ("f", "float NULL"),
    ("nv", "nvarchar(100) NULL"),
    ("v", "varchar(50) NULL"),
    ("nc", "nchar(5) NULL"),
    ("big", "nvarchar(max) NULL"),
    ("vb", "varbinary(max) NULL"),
    ("b", "binary(4) NULL"),
    ("da", "date NULL"),
    ("tm", "time(7) NULL"),
    ("dt", "datetime NULL"),
    ("sdt", "smalldatetime NULL"),
    ("d2", "datetime2(7) NULL"),
    ("d3", "datetime2(3) NULL"),
    ("g", "uniqueidentifier NULL"),
    ("nn", "nvarchar(10) NOT NULL"),
]

# What the readers must produce for each row (Arrow to_pylist values), keyed by column.
HARD_ROWS: list[dict[str, Any]] = [
    {
        "id": -1,
        "ti": 0,
        "si": -32768,
        "bi": -9223372036854775808,
        "bt": False,
        "m": D("-922337203685477.5808"),
        "sm": D("-214748.3648"),
        "dec": D("-999999999999999.9999"),
        "dec28": D("-123456789012345678.0123456789"),
        "r": 1.5,
        "f": -1.7976931348623157e308,
        "nv": "λ😀 \u200b\u00a0x",
        "v": "café € naïve",
        "nc": "ab   ",
        "big": BIG_TEXT,
        "vb": BIG_BYTES,
        "b": b"\x00\x00\x00\x01",
        "da": dt.date(1, 1, 1),
        "tm": dt.time(0, 0, 0),
        "dt": dt.datetime(1753, 1, 1),
        "sdt": dt.datetime(1900, 1, 1),
        "d2": dt.datetime(1, 1, 1),
        "d3": dt.datetime(1, 1, 1, 0, 0, 0, 1000),
        "g": uuid.UUID("00000000-0000-0000-0000-000000000001"),
        "nn": "",
    },
    {"id": 0, "nv": "", "v": "", "big": "", "vb": b"", "nn": "x"},
    {
        "id": 7,
        "ti": 255,
        "si": 32767,
        "bi": 9223372036854775807,
        "bt": True,
        "m": D("922337203685477.5807"),
        "sm": D("214748.3647"),
        "dec": D("7082761.6900"),
        "dec28": D("0.0000000001"),
        "r": 3.4028234663852886e38,
        "f": 0.1,
        "nv": "a\r\nb  ",
        "v": "trailing  ",
        "nc": "12345",
        "big": "x" * 70_000,
        "vb": b"\xff" * 70_000,
        "b": b"\xff\xff\xff\xff",
        "da": dt.date(9999, 12, 31),
        "tm": dt.time(23, 59, 59, 999999),
        "dt": dt.datetime(9999, 12, 31, 23, 59, 59, 997000),
        "sdt": dt.datetime(2079, 6, 6, 23, 59),
        "d2": dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
        "d3": dt.datetime(9999, 12, 31, 23, 59, 59, 999000),
        "g": uuid.UUID("6f9619ff-8b86-d011-b42d-00c04fc964ff"),
        "nn": "Key",
    },
    {
        "id": 1_000_000,
        "m": D("7082761.6900"),
        "dec": D("7082761.6900"),
        "dt": dt.datetime(2020, 1, 1, 10, 0, 0, 997000),
        "d2": dt.datetime(2020, 1, 1, 10, 0, 0, 123456),
        "tm": dt.time(10, 0, 0, 3000),
        "nv": "'quoted' \"double\", comma\ttab",
        "nn": "  ",
    },
]


def tsql_literal(value: Any) -> str:
    """T-SQL literals as a user would type them (not produced by the code under test)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | D):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return "N'" + value.replace("'", "''") + "'"
    if isinstance(value, bytes):
        return "0x" + value.hex() if value else "CAST('' AS varbinary(max))"
    if isinstance(value, uuid.UUID):
        return f"'{value}'"
    if isinstance(value, dt.datetime):  # datetime literals take at most 3 fractional digits
        frac = "" if not value.microsecond else f".{value.microsecond:06d}".rstrip("0")
        return f"'{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.strftime('%H:%M:%S')}{frac}'"
    if isinstance(value, dt.date | dt.time):
        return f"'{value.isoformat()}'"
    raise TypeError(value)


def hard_expected() -> list[dict[str, Any]]:
    return [{name: row.get(name) for name, _ in HARD_COLUMNS} for row in HARD_ROWS]


def create_hard_table(server: Server, schema: str = "dbo", name: str = "hard", skip: tuple[str, ...] = ()) -> None:
    columns = [(c, t) for c, t in HARD_COLUMNS if c not in skip]
    cols = ", ".join(f"[{c}] {t}" for c, t in columns)
    server.run(f"CREATE TABLE [{schema}].[{name}] ({cols}, CONSTRAINT [PK_{name}] PRIMARY KEY CLUSTERED ([id]))")
    for row in HARD_ROWS:
        names = [c for c, _ in columns if c in row]
        values = [tsql_literal(row[c]) for c in names]
        server.run(
            f"INSERT INTO [{schema}].[{name}] ({', '.join(f'[{c}]' for c in names)}) VALUES ({', '.join(values)})"
        )
