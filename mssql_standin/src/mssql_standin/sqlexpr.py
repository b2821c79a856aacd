"""Expressions with SQL Server types: the result-column and scope records, typed literals, and the base of
the Translator (storage vs native form of values)."""

from __future__ import annotations

import datetime as dt
import decimal
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, UnsupportedError

from .exactnum import exact_operation
from .sqltext import SPECIAL_STORAGE, unsupported
from .syscatalog import Catalog, Table
from .typerules import arithmetic_type, beyond_max_precision
from .types import INT_RANGES, TICKS_PER_DAY, SqlType, make_type, scalar_to_storage


@dataclass
class OutCol:
    name: str
    type: SqlType | None
    nullable: bool = True
    identity: bool = False
    computed: bool = False
    #: None: derived from the type (table columns); otherwise whether the value is in storage form
    raw: bool | None = None

    @property
    def is_raw(self) -> bool:
        if self.raw is not None:
            return self.raw
        return self.type is not None and self.type.name in SPECIAL_STORAGE


@dataclass
class Source:
    alias: str
    cols: list[OutCol]
    table: Table | None = None


@dataclass
class Context:
    """What the translator needs from the session."""

    catalog: Catalog
    database: str
    now: dt.datetime
    variables: dict[str, tuple[SqlType | None, object]]
    system_value: Callable[[str], tuple[SqlType, object]]
    function_value: Callable[[str, list[object]], tuple[SqlType, object]]
    dateformat: str = "mdy"
    views: set[str] = field(default_factory=set)


_CMP = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)


_UNIT_TICKS = {
    "DAY": TICKS_PER_DAY, "DD": TICKS_PER_DAY, "D": TICKS_PER_DAY, "DAYOFYEAR": TICKS_PER_DAY,
    "DY": TICKS_PER_DAY,
    "Y": TICKS_PER_DAY, "WEEKDAY": TICKS_PER_DAY, "DW": TICKS_PER_DAY, "W": TICKS_PER_DAY,
    "WEEK": 7 * TICKS_PER_DAY, "WK": 7 * TICKS_PER_DAY, "WW": 7 * TICKS_PER_DAY,
    "HOUR": 36_000_000_000, "HH": 36_000_000_000, "MINUTE": 600_000_000, "MI": 600_000_000, "N": 600_000_000,
    "SECOND": 10_000_000, "SS": 10_000_000, "S": 10_000_000, "MILLISECOND": 10_000, "MS": 10_000,
    "MICROSECOND": 10, "MCS": 10,
}  # fmt: skip


_INT_TYPES = set(INT_RANGES) | {"bit"}


def literal(value: object, t: SqlType | None = None) -> exp.Expression:
    """A Python value as a DuckDB literal node; the type, when known, is kept in meta."""
    node: exp.Expression
    if value is None:
        node = exp.Null()
    elif isinstance(value, bool):
        node = exp.Literal.number(1 if value else 0)
    elif isinstance(value, int):
        node = exp.Literal.number(value)
        if t is None:
            t = make_type(
                "int" if -(2**31) <= value < 2**31 else "bigint" if -(2**63) <= value < 2**63 else "decimal",
                ["38", "0"] if abs(value) >= 2**63 else [],
            )
    elif isinstance(value, float):
        node = exp.Cast(this=exp.Literal.string(repr(value)), to=exp.DataType.build("DOUBLE"))
    elif isinstance(value, decimal.Decimal):
        node = exp.Literal.number(format(value, "f"))
    elif isinstance(value, (bytes, bytearray)):
        node = exp.Anonymous(this="unhex", expressions=[exp.Literal.string(bytes(value).hex())])
    elif isinstance(value, uuid.UUID):
        node = exp.Literal.string(str(value).upper())
    elif isinstance(value, dt.datetime):
        node = exp.Cast(this=exp.Literal.string(value.isoformat(sep=" ")), to=exp.DataType.build("TIMESTAMP"))
    elif isinstance(value, dt.date):
        node = exp.Cast(this=exp.Literal.string(value.isoformat()), to=exp.DataType.build("DATE"))
    elif isinstance(value, dict):
        node = exp.Struct(
            expressions=[exp.PropertyEQ(this=exp.to_identifier(k), expression=literal(v)) for k, v in value.items()]
        )
    else:
        s = str(value)
        node = exp.Literal.string(s)
        if "\x00" in s:
            parts = s.split("\x00")
            node = exp.Literal.string(parts[0])
            for p in parts[1:]:
                node = exp.DPipe(
                    this=exp.DPipe(
                        this=node, expression=exp.Anonymous(this="chr", expressions=[exp.Literal.number(0)])
                    ),
                    expression=exp.Literal.string(p),
                )
    if t is not None:
        node.meta["ss_type"] = t
    node.meta["ss_const"] = value
    return node


