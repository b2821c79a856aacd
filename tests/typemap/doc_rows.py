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
from dataclasses import dataclass, replace
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


@dataclass(frozen=True, init=False)
class Col:
    """One column of a doc row: its source declaration, the target type the target's catalog must show, and
    (source literal, value the target's client reads) pairs."""

    decl: str
    target: str
    values: tuple[tuple[str, Any], ...]
    change: str | None
    """The SchemaChange kind of this column where it differs from its row's."""

    def __init__(self, decl: str, target: str, *values: tuple[str, Any], change: str | None = None) -> None:
        object.__setattr__(self, "decl", decl)
        object.__setattr__(self, "target", target)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "change", change)


@dataclass(frozen=True)
class Row:
    """One row of a doc table: its first two cells as the doc writes them, and its columns."""

    source: str
    target: str
    cols: tuple[Col, ...] = ()
    cannot_run: str = ""
    """Why the test servers cannot hold this row's types (the row is then only held to the doc)."""
    change: str | None = None
    """The record.SchemaChange kind schema_changes gives its columns (None: the same type)."""


def doc_rows(*lines: Row | Col) -> tuple[Row, ...]:
    """A doc table written as data, one line per doc row or column: each `Row(source, target, ...)` line is a doc
    row, and the `Col(...)` lines under it are its columns."""
    rows: list[Row] = []
    for line in lines:
        if isinstance(line, Row):
            rows.append(line)
        else:
            rows[-1] = replace(rows[-1], cols=(*rows[-1].cols, line))
    return tuple(rows)


def f32(x: float) -> float:
    """A float as SQL Server's real / PostgreSQL's real holds it."""
    return float(np.float32(x))


def _t(text: str) -> tuple[str, str]:
    """A T-SQL Unicode literal and the same text expected back."""
    return "N'" + text.replace("'", "''") + "'", text


def number(literal: str) -> tuple[str, decimal.Decimal]:
    """A numeric literal (quoted or not) and the same number expected back, to the last digit."""
    return literal, D(literal.strip("'"))


def moment(text: str) -> tuple[str, dt.datetime]:
    """A quoted date-and-time literal (no offset) and the same moment expected back."""
    return f"'{text}'", dt.datetime.fromisoformat(text)


def guid(text: str) -> tuple[str, uuid.UUID]:
    """A quoted GUID literal and the same GUID expected back."""
    return f"'{text}'", uuid.UUID(text)


