"""SQL Server's result types of expressions: data type precedence, the precision and scale of decimal
arithmetic, and the types of CASE/COALESCE/IIF, SUM and AVG (Transact-SQL reference: "Data type precedence",
"Precision, scale, and length", "CASE", "COALESCE", "SUM", "AVG").

DuckDB picks its own result types (SUM of an integer is HUGEINT or DECIMAL(38,0), decimal division is DOUBLE);
the translator declares these instead, so a client sees the column SQL Server would describe."""

from __future__ import annotations

from sqlglot import exp

from .types import SqlType, make_type

#: highest first: an operator, CASE or COALESCE over mixed types yields the one that comes first here
PRECEDENCE = (
    "sql_variant", "xml", "datetimeoffset", "datetime2", "datetime", "smalldatetime", "date", "time", "float",
    "real", "decimal", "numeric", "money", "smallmoney", "bigint", "int", "smallint", "tinyint", "bit", "ntext",
    "text", "image", "timestamp", "uniqueidentifier", "nvarchar", "nchar", "varchar", "char", "varbinary", "binary",
)  # fmt: skip
_RANK = {n: i for i, n in enumerate(PRECEDENCE)}

#: (precision, scale) a non-decimal exact number has when it meets a decimal
_EXACT_SHAPE = {
    "bigint": (19, 0), "int": (10, 0), "smallint": (5, 0), "tinyint": (3, 0), "bit": (1, 0), "money": (19, 4),
    "smallmoney": (10, 4),
}  # fmt: skip
_DECIMAL = ("decimal", "numeric")
_INTEGER = ("bigint", "int", "smallint", "tinyint", "bit")
_STRINGS = ("nvarchar", "nchar", "varchar", "char")
_SCALED = ("datetime2", "time", "datetimeoffset")
MAX_PRECISION = 38
#: the types arithmetic works on (every one of them outranks every string)
NUMBERS = frozenset({*_INTEGER, "decimal", "numeric", "float", "real", "money", "smallmoney"})


def node_type(node: exp.Expression) -> SqlType | None:
    t = node.meta.get("ss_type") if node.meta else None
    return t if isinstance(t, SqlType) else None


def _winner(types: list[SqlType]) -> SqlType:
    return min(types, key=lambda t: _RANK.get(t.name, len(PRECEDENCE)))


def _shape(node: exp.Expression, t: SqlType) -> tuple[int, int] | None:
    """(precision, scale) of a value in decimal arithmetic; an integer constant counts its digits only."""
    if t.name in _DECIMAL:
        return t.precision, t.scale
    const = node.meta.get("ss_const") if node.meta else None
    if t.name == "int" and isinstance(const, int) and not isinstance(const, bool):
        return max(1, len(str(abs(const)))), 0
    return _EXACT_SHAPE.get(t.name)


def _decimal(name: str, p: int, s: int) -> SqlType:
    return make_type(name, [str(p), str(s)])


def _decimal_name(types: list[SqlType]) -> str:
    """numeric only when every decimal operand is numeric (a literal like 2.5 is numeric, a column decimal)."""
    return "numeric" if all(t.name == "numeric" for t in types if t.name in _DECIMAL) else "decimal"


def combined_type(values: list[exp.Expression]) -> SqlType | None:
    """The type of CASE, COALESCE or IIF over these result values (NULLs and untyped values do not count)."""
    typed = [(v, t) for v in values if (t := node_type(v)) is not None and not isinstance(v, exp.Null)]
    return _combined([t for _, t in typed], [sh for v, t in typed if (sh := _shape(v, t)) is not None])


def union_type(types: list[SqlType | None]) -> SqlType | None:
    """The type of one column of UNION/EXCEPT/INTERSECT (None when a branch's type is unknown)."""
    if any(t is None for t in types):
        return None
    known = [t for t in types if t is not None]
    shapes = [
        (t.precision, t.scale) if t.name in _DECIMAL else _EXACT_SHAPE[t.name]
        for t in known
        if t.name in _DECIMAL or t.name in _EXACT_SHAPE
    ]
    return _combined(known, shapes)


def _combined(types: list[SqlType], shapes: list[tuple[int, int]]) -> SqlType | None:
    if not types:
        return None
    win = _winner(types)
    if win.name in _DECIMAL:
        s = max(sh[1] for sh in shapes)
        integral = max(sh[0] - sh[1] for sh in shapes)
        p, s = _cap(integral + s, s, integral, "union")
        return _decimal(_decimal_name(types), p, s)
    if win.name in _STRINGS:
        strings = [t for t in types if t.name in _STRINGS]
        if any(t.length == -1 for t in strings):
            return SqlType(win.name, -1)
        return SqlType(win.name, max(t.length for t in strings))
    if win.name in _SCALED:
        return make_type(win.name, [str(max(t.scale for t in types if t.name == win.name))])
    if win.name in ("varbinary", "binary"):
        binaries = [t for t in types if t.name in ("varbinary", "binary")]
        return SqlType(win.name, -1 if any(t.length == -1 for t in binaries) else max(t.length for t in binaries))
    return win