def storage_literal(value: object, t: SqlType) -> exp.Expression:
    """A storage-form value for a column of type t as a DuckDB literal of the storage type."""
    if value is None:
        return exp.Null()
    if t.name in ("datetime2", "time"):
        return exp.Cast(this=exp.Literal.number(value), to=exp.DataType.build("BIGINT"))
    if t.name == "datetimeoffset" and isinstance(value, dict):
        return exp.Cast(
            this=literal(value),
            to=exp.DataType.build("STRUCT(utc BIGINT, offset_min SMALLINT)", dialect="duckdb"),
        )
    return literal(value, t)


def type_of(node: exp.Expression) -> SqlType | None:
    t = node.meta.get("ss_type") if node.meta else None
    return t if isinstance(t, SqlType) else None


class _NoConst:
    pass


_NOCONST = _NoConst()


def like_regex(pattern: str) -> str:
    """A T-SQL LIKE pattern as a regex: % any run, _ one character, [..] a class, [^..] its negation."""
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        elif ch == "[":
            j = pattern.find("]", i + 2)
            if j == -1:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1 : j]
                neg = body.startswith("^")
                body = body[1:] if neg else body
                cls = "".join("\\" + c if c in "\\]" else c for c in body)
                out.append(f"[{'^' if neg else ''}{cls}]")
                i = j
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


