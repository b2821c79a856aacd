"""Decimal and money arithmetic computed exactly, as SQL Server computes it, where DuckDB's own would not:
DuckDB divides decimals in DOUBLE (wrong beyond 15-17 digits) and keeps its own precision rules elsewhere (an
intermediate DECIMAL(38, s1 + s2) overflows where SQL Server cuts the scale; a sum past 38 digits is not refused).

The operands travel as their exact text to one Python function that works in fractions, then the result is cut
to the type "Precision, scale, and length (Transact-SQL)" gives: a quotient truncated (SQL Server answers
CAST(1.67574 AS decimal(38,10)) / CAST(10000 AS decimal(38,10)) with 0.000167, $100 / $339 with 0.2949), any
other result rounded half away from zero; more integral digits than the type holds is error 8115."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import duckdb
import pyarrow as pa
from sqlglot import exp

from .typerules import node_type
from .types import SqlType

#: the DuckDB function exact_operation calls
EXACT_UDF = "__ss_exact_arith"

_OPERATORS = ("add", "sub", "mul", "div", "mod")


def exact_operation(op: str, a: exp.Expression, b: exp.Expression, t: SqlType) -> exp.Expression:
    """a <op> b (op: add, sub, mul, div, mod) with the decimal or money result type t, exactly."""
    p, scale = (19, 4) if t.name == "money" else (t.precision, t.scale)
    text = [exp.Cast(this=_exact_operand(x), to=exp.DataType.build("VARCHAR")) for x in (a, b)]
    # an overflow names money, or numeric for decimal and numeric alike, as SQL Server's error 8115 does
    shape = [
        exp.Literal.string(op),
        exp.Literal.number(p),
        exp.Literal.number(scale),
        exp.Literal.string("money" if t.name == "money" else "numeric"),
    ]
    out = exp.Cast(
        this=exp.Anonymous(this=EXACT_UDF, expressions=[*text, *shape]), to=exp.DataType.build(f"DECIMAL({p},{scale})")
    )
    out.meta["ss_type"] = t
    return out


def _exact_operand(x: exp.Expression) -> exp.Expression:
    """A bit operand as the integer it stands for (DuckDB spells a BOOLEAN as 'true')."""
    t = node_type(x)
    return exp.Cast(this=x, to=exp.DataType.build("INTEGER")) if t is not None and t.name == "bit" else x


def exact_value(op: str, x: str, y: str, precision: int, scale: int, type_name: str) -> str:
    """One result as text: computed in fractions, cut to `scale` places, checked against `precision` digits."""
    a, b = Fraction(Decimal(x)), Fraction(Decimal(y))
    exact = {"add": a + b, "sub": a - b, "mul": a * b, "div": a / b}.get(op)
    if exact is None:  # mod: the remainder takes the dividend's sign
        exact = a - b * int(a / b)
    scaled = exact * 10**scale
    magnitude = abs(scaled.numerator)
    if op == "div":
        units = magnitude // scaled.denominator
    else:  # half away from zero
        units = (2 * magnitude + scaled.denominator) // (2 * scaled.denominator)
    if len(str(units)) > precision or (type_name == "money" and units > 2**63 - (scaled >= 0)):  # 8-byte money
        raise ValueError(f"__ss_e8115: Arithmetic overflow error converting expression to data type {type_name}.")
    return str(Decimal(-units if scaled < 0 else units).scaleb(-scale))


def _udf_exact(a: pa.Array, b: pa.Array, op: pa.Array, p: pa.Array, s: pa.Array, name: pa.Array) -> pa.Array:
    rows = zip(*(c.to_pylist() for c in (a, b, op, p, s, name)), strict=True)
    out = [None if x is None or y is None else exact_value(op, x, y, p, s, n) for x, y, op, p, s, n in rows]
    return pa.array(out, pa.string())


def register_exact_udfs(con: duckdb.DuckDBPyConnection) -> None:
    v, i = duckdb.sqltypes.VARCHAR, duckdb.sqltypes.INTEGER
    udf: Any = con.create_function  # pyarrow UDFs are not in DuckDB's stub overloads
    udf(EXACT_UDF, _udf_exact, [v, v, v, i, i, v], v, type="arrow")
