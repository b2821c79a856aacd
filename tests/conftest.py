"""Shared fixtures: a real embedded PostgreSQL and a real local Ray (num_cpus=2), both on loopback."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

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
