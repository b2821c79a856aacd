"""SQL Server engine fixtures: a stand-in source per test module (with a NUL-holding table), a fresh stand-in
target per test (with a bulk_dir for writer=bulk-insert)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.engines.mssql.servers import Server, standin


@pytest.fixture(scope="module")
def mssql_source_server() -> Iterator[Server]:
    with standin(nul=True) as server:
        yield server


@pytest.fixture
def mssql_target_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    bulk = str(tmp_path_factory.mktemp("bulk"))
    with standin(bulk_dir=bulk) as server:
        yield server