#: the length of a value of this type converted to a string, where CONCAT sizes its result ("CONCAT": an int
#: is 12 characters, a float 32); other types take CAST's default string length, 30
_STRING_FORM = {"int": 12, "float": 32}
_CLR = ("geography", "geometry", "hierarchyid")


def concat_type(types: list[SqlType | None]) -> SqlType:
    """CONCAT's result ("CONCAT (Transact-SQL)", Return types): nvarchar(max) for an nvarchar(max) or CLR argument;
    else (max) when an argument is varchar(max) or varbinary(max), nvarchar when any argument is; else the sum of
    the arguments' string lengths, up to 4000 (nvarchar) or 8000 (varchar). Untyped arguments (NULL) add nothing."""
    known = [t for t in types if t is not None]
    unicode = any(t.is_unicode or t.name in _CLR for t in known)
    name = "nvarchar" if unicode else "varchar"
    if any(t.length == -1 and (t.is_string or t.name == "varbinary") or t.name in _CLR for t in known):
        return SqlType(name, -1)
    total = sum(t.length if t.is_string or t.name in ("binary", "varbinary") else _STRING_FORM.get(t.name, 30)
                for t in known)  # fmt: skip
    return SqlType(name, max(1, min(total, 4000 if unicode else 8000)))


def arithmetic_type(op: str, a: exp.Expression, b: exp.Expression) -> SqlType | None:
    """The type of a + - * / % b for numbers (op: add, sub, mul, div, mod); None where the rule is not one of
    these (dates, strings) and the caller keeps its own."""
    ta, tb = node_type(a), node_type(b)
    if ta is None or tb is None:
        return None
    win = _winner([ta, tb])
    if win.name == "float" or win.name == "real":
        return make_type(win.name, [])
    if win.name in ("money", "smallmoney"):
        return make_type("money", [])
    if win.name not in _DECIMAL:
        return None
    sa, sb = _shape(a, ta), _shape(b, tb)
    if sa is None or sb is None:
        return None
    p, s, integral = _decimal_result(op, sa, sb)
    p, s = _cap(p, s, integral, op)
    return _decimal(_decimal_name([ta, tb]), p, s)


def beyond_max_precision(op: str, a: exp.Expression, b: exp.Expression) -> bool:
    """True where the decimal result's precision before the 38 cap exceeds 38: the scale is then cut (and the
    value rounded, or overflowing) by SQL Server's rule, which DuckDB's own decimal arithmetic does not follow."""
    ta, tb = node_type(a), node_type(b)
    sa = _shape(a, ta) if ta is not None else None
    sb = _shape(b, tb) if tb is not None else None
    return sa is not None and sb is not None and _decimal_result(op, sa, sb)[0] > MAX_PRECISION


def _decimal_result(op: str, sa: tuple[int, int], sb: tuple[int, int]) -> tuple[int, int, int]:
    """(precision, scale, integral digits) of e1 op e2 before the cap ("Precision, scale, and length")."""
    (p1, s1), (p2, s2) = sa, sb
    if op in ("add", "sub"):
        s = max(s1, s2)
        integral = max(p1 - s1, p2 - s2)
        return s + integral + 1, s, integral
    if op == "mul":
        return p1 + p2 + 1, s1 + s2, p1 + p2 + 1 - s1 - s2
    if op == "div":
        s = max(6, s1 + p2 + 1)
        return p1 - s1 + s2 + s, s, p1 - s1 + s2
    s = max(s1, s2)
    p = min(p1 - s1, p2 - s2) + s
    return p, s, p - s


def _cap(p: int, s: int, integral: int, op: str) -> tuple[int, int]:
    """Precision above 38: the scale gives way to the integral digits (by the rules for + - and for * /)."""
    if p <= MAX_PRECISION:
        return p, s
    if op in ("mul", "div"):
        if p - s < 32:
            return MAX_PRECISION, min(s, MAX_PRECISION - (p - s))
        return MAX_PRECISION, min(s, 6)
    return MAX_PRECISION, max(0, min(s, MAX_PRECISION - integral))


def sum_type(t: SqlType) -> SqlType | None:
    """SUM: int for the small integers, bigint, decimal(38, s), money, float."""
    if t.name in ("int", "smallint", "tinyint", "bit"):
        return make_type("int", [])
    if t.name == "bigint":
        return t
    if t.name in _DECIMAL:
        return _decimal(t.name, MAX_PRECISION, t.scale)
    if t.name in ("money", "smallmoney"):
        return make_type("money", [])
    if t.name in ("float", "real"):
        return make_type("float", [])
    return None


def avg_type(t: SqlType) -> SqlType | None:
    """AVG: like SUM, except decimal(p, s) averages to decimal(38, max(s, 6))."""
    if t.name in _DECIMAL:
        return _decimal(t.name, MAX_PRECISION, max(t.scale, 6))
    return sum_type(t)
