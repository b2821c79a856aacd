"""ConnectorX (tiberius) against the stand-in: it must be offered TLS, and reads every type it supports.

Client limits seen (not the stand-in's): xml panics ("not implemented"), decimal(38, s) beyond 28 digits
panics in rust_decimal, datetimeoffset at 0001-01-01 +14:00 is "out of range", money goes through f64,
and datetime is returned at its exact 1/300 s tick (…59.997 → …59.996666).
"""

from __future__ import annotations

import datetime as dt
import uuid

import connectorx as cx
import pyarrow as pa
import pytest

from mssql_standin import serve
from tests.standin.conftest import (
    PASSWORD,
    TYPED_COLUMNS,
    TYPED_ROWS,
    USER,
    StubEngine,
    dt2_python,
    time_python,
    typed_table,
)

SKIP = {"c_xml", "c_dec", "c_dto", "c_money"}


def url(srv, query: str = "") -> str:
    return f"mssql://{USER}:{PASSWORD.replace('!', '%21')}@{srv.host}:{srv.port}/standin{query}"


def cx_expected(name: str, type_name: str, v: object) -> object:
    if v is None:
        return None
    if type_name == "datetime2":
        return dt2_python(v)  # type: ignore[arg-type]
    if type_name == "time":
        return time_python(v)  # type: ignore[arg-type]
    if type_name == "uniqueidentifier":
        return str(uuid.UUID(bytes=v))  # type: ignore[arg-type]
    if type_name == "datetime":
        assert isinstance(v, dt.datetime)
        ms = v.microsecond // 1000
        ticks = round(ms * 0.3)
        return v.replace(microsecond=0) + dt.timedelta(microseconds=ticks * 1_000_000 // 300)
    if type_name in ("real", "smallmoney", "numeric"):
        return float(v) if type_name != "numeric" else v  # type: ignore[arg-type]
    return v


@pytest.mark.parametrize("encryption", ["off", "on"])
def test_reads_every_supported_type_exactly(stub_engine: StubEngine, encryption: str) -> None:
    cols = [c for c in TYPED_COLUMNS if c.name not in SKIP]
    stub_engine.add_table("typed_cx", cols, typed_table().select([c.name for c in cols]))
    with serve("standin", user=USER, password=PASSWORD, encryption=encryption, engine=stub_engine) as srv:
        # Forced TLS makes tiberius validate the certificate (as with SQL Server): trust it explicitly.
        query = "?trust_server_certificate=true" if encryption == "on" else ""
        got = cx.read_sql(url(srv, query), "select * from typed_cx", return_type="arrow")
    assert got.schema.field("c_int").type == pa.int64()  # ConnectorX widens every int
    idx = {c.name: i for i, c in enumerate(TYPED_COLUMNS)}
    for row, want in zip(got.to_pylist(), TYPED_ROWS, strict=True):
        for c in cols:
            expected = cx_expected(c.name, c.type_name, want[idx[c.name]])
            if c.type_name == "real" and expected is not None:
                assert row[c.name] == pytest.approx(expected, rel=1e-7), c.name
            elif c.type_name == "numeric" and expected is not None:
                assert row[c.name] == expected, c.name
            else:
                assert row[c.name] == expected, c.name


def test_partitioned_read_runs_every_query(stub_engine: StubEngine) -> None:
    """ConnectorX sends each query twice (metadata, then data) as sp_executesql; both must succeed."""
    stub_engine.add_table("p", [TYPED_COLUMNS[0]], pa.table({"id": pa.array(range(1000), pa.int32())}))
    with serve("standin", user=USER, password=PASSWORD, engine=stub_engine) as srv:
        got = cx.read_sql(url(srv), ["select * from p", "select * from p"], return_type="arrow")
    assert got.num_rows == 2000 and sorted(got.column("id").to_pylist())[:4] == [0, 0, 1, 1]
