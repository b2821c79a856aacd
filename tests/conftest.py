"""Shared fixtures: a real embedded PostgreSQL, one that checks passwords, SQL Server stand-ins and a real local Ray
(num_cpus=2), all on loopback."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from tests.engines.mssql.servers import Server, standin
from tests.helpers import NOCREATE_PW, NOSELECT_PW, fresh_database, password_server_fixture, ray_processes_under
from tests.pgserver import PasswordPostgres

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


@pytest.fixture(scope="session")
def pg_base_url() -> Iterator[str]:
    """Lives outside pytest's basetemp: pytest prunes old basetemp folders when other sessions start, which
    would delete a running server's data directory under it."""
    from ray_replicator.embedded import start_embedded_postgres

    root = Path(tempfile.mkdtemp(prefix="rr-pg-"))
    server, url = start_embedded_postgres(root / "data")
    yield url
    server.cleanup()
    shutil.rmtree(root, ignore_errors=True)


_db_counter = itertools.count()


@pytest.fixture
def make_database(pg_base_url: str) -> Callable[[str], str]:
    """Create a fresh database with a unique name; returns its URL."""
    from ray_replicator.embedded import recreate_database

    def make(prefix: str = "db") -> str:
        return recreate_database(pg_base_url, f"{prefix}_{os.getpid()}_{next(_db_counter)}")

    return make


@pytest.fixture(scope="session")
def ray_local() -> Iterator[None]:
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def ray_tmp() -> Iterator[Path]:
    """A Ray temp dir of a CLI run's own (short: Ray's socket paths must stay under 108 bytes), to find its
    processes; whatever still runs there at the end is killed."""
    path = Path(tempfile.mkdtemp(prefix="rr-", dir="/tmp"))
    yield path
    for proc in ray_processes_under(path):
        with contextlib.suppress(psutil.Error):
            proc.kill()
    shutil.rmtree(path, ignore_errors=True)


pwpg = password_server_fixture(
    "src",
    "CREATE TABLE t (id int PRIMARY KEY, v text, n int)",
    "INSERT INTO t SELECT g, md5(g::text), g * 1000 FROM generate_series(1, 2000) g",
    "CREATE TABLE heap (a int)",
    "INSERT INTO heap VALUES (1), (1), (2)",
    "ANALYZE",
    before=(
        f"CREATE ROLE nocreate LOGIN PASSWORD '{NOCREATE_PW}'",
        f"CREATE ROLE noselect LOGIN PASSWORD '{NOSELECT_PW}'",
    ),
    scope="session",
)
"""The password server: databases src (tables t, heap, acct), roles nocreate (no CREATE anywhere) and noselect (no
SELECT)."""


@pytest.fixture
def fresh_db(pwpg: PasswordPostgres) -> str:
    """A new empty database on the password server; returns its URL (with the superuser's password)."""
    return fresh_database(pwpg)


@pytest.fixture
def ms_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A fresh SQL Server stand-in for each test, with a folder of its own for writer=bulk-insert."""
    with standin(bulk_dir=str(tmp_path_factory.mktemp("bulk"))) as server:
        yield server


@pytest.fixture(scope="module")
def variant_source() -> Iterator[Server]:
    """A stand-in with dbo.kept(id, v), rows (1, 'a'), (2, NULL), (3, 'ç'), and dbo.variant(id, x sql_variant): a
    source that sql_variant = refuse (the default) stops unless dbo.variant is excluded."""
    with standin() as server:
        server.run(
            "CREATE TABLE dbo.kept (id int NOT NULL PRIMARY KEY, v nvarchar(20) NULL)",
            "INSERT INTO dbo.kept (id, v) VALUES (1, N'a'), (2, NULL), (3, N'ç')",
            "CREATE TABLE dbo.variant (id int NOT NULL PRIMARY KEY, x sql_variant NULL)",
            "INSERT INTO dbo.variant (id, x) VALUES (1, 42)",
        )
        yield server
