"""varchar columns in legacy code pages: each client must decode them with the column's collation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pytest

from mssql_standin import Server, serve
from mssql_standin.results import ColumnSpec
from tests.standin.conftest import PASSWORD, USER, StubEngine

COLUMNS = [
    ColumnSpec("cy", "varchar", 50, collation="Cyrillic_General_CI_AS"),
    ColumnSpec("ar", "varchar", -1, collation="Arabic_CI_AS"),
    ColumnSpec("jp", "varchar", 50, collation="Japanese_CI_AS"),
    ColumnSpec("gr", "char", 10, collation="Greek_CS_AS"),
    ColumnSpec("tx", "text", -1, collation="Hebrew_CI_AS"),
]
ROWS = [("Привет", "مرحبا", "日本語", "Καλημέρα  ", "שלום"), (None, "", "x", None, None)]


def read_pymssql(srv: Server) -> list[tuple[Any, ...]]:
    import pymssql

    cur = pymssql.connect(server=srv.host, port=srv.port, user=USER, password=PASSWORD, database="standin").cursor()
    cur.execute("select * from c")
    return list(cur.fetchall())


def read_mssql_python(srv: Server) -> list[tuple[Any, ...]]:
    import mssql_python

    conn = mssql_python.connect(
        f"Server=tcp:{srv.host},{srv.port};Database=standin;UID={USER};PWD={PASSWORD};Encrypt=no"
    )
    cur = conn.cursor()
    cur.execute("select * from c")
    return [tuple(r) for r in cur.fetchall()]


def read_pytds(srv: Server) -> list[tuple[Any, ...]]:
    import pytds

    cur = pytds.connect(srv.host, "standin", USER, PASSWORD, port=srv.port, autocommit=True).cursor()
    cur.execute("select * from c")
    return [tuple(r) for r in cur.fetchall()]


def read_connectorx(srv: Server) -> list[tuple[Any, ...]]:
    import connectorx as cx

    url = f"mssql://{USER}:{PASSWORD.replace('!', '%21')}@{srv.host}:{srv.port}/standin"
    return [tuple(r.values()) for r in cx.read_sql(url, "select * from c", return_type="arrow").to_pylist()]


@pytest.mark.parametrize("reader", [read_pymssql, read_mssql_python, read_pytds, read_connectorx])
def test_code_pages_decode_per_column(
    stub_engine: StubEngine, reader: Callable[[Server], list[tuple[Any, ...]]]
) -> None:
    stub_engine.add_table("c", COLUMNS, pa.table({c.name: [r[i] for r in ROWS] for i, c in enumerate(COLUMNS)}))
    with serve("standin", user=USER, password=PASSWORD, engine=stub_engine) as srv:
        assert reader(srv) == ROWS
