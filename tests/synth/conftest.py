"""A fresh database per synth test on the session's embedded PostgreSQL (tests/conftest.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from ray_replicator.embedded import database_url
from ray_replicator.synth import stackoverflow as so
from tests.synth.generated import SMALL


@pytest.fixture
def pg_url(pg_base_url: str) -> Iterator[str]:
    """A fresh, empty database per test, dropped afterwards, so tests cannot see each other's tables."""
    name = f"synth_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_base_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url(pg_base_url, name)
    finally:
        with psycopg.connect(pg_base_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def loaded(pg_url: str) -> Iterator[tuple[str, dict[str, int]]]:
    """The core tables generated at scale SMALL, seed 42, into a fresh database: (its url, rows per table)."""
    yield pg_url, so.generate(pg_url, SMALL, 42)
