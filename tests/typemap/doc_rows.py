"""The rows of docs/type-mapping.md as tests: for each doc row, the columns a test declares at the source, the values
it inserts (edge values, '' and emoji; every column also gets a NULL row) and what the target's own client must
read back. test_doc_rows_sync.py holds these lists to the doc's tables, so a doc row without a test fails.

Temporal values are ordinary ones: their extremes (0001, 9999, 100 ns) are tested in the temporal suites.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

D = decimal.Decimal
UTC = dt.UTC
DOC = Path(__file__).resolve().parents[2] / "docs" / "type-mapping.md"

AS_SOURCE = object()
"""Expected value: what the source's own client reads (rowversion values, which the server generates)."""
PG_TEXT = object()
"""Expected value: the source value's text as PostgreSQL prints it (`value::text`, read by psycopg)."""


@dataclass(frozen=True)
class Col:
    """One column of a doc row: its source declaration, the target type the target's catalog must show, and
    (source literal, value the target's client reads) pairs."""

    decl: str
    target: str
    values: tuple[tuple[str, Any], ...] = ()
    change: str | None = None
    """The SchemaChange kind of this column where it differs from its row's."""


@dataclass(frozen=True)
class Row:
    """One row of a doc table: its first two cells as the doc writes them, and its columns."""

    source: str
    target: str
    cols: tuple[Col, ...]
    cannot_run: str = ""
    """Why the test servers cannot hold this row's types (the row is then only held to the doc)."""
    change: str | None = None
    """The record.SchemaChange kind schema_changes gives its columns (None: the same type)."""


def f32(x: float) -> float:
    """A float as SQL Server's real / PostgreSQL's real holds it."""
    return float(np.float32(x))


def _t(text: str) -> tuple[str, str]:
    """A T-SQL Unicode literal and the same text expected back."""
    return "N'" + text.replace("'", "''") + "'", text


