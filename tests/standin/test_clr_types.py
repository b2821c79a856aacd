"""geography, geometry, hierarchyid: declared, stored as SQL Server's serialization (MS-SSCLRT), sent as TDS UDT
with UDT_INFO, read as those bytes by real clients; sys.types/sys.columns describe them as SQL Server does; xml
goes out as XMLTYPE (UTF-16LE, PLP).

Text forms: hierarchyid .ToString() and CAST to text give the path; geography/geometry .ToString(), .STAsText() and
CAST to text give WKT (no Z/M values). Not implemented: the other instance methods (.GetAncestor(), .STDistance(),
.Lat ...), constructors whose arguments are not literals, curves and full-globe shapes.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mssql_standin import ProcessServer, clrtypes, serve_process, wire
from mssql_standin.results import ColumnSpec
from tests.standin.conftest import PASSWORD, USER, client_rows

INIT = """
create table dbo.g (id int not null primary key, geo geography null, geom geometry null, h hierarchyid null,
                    x xml null);
insert into dbo.g values
 (1, geography::Point(47.651, -122.349, 4326), geometry::Point(1.5, -2, 0), hierarchyid::Parse('/1/'), N'<a>λ</a>'),
 (2, geography::STGeomFromText('POINT(-122.349 47.651)', 4326), geometry::STGeomFromText('LINESTRING(1 2, 3 4)', 0),
  hierarchyid::Parse('/1/-2.18/'), '<b/>'),
 (3, 0xE6100000010C17D9CEF753D347407593180456965EC0, 'POLYGON((0 0, 1 0, 1 1, 0 0))', '/2/', NULL),
 (4, NULL, NULL, hierarchyid::GetRoot(), NULL);
