"""Microsoft's mssql-python (ODBC Driver 18 inside) against the stand-in."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import mssql_python
import pyarrow as pa
import pytest

from mssql_standin import serve
from mssql_standin.results import ColumnSpec
from tests.standin.conftest import (
    PASSWORD,
    USER,
    StubEngine,
    assert_rollback_and_commit_reach_engine,
    assert_typed_table_read,
)


def connect(srv, extra: str = "Encrypt=no", password: str = PASSWORD):
    return mssql_python.connect(
        f"Server=tcp:{srv.host},{srv.port};Database=standin;UID={USER};PWD={password};{extra}", autocommit=True
    )


@pytest.mark.parametrize(
    ("encryption", "extra"),
    [
        ("off", "Encrypt=no"),
        ("off", "Encrypt=yes;TrustServerCertificate=yes"),
        ("on", "Encrypt=no;TrustServerCertificate=yes"),
        ("on", "Encrypt=yes;TrustServerCertificate=yes"),
        ("notsup", "Encrypt=no"),
    ],
)
def test_login_in_each_encryption_mode(stub_engine: StubEngine, encryption: str, extra: str) -> None:
    stub_engine.add_table("t", [ColumnSpec("a", "int")], pa.table({"a": pa.array([7], pa.int32())}))
    with serve("standin", user=USER, password=PASSWORD, encryption=encryption, engine=stub_engine) as srv:
        conn = connect(srv, extra)
        cur = conn.cursor()
        cur.execute("select * from t")
        assert [tuple(r) for r in cur.fetchall()] == [(7,)]
        conn.close()


@pytest.mark.parametrize(
    ("encryption", "extra"),
    [("off", "Encrypt=yes"), ("on", "Encrypt=no"), ("notsup", "Encrypt=yes;TrustServerCertificate=yes")],
)
def test_expected_login_failures(stub_engine: StubEngine, encryption: str, extra: str) -> None:
    """The self-signed certificate fails validation (also when the server forces TLS on an Encrypt=no
    client, as ODBC 18 does with SQL Server); Encrypt=yes fails against a server without TLS."""
    with (
        serve("standin", user=USER, password=PASSWORD, encryption=encryption, engine=stub_engine) as srv,
        pytest.raises(mssql_python.Error),
    ):
        connect(srv, extra)


def test_wrong_password_is_18456(stub_server) -> None:
    with pytest.raises(mssql_python.Error) as ei:
        connect(stub_server, password="nope")
    assert "Login failed for user 'sa'." in str(ei.value)


def test_every_type_exact(typed_server) -> None:
    cur = connect(typed_server).cursor()
    assert_typed_table_read(cur)


def test_multi_megabyte_values(stub_engine: StubEngine) -> None:
    big_text = "λx😀" * 700_000
    big_bytes = bytes(range(256)) * 16_000
    cols = [ColumnSpec("t", "nvarchar", length=-1), ColumnSpec("b", "varbinary", length=-1)]
    stub_engine.add_table("big", cols, pa.table({"t": [big_text], "b": [big_bytes]}))
    with serve("standin", user=USER, password=PASSWORD, engine=stub_engine) as srv:
        cur = connect(srv).cursor()
        cur.execute("select * from big")
        row = cur.fetchone()
    assert row[0] == big_text and row[1] == big_bytes


@pytest.mark.parametrize(
    ("value", "type_name", "back"),
    [
        (2**40, "bigint", 2**40),
        (-5, "smallint", -5),
        (1.25, "float", 1.25),
        ("héllo 😀", "nvarchar", "héllo 😀"),
        (b"\x00\xff", "varbinary", b"\x00\xff"),
        (Decimal("-12.345"), "numeric", Decimal("-12.345")),
        (dt.date(2024, 2, 29), "date", dt.date(2024, 2, 29)),
        (True, "bit", True),
        (uuid.UUID("6F9619FF-8B86-D011-B42D-00C04FC964FF"), "uniqueidentifier",
         uuid.UUID("6F9619FF-8B86-D011-B42D-00C04FC964FF")),
        (dt.datetime(2024, 1, 2, 3, 4, 5, 123456), "datetime2", dt.datetime(2024, 1, 2, 3, 4, 5, 123456)),
        (None, None, None),
    ],
)  # fmt: skip
def test_parameters_arrive_typed_through_sp_prepexec(
    stub_server, stub_engine: StubEngine, value: object, type_name: str | None, back: object
) -> None:
    cur = connect(stub_server).cursor()
    cur.execute("select ?", (value,))
    assert tuple(cur.fetchone()) == (back,)
    sql, params = stub_engine.log[-1]
    assert sql.lower().startswith("select @p1")
    spec, _value = params["@P1"]
    if type_name is not None:
        assert spec.type_name == type_name


def test_autocommit_off_uses_transaction_manager(stub_server, stub_engine: StubEngine) -> None:
    conn = mssql_python.connect(
        f"Server=tcp:{stub_server.host},{stub_server.port};Database=standin;UID={USER};PWD={PASSWORD};Encrypt=no"
    )
    conn.autocommit = False
    assert_rollback_and_commit_reach_engine(conn, stub_engine)


def test_error_number_and_text(stub_server) -> None:
    cur = connect(stub_server).cursor()
    with pytest.raises(mssql_python.Error) as ei:
        cur.execute("raise 2627 1 14 Violation of PRIMARY KEY constraint 'PK_t'.")
    assert "Violation of PRIMARY KEY constraint 'PK_t'." in str(ei.value)
