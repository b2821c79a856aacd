"""The type table (types.TYPES) against itself and against the readers: for every row, the Arrow type it names
agrees with the logical type it names, and a real column of each of its sample declarations, read through the
stand-in by both drivers, arrives as exactly that Arrow type."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

import pyarrow as pa
import pytest

from mssql_standin.types import KNOWN_TYPES, parse_type
from ray_replicator.catalog import Column, LogicalType, Table
from ray_replicator.engines.base import KeyRange
from ray_replicator.engines.mssql import MssqlSource
from ray_replicator.engines.mssql.temporal import TICKS
from ray_replicator.engines.mssql.types import CLR_TYPES, TYPES, Declared, TypeRow, base_name, native_type
from tests.engines.mssql.servers import Server

READERS = ("pymssql", "mssql-python")
POLICIES = ("refuse", "keep")
"""hundred_ns: the one URL option that changes a reader's Arrow types."""

VALUES = {
    "bit": "1",
    "tinyint": "200",
    "smallint": "-5",
    "int": "7",
    "bigint": "1099511627776",
    "decimal": "12.5",
    "numeric": "-3",
    "money": "1.2345",
    "smallmoney": "2.5",
    "real": "1.5",
    "float": "0.25",
    "char": "N'ab'",
    "varchar": "N'ab'",
    "nchar": "N'λ'",
    "nvarchar": "N'λ😀'",
    "text": "N'long'",
    "ntext": "N'long λ'",
    "binary": "0x0102",
    "varbinary": "0x0102",
    "image": "0x0102",
    "date": "'2020-01-02'",
    "time": "'10:11:12.123456'",
    "smalldatetime": "'2020-01-02 03:04'",
    "datetime": "'2020-01-02 03:04:05.997'",
    "datetime2": "'2020-01-02 03:04:05.123456'",
    "datetimeoffset": "'2020-01-02 03:04:05.123456 +05:30'",
    "uniqueidentifier": "'6f9619ff-8b86-d011-b42d-00c04fc964ff'",
    "xml": "N'<a>x</a>'",
    "sql_variant": "N'v'",
    "geography": "geography::Point(47.65, -122.35, 4326)",
    "geometry": "geometry::Point(1, 2, 0)",
    "hierarchyid": "hierarchyid::Parse('/1/2/')",
}
"""A value of each type to insert (rowversion fills itself)."""


def _standin_knows(row: TypeRow) -> bool:
    return all(base_name(s) in KNOWN_TYPES or base_name(s) == "rowversion" for s in row.samples)


def _declared(sample: str) -> Declared:
    """A sample declaration as sys.columns describes it (the stand-in models that; CLR types are max-length)."""
    if base_name(sample) in CLR_TYPES:
        return Declared(base_name(sample), -1, 0, 0)
    t = parse_type(sample.replace("rowversion", "timestamp"))
    return Declared(t.name, t.max_length, t.precision, t.scale)


def _column_name(sample: str) -> str:
    return "c_" + re.sub(r"\W", "_", sample)


SAMPLES = [s for row in TYPES if _standin_knows(row) for s in row.samples]


def _agrees(logical: LogicalType, arrow: pa.DataType) -> bool:
    """Whether an Arrow type can hold every value of a logical type exactly (the rule the table must follow)."""
    kind = logical.kind
    large = logical.length is None
    checks: dict[str, Callable[[], bool]] = {
        "bool": lambda: pa.types.is_boolean(arrow),
        "int8": lambda: arrow == pa.uint8(),
        "int16": lambda: arrow == pa.int16(),
        "int32": lambda: arrow == pa.int32(),
        "int64": lambda: arrow == pa.int64(),
        "float32": lambda: arrow == pa.float32(),
        "float64": lambda: arrow == pa.float64(),
        "decimal": lambda: arrow == pa.decimal128(logical.precision or 38, logical.scale or 0),
        "money": lambda: arrow == pa.decimal128(logical.precision or 0, logical.scale or 0),
        "string": lambda: arrow == (pa.large_string() if large else pa.string()),
        "xml": lambda: arrow == pa.large_string(),
        "other": lambda: arrow == pa.large_string(),
        "binary": lambda: arrow == (pa.large_binary() if large else pa.binary()),
        "rowversion": lambda: arrow == pa.binary(),
        "date": lambda: arrow == pa.date32(),
        "time": lambda: pa.types.is_time64(arrow),
        # 100 ns kept: ticks in int64 (timestamp('ns') would end in 1677 and 2262)
        "timestamp": lambda: (
            (pa.types.is_timestamp(arrow) and arrow.tz is None and arrow.unit != "ns") or arrow == TICKS
        ),
        "timestamptz": lambda: arrow == pa.string(),  # instant and offset as text
        "uuid": lambda: arrow == pa.uuid(),
    }
    return kind in checks and checks[kind]()


@pytest.mark.parametrize("row", TYPES, ids=lambda r: r.mssql)
def test_each_rows_arrow_type_holds_its_logical_type(row: TypeRow) -> None:
    assert row.samples, f"{row.mssql}: no sample declaration to test the readers with"
    for sample in row.samples:
        d = _declared(sample)
        assert d.name in row.names
        logical = row.logical(d)
        for keep in (False, True):
            arrow = row.arrow(logical, keep)
            assert _agrees(logical, arrow), f"{sample} ({native_type(d)}): {logical} read as {arrow}"


@pytest.fixture(scope="module")
def typed(mssql_source_server: Server) -> Server:
    """dbo.typed: one column per sample declaration the stand-in can create, one row of values."""
    s = mssql_source_server
    cols = ", ".join(f"[{_column_name(x)}] {x} NULL" for x in SAMPLES)
    s.run(f"CREATE TABLE dbo.typed (id int NOT NULL PRIMARY KEY, {cols})")
    filled = [x for x in SAMPLES if base_name(x) != "rowversion"]
    names = ", ".join(f"[{_column_name(x)}]" for x in filled)
    values = ", ".join(VALUES[base_name(x)] for x in filled)
    s.run(f"INSERT INTO dbo.typed (id, {names}) VALUES (1, {values}), (2, {', '.join('NULL' for _ in filled)})")
    return s


@cache
def _read(url: str) -> tuple[Table, pa.Schema]:
    with MssqlSource(url) as src:
        table = src.catalog(["dbo.typed"], []).table("dbo", "typed")
        batches = list(src.read_range(table, KeyRange("dbo", "typed", 0, "full"), 1000, 1 << 24))
    assert sum(b.num_rows for b in batches) == 2
    return table, batches[0].schema


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("hundred_ns", POLICIES)
@pytest.mark.parametrize("row", [r for r in TYPES if _standin_knows(r)], ids=lambda r: r.mssql)
def test_the_readers_produce_the_tables_arrow_type(typed: Server, row: TypeRow, reader: str, hundred_ns: str) -> None:
    table, schema = _read(typed.url(reader=reader, hundred_ns=hundred_ns, sql_variant="text"))
    for sample in row.samples:
        column: Column = table.column(_column_name(sample))
        assert base_name(column.native_type) in row.names, f"{sample} read back as {column.native_type}"
        want = row.arrow(column.logical, hundred_ns == "keep")
        assert schema.field(column.name).type == want, f"{sample} ({reader}, hundred_ns={hundred_ns})"
        assert row.logical(_declared(sample)) == column.logical, f"{sample}: the catalog reads another logical type"


def test_the_stand_in_knows_every_type() -> None:
    """The reader test creates every row of the type table, SQL Server's CLR types included."""
    untested = [r.mssql for r in TYPES if not _standin_knows(r)]
    assert untested == []
