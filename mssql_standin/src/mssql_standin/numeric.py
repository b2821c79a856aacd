"""Numbers as SQL Server types them: SUM and AVG, the math functions that keep their argument's type (ABS,
CEILING, FLOOR, ROUND, SIGN), and a string operand of arithmetic converted to the number's type (data type
precedence puts every number above every string, so '1' + 1 is 2, not '11')."""

from __future__ import annotations

from sqlglot import exp

from .calls import FunctionCalls
from .results import SqlServerError
from .sqlexpr import _INT_TYPES, checked_money, type_of
from .typerules import NUMBERS, avg_type, sum_type
from .types import SqlType, make_type


class NumericFixes(FunctionCalls):
    """SUM, AVG, ABS/CEILING/FLOOR/ROUND/SIGN, and string operands of arithmetic."""

    def _numeric_operands(self, node: exp.Expression) -> None:
        """A string operand next to a number is converted to that number's type, as SQL Server does."""
        for side, other in (("this", "expression"), ("expression", "this")):
            mine, theirs = type_of(node.args[side]), type_of(node.args[other])
            if mine is not None and mine.is_string and theirs is not None and theirs.name in NUMBERS:
                node.set(side, self._convert_to(node.args[side], theirs, False, None))

    def _fix_sum(self, node: exp.Sum) -> exp.Expression:
        """SUM as SQL Server types it: int (bigint for bigint), decimal(38, s), money, float."""
        t = _aggregate_operand(node, "sum")
        self._nativize_children(node)
        st = sum_type(t) if t is not None else None
        if st is None or t is None:
            return node
        if t.name in _INT_TYPES:
            return _as_int(node, st.name)
        return _typed_cast(node, st)

    def _fix_avg(self, node: exp.Avg) -> exp.Expression:
        """AVG of integers is an integer (the sum divided with truncation); of decimal(p, s) decimal(38,
        max(s, 6)); of money money; of float float."""
        t = _aggregate_operand(node, "avg")
        self._nativize_children(node)
        if t is None:
            return node
        if t.name not in _INT_TYPES:
            at = avg_type(t)
            return node if at is None else _typed_cast(node, at)
        # the sum is of the argument's type, so it overflows as SQL Server's does (AVG of a big int column)
        s = _as_int(exp.Sum(this=node.this.copy()), "bigint" if t.name == "bigint" else "int")
        c = exp.Count(this=node.this.copy())
        quotient = exp.IntDiv(this=s, expression=exp.Anonymous(this="nullif", expressions=[c, exp.Literal.number(0)]))
        return _as_int(quotient, "bigint" if t.name == "bigint" else "int")

    def _fix_math(self, node: exp.Expression) -> exp.Expression:
        """ABS and ROUND keep their argument's type; CEILING, FLOOR and SIGN too, with a decimal's scale 0."""
        self._nativize_children(node)
        t = type_of(node.this)
        if t is None or t.name not in NUMBERS:
            return node
        if t.name in ("decimal", "numeric") and isinstance(node, (exp.Ceil, exp.Floor, exp.Sign)):
            t = make_type(t.name, [str(t.precision), "0"])
        node.meta["ss_type"] = t
        return node


def _aggregate_operand(node: exp.Expression, operator: str) -> SqlType | None:
    """The type SUM/AVG adds up; a string, date, bit or binary is error 8117, as in SQL Server."""
    t = type_of(node.this)
    if t is not None and t.name not in NUMBERS - {"bit"}:
        raise SqlServerError(8117, f"Operand data type {t.name} is invalid for {operator} operator.")
    return t


def _typed_cast(node: exp.Expression, t: SqlType) -> exp.Expression:
    """`node` cast in DuckDB to the storage of t (decimal, money, float), typed t."""
    duck = {"money": "DECIMAL(19,4)", "float": "DOUBLE", "real": "FLOAT"}.get(
        t.name, f"DECIMAL({t.precision},{t.scale})"
    )
    out = exp.Cast(this=checked_money(node) if t.name == "money" else node, to=exp.DataType.build(duck))
    out.meta["ss_type"] = t
    return out


def _as_int(node: exp.Expression, type_name: str) -> exp.Expression:
    """`node` cast to DuckDB's INTEGER or BIGINT, typed as SQL Server's int or bigint."""
    out = exp.Cast(this=node, to=exp.DataType.build("BIGINT" if type_name == "bigint" else "INTEGER"))
    out.meta["ss_type"] = make_type(type_name, [])
    return out
