"""varchar columns in legacy code pages: each client must decode them with the column's collation."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from mssql_standin import Server, serve
from mssql_standin.results import ColumnSpec
from tests.standin.conftest import PASSWORD, USER, StubEngine, client_cursor

COLUMNS = [
    ColumnSpec("cy", "varchar", 50, collation="Cyrillic_General_CI_AS"),
    ColumnSpec("ar", "varchar", -1, collation="Arabic_CI_AS"),
    ColumnSpec("jp", "varchar", 50, collation="Japanese_CI_AS"),
    ColumnSpec("gr", "char", 10, collation="Greek_CS_AS"),
    ColumnSpec("tx", "text", -1, collation="Hebrew_CI_AS"),
]
ROWS = [("Привет", "مرحبا", "日本語", "Καλημέρα  ", "שלום"), (None, "", "x", None, None)]


def read_c(client: str, srv: Server) -> list[tuple[Any, ...]]:
    """Table c's rows as `client` reads them."""
    if client == "connectorx":
        import connectorx as cx

        url = f"mssql://{USER}:{PASSWORD.replace('!', '%21')}@{srv.host}:{srv.port}/standin"
        return [tuple(r.values()) for r in cx.read_sql(url, "select * from c", return_type="arrow").to_pylist()]
    cur = client_cursor(client, srv)
    cur.execute("select * from c")
    return [tuple(r) for r in cur.fetchall()]


@pytest.mark.parametrize("client", ["pymssql", "mssql_python", "pytds", "connectorx"])
def test_code_pages_decode_per_column(stub_engine: StubEngine, client: str) -> None:
    stub_engine.add_table("c", COLUMNS, pa.table({c.name: [r[i] for r in ROWS] for i, c in enumerate(COLUMNS)}))
    with serve("standin", user=USER, password=PASSWORD, engine=stub_engine) as srv:
        assert read_c(client, srv) == ROWS
