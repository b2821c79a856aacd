"""SQL Server's computed-column expressions and column defaults in PostgreSQL's dialect, or the reason they are not.

Translation goes through sqlglot (T-SQL → PostgreSQL). A computed column is translated only when every part of
its expression means the same in both engines (arithmetic, comparisons, CASE, ISNULL/COALESCE, UPPER/LOWER,
trims, ABS, CONCAT, casts to numbers, and casts to text of text, integer or decimal operands); a function whose
result differs (LEN drops trailing blanks, CONVERT styles, date arithmetic, float formatting) keeps the column
plain with the source's values. Whether PostgreSQL accepts a translation (types, immutability) is asked of the
target itself (ddl.probe_expressions), before anything is created.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ray_replicator.catalog import Column
from ray_replicator.engines.postgres.names import pg_name

_SAME_MEANING = frozenset(
    {
        "Add", "Sub", "Mul", "Div", "Mod", "Neg", "Paren", "Column", "Identifier", "Literal", "National", "Null",
        "Boolean", "Case", "If", "EQ", "NEQ", "GT", "GTE", "LT", "LTE", "And", "Or", "Not", "Is", "Coalesce",
        "Upper", "Lower", "Trim", "Abs", "Concat", "DataType", "DataTypeParam", "Cast", "Convert", "TryCast",
        "Nullif", "In", "Between",
    }
)  # fmt: skip
"""sqlglot node classes whose T-SQL and PostgreSQL meanings agree on every value."""

_NUMERIC_TYPES = ("INT", "SMALLINT", "BIGINT", "TINYINT", "DECIMAL", "NUMERIC")
_TEXT_SAFE_KINDS = ("string", "int8", "int16", "int32", "int64", "decimal")
"""Logical kinds whose text form is the same in both engines (casts to text keep their meaning)."""


@dataclass(frozen=True)
class Translation:
    """A PostgreSQL expression, or why there is none (sql is None)."""

    sql: str | None
    reason: str = ""


def strip_parens(text: str) -> str:
    """SQL Server stores definitions wrapped in parentheses: ((0)), (getdate()), ([a]+[b])."""
    text = text.strip()
    while text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
        text = text[1:-1].strip()
    return text


def _balanced(text: str) -> bool:
    depth = 0
    quoted = False
    for ch in text:
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0 and not quoted


def _cast_keeps_meaning(node: object, columns: dict[str, Column]) -> bool:
    from sqlglot import exp

    assert isinstance(node, exp.Cast | exp.Convert | exp.TryCast)
    if isinstance(node, exp.Convert) and node.args.get("style") is not None:
        return False  # a CONVERT style formats as SQL Server does
    to = node.args.get("to")
    target = to.this.name if isinstance(to, exp.DataType) else ""
    if any(target.startswith(t) for t in _NUMERIC_TYPES):
        return True
    operand = node.this if isinstance(node, exp.Cast | exp.TryCast) else node.args.get("expression")
    if isinstance(operand, exp.Column) and operand.name in columns:
        return columns[operand.name].logical.kind in _TEXT_SAFE_KINDS
    return False


def translate_computed(definition: str, columns: dict[str, Column]) -> Translation:
    """A computed column's T-SQL definition as a PostgreSQL expression over the target's column names."""
    import sqlglot
    from sqlglot import exp

    text = strip_parens(re.sub(r"\s+PERSISTED\s*$", "", definition.strip(), flags=re.IGNORECASE))
    try:
        tree = sqlglot.parse_one(text, read="tsql")
    except sqlglot.errors.ParseError:
        return Translation(None, "the expression does not parse as T-SQL")
    for node in tree.walk():
        name = type(node).__name__
        if name not in _SAME_MEANING:
            return Translation(None, f"{_function_name(node)} means something else in PostgreSQL")
        if isinstance(node, exp.Cast | exp.Convert | exp.TryCast) and not _cast_keeps_meaning(node, columns):
            return Translation(None, "a conversion formats values otherwise in PostgreSQL")
        if isinstance(node, exp.Column):
            if node.name not in columns:
                return Translation(None, f"it refers to {node.name!r}, not a column of the table")
            node.set("this", exp.to_identifier(pg_name(node.name), quoted=True))
    return Translation(tree.sql(dialect="postgres"))


def _function_name(node: object) -> str:
    from sqlglot import exp

    if isinstance(node, exp.Anonymous):
        return str(node.name).upper()
    if isinstance(node, exp.Func):
        return node.sql_name()
    return type(node).__name__


_NOW_LOCAL = "LOCALTIMESTAMP"
_NOW_UTC = "(now() AT TIME ZONE 'UTC')"
_DEFAULT_FUNCTIONS = {
    "getdate()": (_NOW_LOCAL, ""),
    "sysdatetime()": (_NOW_LOCAL, ""),
    "current_timestamp": (_NOW_LOCAL, ""),
    "getutcdate()": (_NOW_UTC, ""),
    "sysutcdatetime()": (_NOW_UTC, ""),
    "sysdatetimeoffset()": ("CURRENT_TIMESTAMP", ""),
    "newid()": ("gen_random_uuid()", ""),
    "newsequentialid()": ("gen_random_uuid()", "values are random, not increasing"),
}
"""T-SQL default functions and their PostgreSQL twins; for a timestamptz column the UTC forms are now()."""

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_STRING = re.compile(r"^N?'((?:[^']|'')*)'$", re.DOTALL)
_HEX = re.compile(r"^0x([0-9A-Fa-f]*)$")
_NEXT_VALUE = re.compile(r"^NEXT\s+VALUE\s+FOR\s+(.+)$", re.IGNORECASE)


def translate_default(definition: str, column: Column) -> Translation:
    """A column default (sys.default_constraints.definition) as a PostgreSQL expression for `column`."""
    text = strip_parens(definition)
    kind = column.logical.kind
    low = re.sub(r"\s+", "", text.lower())
    if low in _DEFAULT_FUNCTIONS:
        sql, reason = _DEFAULT_FUNCTIONS[low]
        if kind == "timestamptz" and sql in (_NOW_LOCAL, _NOW_UTC):
            sql = "CURRENT_TIMESTAMP"
        return Translation(sql, reason)
    while _balanced(text) and text.startswith("(") and text.endswith(")"):
        text = text[1:-1].strip()  # a literal like ((-1)) or (('x'))
    if _NUMBER.match(text):
        if kind == "bool":
            return Translation("false" if float(text) == 0 else "true")
        return Translation(text)
    if m := _STRING.match(text):
        return Translation("'" + m.group(1) + "'")
    if m := _HEX.match(text):
        return Translation(f"'\\x{m.group(1)}'::bytea")
    if text.upper() == "NULL":
        return Translation("NULL")
    if m := _NEXT_VALUE.match(text):
        return Translation(None, f"sequence {m.group(1)} is not copied from SQL Server")
    return _translated_by_sqlglot(text)


def _translated_by_sqlglot(text: str) -> Translation:
    import sqlglot

    try:
        tree = sqlglot.parse_one(text, read="tsql")
    except sqlglot.errors.ParseError:
        return Translation(None, "the expression does not parse as T-SQL")
    if any(isinstance(n, sqlglot.exp.Column) for n in tree.walk()):
        return Translation(None, "it names a column or object PostgreSQL does not have")
    return Translation(tree.sql(dialect="postgres"), "translated by sqlglot")
