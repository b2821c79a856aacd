"""The rows of docs/type-mapping.md's PostgreSQL → SQL Server table as tests (see doc_rows.py): PostgreSQL
literals and what pymssql must read back from the SQL Server target."""

from __future__ import annotations

import datetime as dt

from tests.typemap.doc_rows import PG_TEXT, UTC, Col, D, Row, doc_rows, f32, guid, moment, number


def _s(text: str) -> tuple[str, str]:
    """A PostgreSQL string literal and the same text expected back."""
    return "'" + text.replace("'", "''") + "'", text


# ------------------------------------------------------------------------------------- PostgreSQL → SQL Server
_LONG_INTERVAL = "'178000000 years 2147483647 days 2562047788:00:54.775807'"
PG_ROWS = doc_rows(
    Row("boolean", "bit"),
    Col("boolean", "bit", ("true", True), ("false", False)),
    Row("smallint / integer / bigint", "smallint / int / bigint"),
    Col("smallint", "smallint", ("-32768", -32768), ("32767", 32767)),
    Col("integer", "int", ("-2147483648", -2147483648), ("2147483647", 2147483647)),
    Col("bigint", "bigint", ("-9223372036854775808", -(2**63)), ("9223372036854775807", 2**63 - 1)),
    Row("real / double precision", "real / float"),
    Col("real", "real", ("1.5", 1.5), ("'-2.5e38'", f32(-2.5e38)), ("'0.1'", f32(0.1))),
    Col(
        "double precision",
        "float",
        ("0.1", 0.1),
        ("'-1.7976931348623157e308'", -1.7976931348623157e308),
        ("'2.2250738585072014e-308'", 2.2250738585072014e-308),
    ),
    Row("numeric(p,s), p ≤ 38", "decimal(p,s)"),
    Col(
        "numeric(38,10)",
        "decimal(38,10)",
        number("'9999999999999999999999999999.9999999999'"),
        number("'-0.0000000001'"),
    ),
    Col("numeric(19,4)", "decimal(19,4)", ("'123.45'", D("123.4500"))),
    Col("numeric(5,-2)", "decimal(7,0)", ("12345", D("12300")), ("'-9999949'", D("-9999900")), change="type_widened"),
    Col("numeric(3,5)", "decimal(5,5)", number("'0.00123'"), change="type_widened"),
    Row("numeric (no typmod) or p > 38", "decimal(38,10)", change="type_narrowed"),
    Col(
        "numeric",
        "decimal(38,10)",
        ("'12345678901234567890.0123456789000'", D("12345678901234567890.0123456789")),
        number("'-9999999999999999999999999999.9999999999'"),
        ("'0'", D("0E-10")),
    ),
    Col("numeric(50,3)", "decimal(38,10)", ("'1.500'", D("1.5000000000"))),
    Row("money", "decimal(19,2)", change="type_widened"),
    Col(
        "money",
        "decimal(19,2)",
        number("'-92233720368547758.08'"),
        number("'92233720368547758.07'"),
        number("'0.01'"),
    ),
    Row("character varying(n) / text", "nvarchar(2n) (2n ≤ 4000) / nvarchar(max)", change="type_widened"),
    Col("varchar(3)", "nvarchar(6)", _s("😀😀😀"), _s(""), _s("a'b")),
    Col("varchar(2001)", "nvarchar(max)", ("repeat('😀', 2001)", "😀" * 2001)),
    Col("text", "nvarchar(max)", ("E'x\\r\\ny'", "x\r\ny"), _s(""), ("repeat('λ😀', 50000)", "λ😀" * 50000)),
    Row("character(n)", "nvarchar(2n)", change="type_widened"),
    Col("char(3)", "nvarchar(6)", ("'a😀'", "a😀 "), ("''", "   "), _s("abc")),
    Row("bytea", "varbinary(max)"),
    Col("bytea", "varbinary(max)", ("'\\x00ff'", b"\x00\xff"), ("decode(repeat('ab', 9000), 'hex')", b"\xab" * 9000)),
    Row("date", "date"),
    Col("date", "date", ("'2024-02-29'", dt.date(2024, 2, 29))),
    Row("time(p)", "time(p)"),
    Col("time(3)", "time(3)", ("'12:34:56.789'", dt.time(12, 34, 56, 789000))),
    Row("timestamp(p)", "datetime2(p)"),
    Col("timestamp(6)", "datetime2(6)", moment("2024-01-02 03:04:05.123456")),
    Row("timestamptz(p)", "datetimeoffset(p)", change="type_widened"),
    Col(
        "timestamptz(6)",
        "datetimeoffset(6)",
        ("'2020-01-01 10:00:00.5+02'", dt.datetime(2020, 1, 1, 8, 0, 0, 500000, tzinfo=UTC)),
    ),
    Row("uuid", "uniqueidentifier"),
    Col(
        "uuid",
        "uniqueidentifier",
        guid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
        guid("ffffffff-ffff-ffff-ffff-ffffffffffff"),
    ),
    Row("json / jsonb", "nvarchar(max)", change="type_text"),
    Col("json", "nvarchar(max)", ('\'{"b": 1,  "a": [1, 2]}\'', PG_TEXT), _s('""'), _s("null")),
    Col("jsonb", "nvarchar(max)", ('\'{"b": 1,  "a": "😀"}\'', '{"a": "😀", "b": 1}'), _s("[]")),
    Row("xml", "xml"),
    Col("xml", "xml"),
    Row("enum", "nvarchar(64)", change="type_text"),
    Col("mood", "nvarchar(64)", _s("sad"), _s("😀 happy"), _s("")),
    Row("interval, arrays", "nvarchar(100) / nvarchar(max)", change="type_text"),
    Col(
        "interval",
        "nvarchar(100)",
        _s("1 year 2 mons 3 days 04:05:06.789"),
        (_LONG_INTERVAL, PG_TEXT),
        ("'0'", "00:00:00"),
    ),
    Col("integer[]", "nvarchar(max)", _s("{1,NULL,3}"), _s("{}"), _s("{{1,2},{3,4}}"), _s("[0:1]={5,6}")),
    Col("text[]", "nvarchar(max)", ('\'{"a b","",NULL,"NULL","q\\"x",😀}\'', PG_TEXT), _s("{}"), _s("{{a,b},{c,d}}")),
    Col("boolean[]", "nvarchar(max)", _s("{t,f,NULL}")),
    Col("smallint[]", "nvarchar(max)", _s("{-32768,32767}")),
    Col("bigint[]", "nvarchar(max)", _s("{-9223372036854775808}")),
    Col("real[]", "nvarchar(max)", _s("{1.5,NaN,-Infinity}")),
    Col("double precision[]", "nvarchar(max)", _s("{0.1,-0}")),
    Col("numeric[]", "nvarchar(max)", _s("{1.50,NaN}")),
    Col("money[]", "nvarchar(max)", ("'{1.5}'", PG_TEXT)),
    Col("varchar(3)[]", "nvarchar(max)", _s('{😀,""}')),
    Col("char(2)[]", "nvarchar(max)", ("'{a}'", '{"a "}')),
    Col("bytea[]", "nvarchar(max)", ("ARRAY['\\x00ff'::bytea, '']", PG_TEXT)),
    Col("date[]", "nvarchar(max)", _s("{2024-02-29}")),
    Col("time[]", "nvarchar(max)", _s("{12:34:56.789}")),
    Col("timestamp[]", "nvarchar(max)", _s('{"2024-01-02 03:04:05"}')),
    Col("timestamptz[]", "nvarchar(max)", ("'{\"2024-01-02 03:04:05+00\"}'", PG_TEXT)),
    Col("interval[]", "nvarchar(max)", _s('{"1 day"}')),
    Col("uuid[]", "nvarchar(max)", _s("{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}")),
    Col("json[]", "nvarchar(max)", ("ARRAY['{\"a\": 1}'::json]", PG_TEXT)),
    Col("jsonb[]", "nvarchar(max)", ("ARRAY['{\"a\": 1}'::jsonb]", '{"{\\"a\\": 1}"}')),
    Col("mood[]", "nvarchar(max)", _s('{sad,"😀 happy"}')),
    Col("inet[]", "nvarchar(max)", _s("{10.0.0.1/8}")),
    Col("int4range[]", "nvarchar(max)", ("ARRAY['[1,5)'::int4range]", '{"[1,5)"}')),
    Row(
        "other (inet, cidr, macaddr, bit strings, timetz, tsvector, ranges, geometric, composite ...)",
        "—",
        change="type_text",
    ),
    Col("inet", "nvarchar(max)", _s("10.0.0.1/8"), ("'::1'", "::1/128")),
    Col("cidr", "nvarchar(max)", _s("10.0.0.0/8")),
    Col("macaddr", "nvarchar(max)", _s("08:00:2b:01:02:03")),
    Col("bit(3)", "nvarchar(max)", ("B'101'", "101")),
    Col("varbit", "nvarchar(max)", ("B''", "")),
    Col("timetz", "nvarchar(max)", ("'12:00+05'", "12:00:00+05")),
    Col("tsvector", "nvarchar(max)", ("'x y'", "'x' 'y'")),
    Col("int4range", "nvarchar(max)", _s("[1,5)"), _s("empty")),
    Col("tstzrange", "nvarchar(max)", ("'[2024-01-01 00:00+00,)'", PG_TEXT)),
    Col("numrange", "nvarchar(max)", _s("(,1.5]")),
    Col("point", "nvarchar(max)", _s("(1,2)")),
    Col("pair", "nvarchar(max)", ("ROW(1, '😀')", "(1,😀)")),
)
"""The last row runs with unsupported_types = text (each type's text, `value::text`); test_type_policy.py holds
its default (refused before anything is written) and skip-column."""

PG_SETUP = (
    "CREATE TYPE public.mood AS ENUM ('sad', '😀 happy', '')",
    "CREATE TYPE public.pair AS (n integer, t text)",
)