def duck_sql(node: exp.Expression) -> str:
    """DuckDB SQL for a rewritten tree; whatever sqlglot would silently drop (FOR JSON, seeded RAND …) is
    refused with error 40517 instead."""
    try:
        return node.sql("duckdb", unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError as e:
        raise unsupported(str(e).strip().rstrip(".")) from e


def _parse_duck(sql: str) -> exp.Expression:
    tree = sqlglot.parse_one(sql, read="duckdb")
    assert isinstance(tree, exp.Expression)
    return tree


def view_table_name(view: str) -> str:
    return "__ss_view_" + view.replace(".", "_")


def _wider_int(a: SqlType, b: SqlType) -> SqlType:
    """Integer arithmetic's type: the operand type of higher precedence; operands of one type keep it ("Data type
    precedence": tinyint + tinyint is tinyint, smallint * smallint smallint). bit with bit counts as int."""
    order = ["bit", "tinyint", "smallint", "int", "bigint"]
    w = max(order.index(a.name), order.index(b.name))
    return make_type(order[w] if w else "int", [])


_DUCK_INT = {"tinyint": "UTINYINT", "smallint": "SMALLINT", "int": "INTEGER", "bigint": "BIGINT"}

#: money's range in units of 0.0001 ("money and smallmoney"): an 8-byte integer
MONEY_UNITS = (-(2**63), 2**63 - 1)


def checked_money(node: exp.Expression) -> exp.Expression:
    """A money result outside money's range is error 8115, as SQL Server raises it (DuckDB's DECIMAL would hold it,
    and the 8-byte money on the wire would wrap around)."""
    lo, hi = (exp.Literal.number(str(decimal.Decimal(u).scaleb(-4))) for u in MONEY_UNITS)
    message = exp.Literal.string("__ss_e8115: Arithmetic overflow error converting expression to data type money.")
    out = exp.Anonymous(this="__ss_int_range", expressions=[node, lo, hi, message])
    out.meta["ss_type"] = make_type("money", [])
    return out


def checked_int(node: exp.Expression, t: SqlType) -> exp.Expression:
    """An integer operation computed one size wider and checked against t's range: a result t cannot hold is
    error 8115 naming t, as SQL Server raises it (DuckDB would overflow in its own operand type, or not at all
    where it widens)."""
    wide = exp.DataType.build("HUGEINT" if t.name == "bigint" else "BIGINT")
    for key in ("this", "expression"):
        if node.args.get(key) is not None:
            node.set(key, exp.Cast(this=node.args[key], to=wide.copy()))
    lo, hi = INT_RANGES[t.name]
    message = f"__ss_e8115: Arithmetic overflow error converting expression to data type {t.name}."
    bounds = [exp.Literal.number(lo), exp.Literal.number(hi), exp.Literal.string(message)]
    out = exp.Cast(
        this=exp.Anonymous(this="__ss_int_range", expressions=[node, *bounds]),
        to=exp.DataType.build(_DUCK_INT[t.name], dialect="duckdb"),
    )
    out.meta["ss_type"] = t
    return out


def _concat_type(a: SqlType | None, b: SqlType | None) -> SqlType:
    uni = any(t is not None and t.is_unicode for t in (a, b))
    la = a.length if a is not None and a.is_string else -1
    lb = b.length if b is not None and b.is_string else -1
    if la == -1 or lb == -1:
        return SqlType("nvarchar" if uni else "varchar", -1)
    n = la + lb
    limit = 4000 if uni else 8000
    return SqlType("nvarchar" if uni else "varchar", n if n <= limit else -1)


_ARITH_OPS: dict[type, str] = {exp.Add: "add", exp.Sub: "sub", exp.Mul: "mul", exp.Mod: "mod", exp.Div: "div"}

#: days from 0001-01-01 to 1900-01-01 (a time converted to datetime2 takes that date)
_DAY_1900 = 693_595


class TranslatorBase:
    """What every rewrite step shares: the context, and moving values between storage and native form."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.ctes: dict[str, list[OutCol]] = {}
        self.alias_n = 0

    def _known_func(self, node: exp.Expression) -> None:
        if isinstance(node, (exp.Upper, exp.Lower, exp.Trim, exp.Substring, exp.Replace, exp.Concat)):
            t = type_of(node.this) if node.this is not None else None
            node.meta["ss_type"] = t if t is not None and t.is_string else SqlType("nvarchar", -1)
        elif (
            isinstance(node, exp.RowNumber)
            or type(node).__name__ == "Ntile"
            or isinstance(node, (exp.Rank, exp.DenseRank))
        ):
            node.meta["ss_type"] = make_type("bigint", [])

    def _nativize_children(self, node: exp.Expression) -> None:
        for key, val in list(node.args.items()):
            if isinstance(val, exp.Expression) and val.meta.get("ss_raw"):
                node.set(key, self._native(val))
            elif isinstance(val, list):
                node.set(
                    key,
                    [self._native(v) if isinstance(v, exp.Expression) and v.meta.get("ss_raw") else v for v in val],
                )

    def _native(self, node: exp.Expression) -> exp.Expression:
        """A storage-form expression as a DuckDB-native value (TIMESTAMP, TIME, TIMESTAMPTZ, UUID string)."""
        if not node.meta.get("ss_raw"):
            return node
        t = type_of(node)
        assert t is not None
        fn = {
            "datetime2": "__ss_dt2_ts",
            "time": "__ss_time_t",
            "datetimeoffset": "__ss_dto_tz",
            "uniqueidentifier": "__ss_guid_str",
        }[t.name]
        out = exp.Anonymous(this=fn, expressions=[node])
        native = {
            "uniqueidentifier": SqlType("nvarchar", 36),
            "datetimeoffset": make_type("datetime2", ["7"]),
        }
        out.meta["ss_type"] = native.get(t.name, t)
        return out

    def _arith(self, node: exp.Expression) -> exp.Expression:
        self._nativize_children(node)
        ta, tb = type_of(node.this), type_of(node.expression)
        if ta is not None and tb is not None and ta.name in _INT_TYPES and tb.name in _INT_TYPES:
            return checked_int(node, _wider_int(ta, tb))
        op = _ARITH_OPS.get(type(node), "add")
        if (t := arithmetic_type(op, node.this, node.expression)) is not None:
            if t.name in ("decimal", "numeric") and beyond_max_precision(op, node.this, node.expression):
                return exact_operation(op, node.this, node.expression, t)
            node.meta["ss_type"] = t
            if t.name == "money":
                return checked_money(node)
        elif (
            ta is not None
            and tb is not None
            and ta.name in ("datetime", "smalldatetime")
            and tb.name in _INT_TYPES | {"float", "numeric", "decimal"}
        ):
            raise unsupported("datetime arithmetic with numbers (use DATEADD)")
        return node

    def _stringy(self, node: exp.Expression) -> bool:
        t = type_of(node)
        if t is not None:
            return t.is_string or (t.name == "uniqueidentifier" and not node.meta.get("ss_raw"))
        return isinstance(node, (exp.DPipe, exp.Concat, exp.Upper, exp.Lower, exp.Trim, exp.Substring))

    def _const_to_storage(self, node: exp.Expression, t: SqlType) -> exp.Expression | None:
        """A constant compared with a storage-form column, converted exactly to storage form."""
        if not node.meta or "ss_const" not in node.meta:
            return None
        v = node.meta["ss_const"]
        if v is None:
            return exp.Null()
        st = scalar_to_storage(v, t, self.ctx.dateformat)
        return storage_literal(st, t)