# ------------------------------------------------------------------------------- SQL Server → Arrow → PostgreSQL
# psycopg reads a real from PostgreSQL's shortest text of it (-2.5e+38), pymssql as the float32 widened (f32).
MSSQL_ROWS: tuple[Row, ...] = (
    Row("bit", "boolean", (Col("bit", "boolean", (("1", True), ("0", False))),)),
    Row("tinyint", "smallint", (Col("tinyint", "smallint", (("0", 0), ("255", 255))),)),
    Row(
        "smallint / int / bigint",
        "smallint / integer / bigint",
        (
            Col("smallint", "smallint", (("-32768", -32768), ("32767", 32767))),
            Col("int", "integer", (("-2147483648", -2147483648), ("2147483647", 2147483647))),
            Col("bigint", "bigint", (("-9223372036854775808", -(2**63)), ("9223372036854775807", 2**63 - 1))),
        ),
    ),
    Row(
        "decimal(p,s) / numeric(p,s)",
        "numeric(p,s)",
        (
            Col(
                "decimal(38,10)",
                "numeric(38,10)",
                (
                    ("9999999999999999999999999999.9999999999", D("9999999999999999999999999999.9999999999")),
                    ("-0.0000000001", D("-0.0000000001")),
                ),
            ),
            Col("numeric(19,4)", "numeric(19,4)", (("123.45", D("123.4500")), ("0", D("0.0000")))),
            Col("decimal(5,0)", "numeric(5,0)", (("-99999", D("-99999")),)),
        ),
    ),
    Row(
        "money",
        "numeric(19,4)",
        (
            Col(
                "money",
                "numeric(19,4)",
                (
                    ("-922337203685477.5808", D("-922337203685477.5808")),
                    ("922337203685477.5807", D("922337203685477.5807")),
                ),
            ),
        ),
    ),
    Row(
        "smallmoney",
        "numeric(19,4)",
        (Col("smallmoney", "numeric(19,4)", (("-214748.3648", D("-214748.3648")), ("214748.3647", D("214748.3647")))),),
    ),
    Row(
        "real / float(1..24)",
        "real",
        (
            Col("real", "real", (("1.5", 1.5), ("-2.5E38", -2.5e38))),
            Col("float(24)", "real", (("0.1", 0.1),)),
        ),
    ),
    Row(
        "float / float(25..53)",
        "double precision",
        (
            Col("float", "double precision", (("0.1", 0.1), ("-1.7976931348623157E308", -1.7976931348623157e308))),
            Col("float(25)", "double precision", (("2.2250738585072014E-308", 2.2250738585072014e-308),)),
        ),
    ),
    Row("char(n)", "character(n)", (Col("char(5)", "character(5)", (("'ab'", "ab   "), ("''", "     "))),)),
    Row(
        "nchar(n)",
        "character varying(n)",
        (Col("nchar(3)", "character varying(3)", (("N'λ'", "λ  "), ("N''", "   "), ("N'😀'", "😀 "))),),
    ),
    Row(
        "varchar(n) / nvarchar(n)",
        "character varying(n)",
        (
            Col("varchar(50)", "character varying(50)", (("'abc '", "abc "), ("''", ""))),
            Col("nvarchar(100)", "character varying(100)", (_t("λ😀 'q'"), _t(""), _t("x\r\ny"))),
        ),
    ),
    Row(
        "varchar(max) / nvarchar(max) / text / ntext",
        "text",
        (
            Col("varchar(max)", "text", (("'plain'", "plain"), ("''", ""))),
            Col("nvarchar(max)", "text", (_t("😀" * 3000), _t(""))),
            Col("text", "text", (("'old'", "old"),)),
            Col("ntext", "text", (_t("ünï 😀"), _t(""))),
        ),
    ),
    Row(
        "binary(n) / varbinary(n)",
        "bytea",
        (
            Col("binary(4)", "bytea", (("0x0102", b"\x01\x02\x00\x00"),)),
            Col("varbinary(16)", "bytea", (("0x00ff7f80", b"\x00\xff\x7f\x80"),)),
        ),
    ),
    Row(
        "varbinary(max) / image",
        "bytea",
        (
            Col("varbinary(max)", "bytea", (("0x" + "ab" * 10000, b"\xab" * 10000),)),
            Col("image", "bytea", (("0x00", b"\x00"),)),
        ),
    ),
    Row("date", "date", (Col("date", "date", (("'2024-02-29'", dt.date(2024, 2, 29)),)),)),
    Row(
        "time(p ≤ 6)",
        "time(p)",
        (Col("time(3)", "time(3) without time zone", (("'12:34:56.789'", dt.time(12, 34, 56, 789000)),)),),
    ),
    Row(
        "time(7)",
        "time(6)",
        (Col("time(7)", "time(6) without time zone", (("'23:59:59.123456'", dt.time(23, 59, 59, 123456)),)),),
    ),
    Row(
        "smalldatetime",
        "timestamp(0)",
        (
            Col(
                "smalldatetime",
                "timestamp(0) without time zone",
                (("'2024-01-02T03:04:00'", dt.datetime(2024, 1, 2, 3, 4)),),
            ),
        ),
    ),
    Row(
        "datetime",
        "timestamp(3)",
        (
            Col(
                "datetime",
                "timestamp(3) without time zone",
                (("'2024-01-02T03:04:05.997'", dt.datetime(2024, 1, 2, 3, 4, 5, 997000)),),
            ),
        ),
    ),
    Row(
        "datetime2(p ≤ 6)",
        "timestamp(p)",
        (
            Col(
                "datetime2(3)",
                "timestamp(3) without time zone",
                (("'2024-01-02T03:04:05.123'", dt.datetime(2024, 1, 2, 3, 4, 5, 123000)),),
            ),
        ),
    ),
    Row(
        "datetime2(7)",
        "timestamp(6)",
        (
            Col(
                "datetime2(7)",
                "timestamp(6) without time zone",
                (("'2024-01-02T03:04:05.123456'", dt.datetime(2024, 1, 2, 3, 4, 5, 123456)),),
            ),
        ),
    ),
    Row(
        "datetimeoffset(p)",
        "timestamp(min(p,6)) with time zone",
        (
            Col(
                "datetimeoffset(7)",
                "timestamp(6) with time zone",
                (("'2024-01-02 03:04:05.123456 +05:30'", dt.datetime(2024, 1, 1, 21, 34, 5, 123456, tzinfo=UTC)),),
            ),
        ),
    ),
    Row(
        "uniqueidentifier",
        "uuid",
        (
            Col(
                "uniqueidentifier",
                "uuid",
                (
                    ("'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")),
                    ("'00000000-0000-0000-0000-000000000001'", uuid.UUID(int=1)),
                ),
            ),
        ),
    ),
    Row("rowversion / timestamp", "bytea", (Col("rowversion", "bytea", (("DEFAULT", AS_SOURCE),)),)),
    Row(
        "xml",
        "xml",
        (Col("xml", "xml"),),
    ),
    Row(
        "sql_variant",
        "text",
        (Col("sql_variant", "text"),),
        cannot_run="a policy of its own: tests/engines/mssql/test_policies.py holds refuse and text",
    ),
    Row(
        "geography / geometry / hierarchyid",
        "bytea",
        (Col("hierarchyid", "bytea"),),
        cannot_run="the SQL Server stand-in has no CLR types",
    ),
    Row("alias (user-defined) types", "", (), cannot_run="the SQL Server stand-in has no CREATE TYPE ... FROM"),
)
"""The PostgreSQL server of the tests has no libxml: xml columns hold NULLs only (PostgreSQL cannot take a value)."""


