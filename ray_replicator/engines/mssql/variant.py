"""sql_variant values as exact text, and back: what sql_variant = text and sql_variant = keep read and write.

``text`` reads each value as the text its base type's exact CONVERT style gives (VARIANT_STYLES); ``keep`` puts the
base type's declaration in front ('datetime2(7):2020-01-01 10:00:00.1234567'), so a SQL Server target can make
the same sql_variant again (variant_literals): CONVERT(<base type>, <text>, <style>) cast to sql_variant.
"""

from __future__ import annotations

import re

import pyarrow as pa

from ray_replicator.engines.base import EngineError
from ray_replicator.engines.mssql.sql import n_literal

VARIANT_STYLES = (
    ("datetime2", "datetime2(7)", 121),
    ("datetimeoffset", "datetimeoffset(7)", 121),
    ("time", "time(7)", 121),
    ("date", "date", 23),
    ("datetime", "datetime", 121),
    ("smalldatetime", "smalldatetime", 120),
    ("float", "float", 3),
    ("real", "real", 3),
    ("money", "money", 2),
    ("smallmoney", "smallmoney", 2),
    ("varbinary", "varbinary(8000)", 1),
    ("binary", "varbinary(8000)", 1),
)
"""sql_variant base types whose plain text (CAST AS nvarchar, style 0) loses something, each converted to its own
type and written with the CONVERT style SQL Server documents as exact: 121 (every fractional digit of date/time
types, datetimeoffset's offset; seven digits whatever the value's scale), 23 (date), 120 (smalldatetime), 3
(float/real: 17/9 significant digits), 2 (money: four decimals), 1 (binary as '0x' and hex digits). Any other
base type (the character types, integers, bit, decimal/numeric at their scale, uniqueidentifier) is exact as
CAST(v AS nvarchar(max))."""

READ_BACK_STYLES = {"datetime": 121, "smalldatetime": 120}
"""The CONVERT style that reads a base type's exact text back where the text alone is ambiguous (datetime's
'yyyy-mm-dd' follows DATEFORMAT); the other types read it without one, and binary text ('0x' and hex digits) is
a T-SQL binary literal as it is."""

_BINARY_TEXT = re.compile(r"0x[0-9A-Fa-f]*")
_DECLARATION = re.compile(r"[a-z0-9]+(\(\d+(,\d+)?\))?")
"""A base type's declaration as variant_typed_text writes it: a name, then a length, scale or precision and scale."""


def variant_text(ident: str) -> str:
    """The exact text of each value of sql_variant column `ident` (VARIANT_STYLES), chosen by its base type."""
    whens = " ".join(
        f"WHEN N'{name}' THEN CONVERT(nvarchar(max), CAST({ident} AS {typ}), {style})"
        for name, typ, style in VARIANT_STYLES
    )
    return f"CASE {_property(ident, 'BaseType')} {whens} ELSE CAST({ident} AS nvarchar(max)) END"


def variant_typed_text(ident: str) -> str:
    """'<base type declaration>:<exact text>' of each value of sql_variant column `ident` (NULL stays NULL): the
    declaration has the precision and scale, the fractional digits or the length the value's base type has."""
    base = _property(ident, "BaseType")

    def number(prop: str, divisor: int = 1) -> str:
        value = f"CAST(SQL_VARIANT_PROPERTY({ident}, '{prop}') AS int)"
        return f"CAST({value}{f' / {divisor}' if divisor > 1 else ''} AS nvarchar(10))"

    declared = (
        f"CASE WHEN {base} IN (N'decimal', N'numeric') THEN {base} + N'(' + {number('Precision')} + N',' + "
        f"{number('Scale')} + N')' "
        f"WHEN {base} IN (N'datetime2', N'datetimeoffset', N'time') THEN {base} + N'(' + {number('Scale')} + N')' "
        f"WHEN {base} IN (N'nvarchar', N'nchar') THEN {base} + N'(' + {number('MaxLength', 2)} + N')' "
        f"WHEN {base} IN (N'varchar', N'char', N'varbinary', N'binary') THEN {base} + N'(' + {number('MaxLength')} "
        f"+ N')' ELSE {base} END"
    )
    return f"{declared} + N':' + {variant_text(ident)}"


def _property(ident: str, prop: str) -> str:
    return f"CAST(SQL_VARIANT_PROPERTY({ident}, '{prop}') AS nvarchar(128))"


def variant_literal(typed: str) -> str:
    """A T-SQL sql_variant expression for '<base type declaration>:<exact text>': the text converted to the base
    type (with READ_BACK_STYLES where it needs one), then to sql_variant."""
    declared, text = typed.split(":", 1)
    name = declared.split("(", 1)[0]
    binary = name in ("binary", "varbinary")
    if not _DECLARATION.fullmatch(declared) or (binary and not _BINARY_TEXT.fullmatch(text)):
        raise EngineError(f"sql_variant value {typed[:80]!r} is not '<base type>:<exact text>' as read")
    literal = text if binary else n_literal(text)
    if declared.endswith("(0)"):  # an empty value: a length 0 cannot be declared
        return f"CAST({literal} AS sql_variant)"
    style = READ_BACK_STYLES.get(name)
    converted = f"CONVERT({declared}, {literal}{f', {style}' if style is not None else ''})"
    return f"CAST({converted} AS sql_variant)"


def variant_literals(arr: pa.Array) -> pa.Array:
    """variant_literal of each typed text in `arr`, NULL as NULL (large_string)."""
    return pa.array(
        ["NULL" if v is None else variant_literal(v) for v in arr.to_pylist()],
        type=pa.large_string(),
    )
