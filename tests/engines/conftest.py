"""Engine fixtures: a source and a target database (fresh per test) on the session's embedded PostgreSQL.

The embedded server and `make_database` come from tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from ray_replicator.engines.postgres import PostgresSource, PostgresTarget


class Db:
    """A tiny synchronous helper for arranging and inspecting a test database."""

    def __init__(self, url: str) -> None:
        self.url = url

    def run(self, sql: str, params: Any = None) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql, params)

    def rows(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            return list(conn.execute(sql, params).fetchall())

    def value(self, sql: str, params: Any = None) -> Any:
        return self.rows(sql, params)[0][0]


@pytest.fixture
def src_db(make_database: Callable[[str], str]) -> Db:
    return Db(make_database("src"))


@pytest.fixture
def dst_db(make_database: Callable[[str], str]) -> Db:
    return Db(make_database("dst"))


@pytest.fixture
def source(src_db: Db) -> Iterator[PostgresSource]:
    with PostgresSource(src_db.url) as s:
        yield s


@pytest.fixture
def target(dst_db: Db) -> Iterator[PostgresTarget]:
    with PostgresTarget(dst_db.url) as t:
        yield t