# ------------------------------------------------------------------------------------- PostgreSQL → SQL Server
_LONG_INTERVAL = "'178000000 years 2147483647 days 2562047788:00:54.775807'"
PG_ROWS: tuple[Row, ...] = (
    Row("boolean", "bit", (Col("boolean", "bit", (("true", True), ("false", False))),)),
    Row(
        "smallint / integer / bigint",
        "smallint / int / bigint",
        (
            Col("smallint", "smallint", (("-32768", -32768), ("32767", 32767))),
            Col("integer", "int", (("-2147483648", -2147483648), ("2147483647", 2147483647))),
            Col("bigint", "bigint", (("-9223372036854775808", -(2**63)), ("9223372036854775807", 2**63 - 1))),
        ),
    ),
    Row(
        "real / double precision",
        "real / float",
        (
            Col("real", "real", (("1.5", 1.5), ("'-2.5e38'", f32(-2.5e38)), ("'0.1'", f32(0.1)))),
            Col(
                "double precision",
                "float",
                (
                    ("0.1", 0.1),
                    ("'-1.7976931348623157e308'", -1.7976931348623157e308),
                    ("'2.2250738585072014e-308'", 2.2250738585072014e-308),
                ),
            ),
        ),
    ),
    Row(
        "numeric(p,s), p ≤ 38",
        "decimal(p,s)",
        (
            Col(
                "numeric(38,10)",
                "decimal(38,10)",
                (
                    ("'9999999999999999999999999999.9999999999'", D("9999999999999999999999999999.9999999999")),
                    ("'-0.0000000001'", D("-0.0000000001")),
                ),
            ),
            Col("numeric(19,4)", "decimal(19,4)", (("'123.45'", D("123.4500")),)),
            Col(
                "numeric(5,-2)", "decimal(7,0)", (("12345", D("12300")), ("'-9999949'", D("-9999900"))), "type_widened"
            ),
            Col("numeric(3,5)", "decimal(5,5)", (("'0.00123'", D("0.00123")),), "type_widened"),
        ),
    ),
    Row(
        "numeric (no typmod) or p > 38",
        "decimal(38,10)",
        (
            Col(
                "numeric",
                "decimal(38,10)",
                (
                    ("'12345678901234567890.0123456789000'", D("12345678901234567890.0123456789")),
                    ("'-9999999999999999999999999999.9999999999'", D("-9999999999999999999999999999.9999999999")),
                    ("'0'", D("0E-10")),
                ),
            ),
            Col("numeric(50,3)", "decimal(38,10)", (("'1.500'", D("1.5000000000")),)),
        ),
        change="type_narrowed",
    ),
    Row(
        "money",
        "decimal(19,2)",
        (
            Col(
                "money",
                "decimal(19,2)",
                (
                    ("'-92233720368547758.08'", D("-92233720368547758.08")),
                    ("'92233720368547758.07'", D("92233720368547758.07")),
                    ("'0.01'", D("0.01")),
                ),
            ),
        ),
        change="type_widened",
    ),
    Row(
        "character varying(n) / text",
        "nvarchar(2n) (2n ≤ 4000) / nvarchar(max)",
        (
            Col("varchar(3)", "nvarchar(6)", (("'😀😀😀'", "😀😀😀"), ("''", ""), ("'a''b'", "a'b"))),
            Col("varchar(2001)", "nvarchar(max)", (("repeat('😀', 2001)", "😀" * 2001),)),
            Col(
                "text",
                "nvarchar(max)",
                (("E'x\\r\\ny'", "x\r\ny"), ("''", ""), ("repeat('λ😀', 50000)", "λ😀" * 50000)),
            ),
        ),
        change="type_widened",
    ),
    Row(
        "character(n)",
        "nvarchar(2n)",
        (Col("char(3)", "nvarchar(6)", (("'a😀'", "a😀 "), ("''", "   "), ("'abc'", "abc"))),),
        change="type_widened",
    ),
    Row(
        "bytea",
        "varbinary(max)",
        (
            Col(
                "bytea",
                "varbinary(max)",
                (("'\\x00ff'", b"\x00\xff"), ("decode(repeat('ab', 9000), 'hex')", b"\xab" * 9000)),
            ),
        ),
    ),
    Row("date", "date", (Col("date", "date", (("'2024-02-29'", dt.date(2024, 2, 29)),)),)),
    Row("time(p)", "time(p)", (Col("time(3)", "time(3)", (("'12:34:56.789'", dt.time(12, 34, 56, 789000)),)),)),
    Row(
        "timestamp(p)",
        "datetime2(p)",
        (
            Col(
                "timestamp(6)",
                "datetime2(6)",
                (("'2024-01-02 03:04:05.123456'", dt.datetime(2024, 1, 2, 3, 4, 5, 123456)),),
            ),
        ),
    ),
    Row(
        "timestamptz(p)",
        "datetimeoffset(p)",
        (
            Col(
                "timestamptz(6)",
                "datetimeoffset(6)",
                (("'2020-01-01 10:00:00.5+02'", dt.datetime(2020, 1, 1, 8, 0, 0, 500000, tzinfo=UTC)),),
            ),
        ),
        change="type_widened",
    ),
    Row(
        "uuid",
        "uniqueidentifier",
        (
            Col(
                "uuid",
                "uniqueidentifier",
                (
                    ("'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")),
                    ("'ffffffff-ffff-ffff-ffff-ffffffffffff'", uuid.UUID(int=2**128 - 1)),
                ),
            ),
        ),
    ),
    Row(
        "json / jsonb",
        "nvarchar(max)",
        (
            Col(
                "json", "nvarchar(max)", (('\'{"b": 1,  "a": [1, 2]}\'', PG_TEXT), ("'\"\"'", '""'), ("'null'", "null"))
            ),
            Col("jsonb", "nvarchar(max)", (('\'{"b": 1,  "a": "😀"}\'', '{"a": "😀", "b": 1}'), ("'[]'", "[]"))),
        ),
        change="type_text",
    ),
    Row("xml", "xml", (Col("xml", "xml"),)),
    Row(
        "enum",
        "nvarchar(64)",
        (Col("mood", "nvarchar(64)", (("'sad'", "sad"), ("'😀 happy'", "😀 happy"), ("''", ""))),),
        change="type_text",
    ),
    Row(
        "interval, arrays",
        "nvarchar(100) / nvarchar(max)",
        (
            Col(
                "interval",
                "nvarchar(100)",
                (
                    ("'1 year 2 mons 3 days 04:05:06.789'", "1 year 2 mons 3 days 04:05:06.789"),
                    (_LONG_INTERVAL, PG_TEXT),
                    ("'0'", "00:00:00"),
                ),
            ),
            Col(
                "integer[]",
                "nvarchar(max)",
                (
                    ("'{1,NULL,3}'", "{1,NULL,3}"),
                    ("'{}'", "{}"),
                    ("'{{1,2},{3,4}}'", "{{1,2},{3,4}}"),
                    ("'[0:1]={5,6}'", "[0:1]={5,6}"),
                ),
            ),
            Col(
                "text[]",
                "nvarchar(max)",
                (
                    ('\'{"a b","",NULL,"NULL","q\\"x",😀}\'', PG_TEXT),
                    ("'{}'", "{}"),
                    ("'{{a,b},{c,d}}'", "{{a,b},{c,d}}"),
                ),
            ),
            Col("boolean[]", "nvarchar(max)", (("'{t,f,NULL}'", "{t,f,NULL}"),)),
            Col("smallint[]", "nvarchar(max)", (("'{-32768,32767}'", "{-32768,32767}"),)),
            Col("bigint[]", "nvarchar(max)", (("'{-9223372036854775808}'", "{-9223372036854775808}"),)),
            Col("real[]", "nvarchar(max)", (("'{1.5,NaN,-Infinity}'", "{1.5,NaN,-Infinity}"),)),
            Col("double precision[]", "nvarchar(max)", (("'{0.1,-0}'", "{0.1,-0}"),)),
            Col("numeric[]", "nvarchar(max)", (("'{1.50,NaN}'", "{1.50,NaN}"),)),
            Col("money[]", "nvarchar(max)", (("'{1.5}'", PG_TEXT),)),
            Col("varchar(3)[]", "nvarchar(max)", (("'{😀,\"\"}'", '{😀,""}'),)),
            Col("char(2)[]", "nvarchar(max)", (("'{a}'", '{"a "}'),)),
            Col("bytea[]", "nvarchar(max)", (("ARRAY['\\x00ff'::bytea, '']", PG_TEXT),)),
            Col("date[]", "nvarchar(max)", (("'{2024-02-29}'", "{2024-02-29}"),)),
            Col("time[]", "nvarchar(max)", (("'{12:34:56.789}'", "{12:34:56.789}"),)),
            Col("timestamp[]", "nvarchar(max)", (("'{\"2024-01-02 03:04:05\"}'", '{"2024-01-02 03:04:05"}'),)),
            Col("timestamptz[]", "nvarchar(max)", (("'{\"2024-01-02 03:04:05+00\"}'", PG_TEXT),)),
            Col("interval[]", "nvarchar(max)", (("'{\"1 day\"}'", '{"1 day"}'),)),
            Col(
                "uuid[]",
                "nvarchar(max)",
                (("'{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}'", "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}"),),
            ),
            Col("json[]", "nvarchar(max)", (("ARRAY['{\"a\": 1}'::json]", PG_TEXT),)),
            Col("jsonb[]", "nvarchar(max)", (("ARRAY['{\"a\": 1}'::jsonb]", '{"{\\"a\\": 1}"}'),)),
            Col("mood[]", "nvarchar(max)", (("'{sad,\"😀 happy\"}'", '{sad,"😀 happy"}'),)),
            Col("inet[]", "nvarchar(max)", (("'{10.0.0.1/8}'", "{10.0.0.1/8}"),)),
            Col("int4range[]", "nvarchar(max)", (("ARRAY['[1,5)'::int4range]", '{"[1,5)"}'),)),
        ),
        change="type_text",
    ),
    Row(
        "other (inet, cidr, macaddr, bit strings, timetz, tsvector, ranges, geometric, composite ...)",
        "—",
        (
            Col("inet", "nvarchar(max)", (("'10.0.0.1/8'", "10.0.0.1/8"), ("'::1'", "::1/128"))),
            Col("cidr", "nvarchar(max)", (("'10.0.0.0/8'", "10.0.0.0/8"),)),
            Col("macaddr", "nvarchar(max)", (("'08:00:2b:01:02:03'", "08:00:2b:01:02:03"),)),
            Col("bit(3)", "nvarchar(max)", (("B'101'", "101"),)),
            Col("varbit", "nvarchar(max)", (("B''", ""),)),
            Col("timetz", "nvarchar(max)", (("'12:00+05'", "12:00:00+05"),)),
            Col("tsvector", "nvarchar(max)", (("'x y'", "'x' 'y'"),)),
            Col("int4range", "nvarchar(max)", (("'[1,5)'", "[1,5)"), ("'empty'", "empty"))),
            Col("tstzrange", "nvarchar(max)", (("'[2024-01-01 00:00+00,)'", PG_TEXT),)),
            Col("numrange", "nvarchar(max)", (("'(,1.5]'", "(,1.5]"),)),
            Col("point", "nvarchar(max)", (("'(1,2)'", "(1,2)"),)),
            Col("pair", "nvarchar(max)", (("ROW(1, '😀')", "(1,😀)"),)),
        ),
        change="type_text",
    ),
)
"""The last row runs with unsupported_types = text (each type's text, `value::text`); test_type_policy.py holds
its default (refused before anything is written) and skip-column."""

PG_SETUP = (
    "CREATE TYPE public.mood AS ENUM ('sad', '😀 happy', '')",
    "CREATE TYPE public.pair AS (n integer, t text)",
)


def doc_table(heading: str) -> list[list[str]]:
    """The cells of each row of the markdown table under `## heading` in docs/type-mapping.md."""
    lines = DOC.read_text().splitlines()
    start = lines.index(f"## {heading}") + 1
    rows: list[list[str]] = []
    for line in lines[start:]:
        if line.startswith("## "):
            break
        if not line.startswith("|") or re.match(r"^\|[-| ]+\|$", line):
            continue
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows[1:]  # the header row