"""
POINT = bytes.fromhex("E6100000010C17D9CEF753D347407593180456965EC0")  # SRID 4326, v1, valid single point, lat, long
GEOM_POINT = bytes.fromhex("00000000010C000000000000F83F00000000000000C0")
LINE = bytes.fromhex("000000000114000000000000F03F000000000000004000000000000008400000000000001040")
POLYGON = clrtypes.from_wkt("POLYGON((0 0, 1 0, 1 1, 0 0))", 0, False)
EXPECTED = [
    (1, POINT, GEOM_POINT, b"\x58", "<a>λ</a>"),
    (2, POINT, LINE, bytes.fromhex("59FB0540"), "<b/>"),
    (3, POINT, POLYGON, b"\x68", None),
    (4, None, None, b"", None),
]


@pytest.fixture(scope="module")
def srv() -> Iterator[ProcessServer]:
    with serve_process("standin", user=USER, password=PASSWORD, init_sql=INIT) as s:
        yield s


def test_hierarchyid_serialization_matches_the_specification_examples() -> None:
    """MS-SSCLRT 3.2: /1/ is 01011 padded to 0x58; /1/-2.18/ is 0x59FB0540."""
    assert clrtypes.hierarchyid_parse("/1/") == b"\x58"
    assert clrtypes.hierarchyid_parse("/1/-2.18/") == bytes.fromhex("59FB0540")
    assert clrtypes.hierarchyid_parse("/") == b""
    for path in ("/1/1/", "/3/", "/4/", "/100/200.5/", "/-100/70000/", "/0.1/0.2/"):
        assert clrtypes.hierarchyid_to_string(clrtypes.hierarchyid_parse(path)) == path


def test_polygon_uses_the_general_form() -> None:
    """Points, then figures (2 = exterior ring), then shapes (parent -1, figure 0, OGC type 3)."""
    head = bytes.fromhex("000000000104") + (4).to_bytes(4, "little")
    assert POLYGON.startswith(head)
    assert POLYGON.endswith(
        (1).to_bytes(4, "little")
        + b"\x02"
        + (0).to_bytes(4, "little")
        + (1).to_bytes(4, "little")
        + (-1).to_bytes(4, "little", signed=True)
        + (0).to_bytes(4, "little")
        + b"\x03"
    )


def test_udt_info_in_colmetadata() -> None:
    info = wire.type_info(ColumnSpec("g", "geography", length=-1))
    assert info[0] == 0xF0 and info[1:3] == b"\xff\xff"
    assert "Microsoft.SqlServer.Types.SqlGeography".encode("utf-16-le") in info
    assert wire.type_info(ColumnSpec("h", "hierarchyid", length=892))[1:3] == (892).to_bytes(2, "little")


@pytest.mark.parametrize("client", ["pytds", "pymssql", "mssql_python"])
def test_clients_read_the_serialization(srv: ProcessServer, client: str) -> None:
    assert client_rows(client, srv, "select id, geo, geom, h, x from g order by id") == EXPECTED


def test_catalog_describes_the_assembly_types(srv: ProcessServer) -> None:
    types = client_rows(
        "pytds",
        srv,
        "select name, system_type_id, user_type_id, schema_id, max_length, is_user_defined, is_assembly_type "
        "from sys.types where system_type_id = 240 order by user_type_id",
    )
    assert types == [
        ("hierarchyid", 240, 128, 4, 892, True, True),
        ("geometry", 240, 129, 4, -1, True, True),
        ("geography", 240, 130, 4, -1, True, True),
    ]
    columns = client_rows(
        "pytds",
        srv,
        "select c.name, c.system_type_id, c.user_type_id, c.max_length, type_name(c.user_type_id) "
        "from sys.columns c where c.object_id = object_id('dbo.g') and c.system_type_id in (240, 241) "
        "order by c.column_id",
    )
    assert columns == [
        ("geo", 240, 130, -1, "geography"),
        ("geom", 240, 129, -1, "geometry"),
        ("h", 240, 128, 892, "hierarchyid"),
        ("x", 241, 241, -1, "xml"),
    ]


def test_hierarchyid_text_and_binary_casts(srv: ProcessServer) -> None:
    casts = client_rows(
        "pymssql",
        srv,
        "select id, h.ToString(), g.h.ToString(), CAST(h AS nvarchar(100)), CONVERT(varchar(20), h), "
        "CAST(geo AS varbinary(max)), DATALENGTH(h) from g order by id",
    )
    assert casts == [
        (1, "/1/", "/1/", "/1/", "/1/", POINT, 1),
        (2, "/1/-2.18/", "/1/-2.18/", "/1/-2.18/", "/1/-2.18/", POINT, 4),
        (3, "/2/", "/2/", "/2/", "/2/", POINT, 1),
        (4, "/", "/", "/", "/", None, 0),
    ]


def test_spatial_text(srv: ProcessServer) -> None:
    sql = "select id, geo.STAsText(), geom.ToString(), CAST(geom AS nvarchar(200)) from g order by id"
    assert client_rows("pytds", srv, sql) == [
        (1, "POINT (-122.349 47.651)", "POINT (1.5 -2)", "POINT (1.5 -2)"),
        (2, "POINT (-122.349 47.651)", "LINESTRING (1 2, 3 4)", "LINESTRING (1 2, 3 4)"),
        (3, "POINT (-122.349 47.651)", "POLYGON ((0 0, 1 0, 1 1, 0 0))", "POLYGON ((0 0, 1 0, 1 1, 0 0))"),
        (4, None, None, None),
    ]
    for wkt in ("MULTIPOINT ((1 2), (3 4))", "POLYGON ((0 0, 10 0, 10 10, 0 0), (1 1, 2 1, 2 2, 1 1))",
                "MULTIPOLYGON (((0 0, 1 0, 1 1, 0 0)), ((5 5, 6 5, 6 6, 5 5)))"):  # fmt: skip
        assert clrtypes.to_wkt(clrtypes.from_wkt(wkt, 0, False), False) == wkt