# ------------------------------------------------------------------------------- SQL Server → Arrow → PostgreSQL
# psycopg reads a real from PostgreSQL's shortest text of it (-2.5e+38), pymssql as the float32 widened (f32).
MSSQL_ROWS = doc_rows(
    Row("bit", "boolean"),
    Col("bit", "boolean", ("1", True), ("0", False)),
    Row("tinyint", "smallint"),
    Col("tinyint", "smallint", ("0", 0), ("255", 255)),
    Row("smallint / int / bigint", "smallint / integer / bigint"),
    Col("smallint", "smallint", ("-32768", -32768), ("32767", 32767)),
    Col("int", "integer", ("-2147483648", -2147483648), ("2147483647", 2147483647)),
    Col("bigint", "bigint", ("-9223372036854775808", -(2**63)), ("9223372036854775807", 2**63 - 1)),
    Row("decimal(p,s) / numeric(p,s)", "numeric(p,s)"),
    Col("decimal(38,10)", "numeric(38,10)", number("9999999999999999999999999999.9999999999"), number("-0.0000000001")),
    Col("numeric(19,4)", "numeric(19,4)", ("123.45", D("123.4500")), ("0", D("0.0000"))),
    Col("decimal(5,0)", "numeric(5,0)", number("-99999")),
    Row("money", "numeric(19,4)"),
    Col("money", "numeric(19,4)", number("-922337203685477.5808"), number("922337203685477.5807")),
    Row("smallmoney", "numeric(19,4)"),
    Col("smallmoney", "numeric(19,4)", number("-214748.3648"), number("214748.3647")),
    Row("real / float(1..24)", "real"),
    Col("real", "real", ("1.5", 1.5), ("-2.5E38", -2.5e38)),
    Col("float(24)", "real", ("0.1", 0.1)),
    Row("float / float(25..53)", "double precision"),
    Col("float", "double precision", ("0.1", 0.1), ("-1.7976931348623157E308", -1.7976931348623157e308)),
    Col("float(25)", "double precision", ("2.2250738585072014E-308", 2.2250738585072014e-308)),
    Row("char(n)", "character(n)"),
    Col("char(5)", "character(5)", ("'ab'", "ab   "), ("''", "     ")),
    Row("nchar(n)", "character varying(n)"),
    Col("nchar(3)", "character varying(3)", ("N'λ'", "λ  "), ("N''", "   "), ("N'😀'", "😀 ")),
    Row("varchar(n) / nvarchar(n)", "character varying(n)"),
    Col("varchar(50)", "character varying(50)", ("'abc '", "abc "), ("''", "")),
    Col("nvarchar(100)", "character varying(100)", _t("λ😀 'q'"), _t(""), _t("x\r\ny")),
    Row("varchar(max) / nvarchar(max) / text / ntext", "text"),
    Col("varchar(max)", "text", ("'plain'", "plain"), ("''", "")),
    Col("nvarchar(max)", "text", _t("😀" * 3000), _t("")),
    Col("text", "text", ("'old'", "old")),
    Col("ntext", "text", _t("ünï 😀"), _t("")),
    Row("binary(n) / varbinary(n)", "bytea"),
    Col("binary(4)", "bytea", ("0x0102", b"\x01\x02\x00\x00")),
    Col("varbinary(16)", "bytea", ("0x00ff7f80", b"\x00\xff\x7f\x80")),
    Row("varbinary(max) / image", "bytea"),
    Col("varbinary(max)", "bytea", ("0x" + "ab" * 10000, b"\xab" * 10000)),
    Col("image", "bytea", ("0x00", b"\x00")),
    Row("date", "date"),
    Col("date", "date", ("'2024-02-29'", dt.date(2024, 2, 29))),
    Row("time(p ≤ 6)", "time(p)"),
    Col("time(3)", "time(3) without time zone", ("'12:34:56.789'", dt.time(12, 34, 56, 789000))),
    Row("time(7)", "time(6)"),
    Col("time(7)", "time(6) without time zone", ("'23:59:59.123456'", dt.time(23, 59, 59, 123456))),
    Row("smalldatetime", "timestamp(0)"),
    Col("smalldatetime", "timestamp(0) without time zone", moment("2024-01-02T03:04:00")),
    Row("datetime", "timestamp(3)"),
    Col("datetime", "timestamp(3) without time zone", moment("2024-01-02T03:04:05.997")),
    Row("datetime2(p ≤ 6)", "timestamp(p)"),
    Col("datetime2(3)", "timestamp(3) without time zone", moment("2024-01-02T03:04:05.123")),
    Row("datetime2(7)", "timestamp(6)"),
    Col("datetime2(7)", "timestamp(6) without time zone", moment("2024-01-02T03:04:05.123456")),
    Row("datetimeoffset(p)", "timestamp(min(p,6)) with time zone"),
    Col(
        "datetimeoffset(7)",
        "timestamp(6) with time zone",
        ("'2024-01-02 03:04:05.123456 +05:30'", dt.datetime(2024, 1, 1, 21, 34, 5, 123456, tzinfo=UTC)),
    ),
    Row("uniqueidentifier", "uuid"),
    Col(
        "uniqueidentifier",
        "uuid",
        guid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
        guid("00000000-0000-0000-0000-000000000001"),
    ),
    Row("rowversion / timestamp", "bytea"),
    Col("rowversion", "bytea", ("DEFAULT", AS_SOURCE)),
    Row("xml", "xml"),
    Col("xml", "xml"),
    Row(
        "sql_variant",
        "text",
        cannot_run="a policy of its own: tests/engines/mssql/test_variant_text.py copies every base type under text "
        "and keep, tests/engines/mssql/test_policies.py holds refuse",
    ),
    Col("sql_variant", "text"),
    Row(
        "geography / geometry / hierarchyid",
        "bytea",
        cannot_run="tested by tests/typemap/test_doc_rows_alias_clr.py (the values in SQL Server's own serialization)",
    ),
    Col("hierarchyid", "bytea"),
    Row(
        "alias (user-defined) types",
        "",
        cannot_run="tested by tests/typemap/test_doc_rows_alias_clr.py (a column here is declared inline, an alias "
        "needs its CREATE TYPE first: that test creates aliases of varchar and bit and copies them to each target)",
    ),
)
"""The PostgreSQL server of the tests has no libxml: xml columns hold NULLs only (PostgreSQL cannot take a value)."""


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
