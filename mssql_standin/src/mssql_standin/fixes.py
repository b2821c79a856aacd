"""The per-node fix-ups of the T-SQL tree, dispatched on the sqlglot node class as sqlglot's Generator
dispatches on TRANSFORMS."""

from __future__ import annotations

import decimal
import re
from collections.abc import Callable
from typing import Any

from sqlglot import exp

from . import variant
from .convert import _raw_choice
from .exactnum import exact_operation
from .numeric import NumericFixes, _as_int
from .results import SqlServerError
from .sqlexpr import (
    _CMP,
    _INT_TYPES,
    _NOCONST,
    _UNIT_TICKS,
    OutCol,
    _concat_type,
    _wider_int,
    checked_int,
    like_regex,
    literal,
    type_of,
)
from .sqltext import _FRACTION_PARTS, unsupported
from .typerules import arithmetic_type, combined_type
from .types import END_TICKS, EXACT, SqlType, make_type, scalar_to_storage, utf16_len
from .utf16text import unit_call


class NodeFixes(NumericFixes):
    """One fix-up per sqlglot node class (FIXES), applied bottom-up by Translator._rw."""

    def _dateadd(self, node: exp.DateAdd) -> exp.Expression:
        """DATEADD keeping 100 ns: whole-tick arithmetic on datetime2/time/datetimeoffset storage."""
        unit = node.text("unit").upper()
        arg = node.this
        t = type_of(arg)
        if not arg.meta.get("ss_raw") or t is None or t.name == "uniqueidentifier":
            self._nativize_children(node)
            node.meta["ss_type"] = t
            return node
        per = _UNIT_TICKS.get(unit)
        n = node.expression
        if per is None:
            # months/years: calendar arithmetic in DuckDB, then the sub-microsecond digit added back
            native = self._native(arg)
            shifted = exp.Add(this=native, expression=exp.Interval(this=n, unit=exp.var(unit)))
            if t.name != "datetime2":
                raise unsupported(f"DATEADD({unit}) on {t.name}")
            out: exp.Expression = exp.Add(
                this=exp.Anonymous(this="__ss_ts_dt2", expressions=[shifted]),
                expression=exp.Mod(this=arg.copy(), expression=exp.Literal.number(10)),
            )
        else:
            delta = exp.Mul(this=exp.Cast(this=n, to=exp.DataType.build("BIGINT")), expression=exp.Literal.number(per))
            if t.name == "datetimeoffset":
                out = exp.Anonymous(this="__ss_dto_add", expressions=[arg, delta])
            elif t.name == "time":
                out = exp.Anonymous(this="__ss_time_add", expressions=[arg, delta])
            else:
                out = exp.Add(this=arg, expression=delta)
        if t.name in ("datetime2", "datetimeoffset"):
            out = _overflow_guard(out, t.name)
        out.meta["ss_type"] = t
        out.meta["ss_raw"] = True
        return out

    def _compare(self, node: exp.Expression) -> exp.Expression:
        by_family = variant.compare(node)  # sql_variant: SQL Server's family rules (variant_order.py)
        if by_family is not None:
            return by_family
        a, b = node.this, node.expression
        ra, rb = bool(a.meta.get("ss_raw")), bool(b.meta.get("ss_raw"))
        ta, tb = type_of(a), type_of(b)
        if ra and rb and ta is not None and tb is not None and ta.name == tb.name:
            if ta.name == "datetimeoffset":
                node.set("this", _utc(a))
                node.set("expression", _utc(b))
            return node
        # a raw column against a constant: the constant in storage form (datetimeoffset compares its UTC instant)
        for raw, t, const, raw_key, const_key in ((ra, ta, b, "this", "expression"), (rb, tb, a, "expression", "this")):
            conv = self._const_to_storage(const, t) if raw and t is not None else None
            if conv is None or t is None:
                continue
            if t.name == "datetimeoffset":
                conv = conv if isinstance(conv, exp.Null) else _utc(conv)
                node.set(raw_key, _utc(node.args[raw_key]))
            node.set(const_key, conv)
            return node
        # ordinary temporal columns compared with SQL Server-format strings
        for mine, other, key in ((a, b, "expression"), (b, a, "this")):
            t = type_of(mine)
            if (
                t is not None
                and t.name in ("datetime", "smalldatetime", "date")
                and other.meta.get("ss_const") is not None
                and isinstance(other.meta.get("ss_const"), str)
            ):
                st = scalar_to_storage(other.meta["ss_const"], t, self.ctx.dateformat)
                node.set(key, literal(st, t))
        ta, tb = type_of(node.this), type_of(node.expression)
        if ta is not None and tb is not None and ta.is_string and tb.is_string:
            # SQL Server compares strings as if the shorter were padded with spaces: 'a ' = 'a'
            for key in ("this", "expression"):
                side = node.args[key]
                if not (
                    side.meta and isinstance(side.meta.get("ss_const"), str) and not side.meta["ss_const"].endswith(" ")
                ):
                    node.set(key, exp.Anonymous(this="rtrim", expressions=[side]))
        self._nativize_children(node)
        return node

    def _like(self, node: exp.Expression) -> exp.Expression:
        """T-SQL LIKE: case-insensitive, and `[abc]` / `[^a-z]` are character classes (a regex here)."""
        pat = node.expression.meta.get("ss_const", _NOCONST) if node.expression.meta else _NOCONST
        self._nativize_children(node)
        if pat is _NOCONST:
            raise unsupported("LIKE with a pattern that is not a constant")
        if not isinstance(pat, str) or "[" not in pat:
            return node
        out: exp.Expression = exp.Anonymous(
            this="regexp_full_match",
            expressions=[node.this, exp.Literal.string(like_regex(pat)), exp.Literal.string("is")],
        )
        if node.args.get("negate"):
            out = exp.Not(this=out)
        return out

    def _fix(self, node: exp.Expression) -> exp.Expression:
        """The fix-up of the most specific class of `node` that has one (FIXES)."""
        return _fix_for(type(node))(self, node)

    def _fix_other(self, node: exp.Expression) -> exp.Expression:
        self._nativize_children(node)
        return node

    def _fix_passthrough(self, node: exp.Expression) -> exp.Expression:
        return node

    def _fix_window(self, node: exp.Window) -> exp.Expression:
        """An aggregate typed by a cast or computed from others (AVG of integers: SUM // COUNT) takes its OVER
        clause inside: each aggregate gets the window, the cast and arithmetic stay outside."""
        inner = node.this
        if isinstance(inner, exp.AggFunc) or not any(isinstance(n, exp.AggFunc) for n in inner.walk()):
            return node
        spec = {k: v for k, v in node.args.items() if k != "this"}

        def windowed(n: exp.Expression) -> exp.Expression:
            if not isinstance(n, exp.AggFunc):
                return n
            return exp.Window(
                this=n.copy(), **{k: v.copy() if isinstance(v, exp.Expression) else v for k, v in spec.items()}
            )

        out = inner.transform(windowed)
        out.meta.update(inner.meta)
        return out

    def _fix_national(self, node: exp.National) -> exp.Expression:
        """N'...' is nvarchar(n) with n in UTF-16 code units: a character outside the BMP (an emoji) counts two."""
        return literal(node.this, SqlType("nvarchar", max(1, utf16_len(node.this))))

    def _fix_literal(self, node: exp.Literal) -> exp.Expression:
        if node.is_string:
            node.meta["ss_type"] = SqlType("varchar", max(1, len(node.this)))
            node.meta["ss_const"] = node.this
            if "\x00" in node.this:
                return literal(node.this, type_of(node))
            return node
        txt = node.this
        if re.fullmatch(r"\d+", txt):
            v = int(txt)
            node.meta["ss_const"] = v
            if v < 2**31:
                node.meta["ss_type"] = make_type("int", [])
                return node
            # "int, bigint, smallint, and tinyint": a larger integer constant is decimal, not bigint
            width = len(str(v))
            if width > 38:
                raise SqlServerError(
                    1007,
                    f"The number '{txt}' is out of the range for numeric representation (maximum precision 38).",
                    severity=15,
                )
            out = exp.Cast(this=node, to=exp.DataType.build(f"DECIMAL({width},0)"))
            out.meta["ss_type"] = make_type("numeric", [str(width), "0"])
            out.meta["ss_const"] = v
            return out
        if re.fullmatch(r"\d*\.\d*", txt):
            d = decimal.Decimal(txt)
            digits = txt.replace(".", "").lstrip("0") or "0"
            scale = len(txt.split(".")[1])
            node.meta["ss_type"] = SqlType("numeric", 0, max(len(digits), scale, 1), scale)
            node.meta["ss_const"] = d
        else:
            node.meta["ss_type"] = SqlType("float", 0, 53)
            node.meta["ss_const"] = float(txt)
        return node

    def _fix_neg(self, node: exp.Neg) -> exp.Expression:
        """-<number literal> stays a constant; any other negation is an ordinary expression."""
        number = node.this.this if isinstance(node.this, exp.Cast) else node.this  # a decimal constant is cast
        if node.this.meta.get("ss_const") is None or not isinstance(number, exp.Literal):
            t = type_of(node.this)
            if t is not None and t.name in ("smallint", "int", "bigint"):  # -(-2147483648) is 8115, as 0 - x
                return checked_int(exp.Sub(this=exp.Literal.number(0), expression=self._native(node.this)), t)
            self._fix_other(node)
            node.meta["ss_type"] = type_of(node.this)  # a negated value keeps its type
            return node
        v = node.this.meta["ss_const"]
        if isinstance(v, (int, float, decimal.Decimal)):
            node.meta["ss_const"] = EXACT.minus(v) if isinstance(v, decimal.Decimal) else -v
            node.meta["ss_type"] = type_of(node.this)
        return node

    def _fix_null(self, node: exp.Null) -> exp.Expression:
        node.meta["ss_const"] = None
        return node

    def _fix_hex(self, node: exp.HexString) -> exp.Expression:
        raw = bytes.fromhex(node.this if len(node.this) % 2 == 0 else "0" + node.this)
        return literal(raw, SqlType("varbinary", max(1, len(raw))))

    def _fix_add(self, node: exp.Add) -> exp.Expression:
        """+ on strings is concatenation (constants folded, so N'a' + NCHAR(0) + N'b' stays a literal)."""
        self._numeric_operands(node)
        if not (self._stringy(node.this) or self._stringy(node.expression)):
            return self._arith(node)
        ctype = _concat_type(type_of(node.this), type_of(node.expression))
        ca = node.this.meta.get("ss_const", _NOCONST) if node.this.meta else _NOCONST
        cb = node.expression.meta.get("ss_const", _NOCONST) if node.expression.meta else _NOCONST
        if isinstance(ca, str) and isinstance(cb, str):
            return literal(ca + cb, ctype)
        a, b = self._native(node.this), self._native(node.expression)
        out = exp.DPipe(this=a, expression=b, safe=False)
        out.meta["ss_type"] = ctype
        return out

    def _fix_arith(self, node: exp.Expression) -> exp.Expression:
        self._numeric_operands(node)
        return self._arith(node)

    def _fix_div(self, node: exp.Div) -> exp.Expression:
        self._numeric_operands(node)
        a, b = self._native(node.this), self._native(node.expression)
        ta, tb = type_of(a), type_of(b)
        guard = exp.Anonymous(this="__ss_nz", expressions=[b])
        if ta is not None and tb is not None and ta.name in _INT_TYPES and tb.name in _INT_TYPES:
            return checked_int(exp.IntDiv(this=a, expression=guard), _wider_int(ta, tb))
        div = exp.Div(this=a, expression=guard)
        t = arithmetic_type("div", a, b)
        if t is None:
            return div
        if t.name in ("decimal", "numeric", "money"):
            return exact_operation("div", a, guard, t)
        div.meta["ss_type"] = t
        return div

    def _fix_extract(self, node: exp.Extract) -> exp.Expression:
        part = node.text("this").upper()
        if part in _FRACTION_PARTS:
            t = type_of(node.expression)
            if t is not None and t.name == "date":
                name = {1000: "millisecond", 1_000_000: "microsecond"}.get(_FRACTION_PARTS[part], "nanosecond")
                raise SqlServerError(
                    9810, f"The datepart {name} is not supported by date function datepart for data type date."
                )
            return self._fraction_part(node.expression, _FRACTION_PARTS[part])
        self._nativize_children(node)
        if part in ("WEEK", "WK", "WW", "TZOFFSET", "TZ"):
            raise unsupported(f"DATEPART({part.lower()})")
        body: exp.Expression = node
        if part in ("DAYOFWEEK", "WEEKDAY", "DW"):
            # SQL Server numbers weekdays from SET DATEFIRST 7: Sunday = 1
            body = exp.Add(this=node, expression=exp.Literal.number(1))
        return _as_int(body, "int")

    def _fix_date_part(self, node: exp.Expression) -> exp.Expression:
        """YEAR, MONTH, DAY, DATEDIFF (DATEDIFF_BIG: bigint)."""
        self._nativize_children(node)
        return _as_int(node, "bigint" if isinstance(node, exp.DateDiff) and node.args.get("big_int") else "int")

    def _fix_escape(self, node: exp.Escape) -> exp.Expression:
        raise unsupported("LIKE ... ESCAPE")

    def _fix_between(self, node: exp.Between) -> exp.Expression:
        t = type_of(node.this)
        if not (node.this.meta.get("ss_raw") and t is not None):
            return self._fix_other(node)
        for k in ("low", "high"):
            conv = self._const_to_storage(node.args[k], t)
            if conv is None:
                node.set("this", self._native(node.this))
                node.set(k, self._native(node.args[k]))
                return node
            node.set(k, conv)
        return node

    def _fix_in(self, node: exp.In) -> exp.Expression:
        by_family = variant.compare_in(node)  # sql_variant: SQL Server's family rules
        if by_family is not None:
            return by_family
        t = type_of(node.this)
        if node.this.meta.get("ss_raw") and t is not None and node.expressions:
            convs = [self._const_to_storage(e, t) for e in node.expressions]
            if all(c is not None for c in convs):
                node.set("expressions", convs)
                return node
        if node.args.get("query") is not None and node.this.meta.get("ss_raw"):
            return node
        return self._fix_other(node)

    def _fix_count(self, node: exp.Count) -> exp.Expression:
        big = node.args.get("big_int")
        node.set("big_int", None)
        node.meta["ss_type"] = make_type("bigint" if big else "int", [])
        return node if big else _as_int(node, "int")

    def _fix_min_max(self, node: exp.Expression) -> exp.Expression:
        node.meta["ss_type"] = type_of(node.this)
        node.meta["ss_raw"] = node.this.meta.get("ss_raw", False)
        if isinstance(node.this.meta.get("ss_col"), OutCol):
            c = node.this.meta["ss_col"]
            node.meta["ss_col"] = OutCol("", c.type, True, raw=c.is_raw)
        return node

    def _fix_length(self, node: exp.Length) -> exp.Expression:
        return self._len(node.this)

    def _fix_coalesce(self, node: exp.Coalesce) -> exp.Expression:
        """COALESCE is a CASE: the type of highest precedence among its arguments."""
        if _raw_choice(node, [node.this, *node.expressions]):
            return node
        self._nativize_children(node)
        node.meta["ss_type"] = combined_type([node.this, *node.expressions])
        return node

    def _fix_uuid(self, node: exp.Uuid) -> exp.Expression:
        out = exp.Anonymous(this="__ss_newid", expressions=[])
        out.meta["ss_type"] = make_type("uniqueidentifier", [])
        out.meta["ss_raw"] = True
        return out

    def _fix_now(self, node: exp.Expression) -> exp.Expression:
        return self._now("getdate")

    def _fix_paren(self, node: exp.Paren) -> exp.Expression:
        node.meta["ss_type"] = type_of(node.this)
        if node.this.meta.get("ss_raw"):
            node.meta["ss_raw"] = True
        if "ss_const" in (node.this.meta or {}):
            node.meta["ss_const"] = node.this.meta["ss_const"]
        return node

    def _fix_alias(self, node: exp.Alias) -> exp.Expression:
        for k in ("ss_type", "ss_col", "ss_raw"):
            if node.this.meta and k in node.this.meta:
                node.meta[k] = node.this.meta[k]
        return node

    def _fix_case(self, node: exp.Case) -> exp.Expression:
        ifs = node.args.get("ifs") or []
        if _raw_choice(node, [i.args["true"] for i in ifs] + [node.args.get("default")]):
            return node
        for i in ifs:
            self._nativize_children(i)
        self._nativize_children(node)
        node.meta["ss_type"] = combined_type([i.args["true"] for i in ifs] + [node.args.get("default") or exp.Null()])
        return node

    def _fix_if(self, node: exp.If) -> exp.Expression:
        if isinstance(node.parent, exp.Case):
            return node  # a WHEN branch: the CASE decides the form of its values
        if _raw_choice(node, [node.args.get("true"), node.args.get("false")]):
            return node
        self._fix_other(node)
        node.meta["ss_type"] = combined_type(
            [node.args.get("true") or exp.Null(), node.args.get("false") or exp.Null()]
        )
        return node

    def _fix_substring(self, node: exp.Substring) -> exp.Expression:
        """SUBSTRING of an nvarchar counts UTF-16 units, as SQL Server does (utf16text.py)."""
        self._nativize_children(node)
        t = type_of(node.this)
        if t is not None and t.is_unicode and node.args.get("start") and node.args.get("length"):
            return unit_call("substring", [node.this, node.args["start"], node.args["length"]], t)
        self._known_func(node)
        return node

    def _fix_func(self, node: exp.Expression) -> exp.Expression:
        self._nativize_children(node)
        self._known_func(node)
        return node


def _utc(node: exp.Expression) -> exp.Expression:
    """The UTC instant of a datetimeoffset in storage form."""
    return exp.Dot(this=node, expression=exp.to_identifier("utc"))


def _overflow_guard(ticks: exp.Expression, type_name: str) -> exp.Expression:
    """DATEADD's result checked against the year range (its UTC instant for a datetimeoffset): error 517."""
    utc = _utc(exp.Paren(this=ticks)) if type_name == "datetimeoffset" else exp.Paren(this=ticks)
    outside = exp.Or(
        this=exp.LT(this=utc, expression=exp.Literal.number(0)),
        expression=exp.GTE(this=utc.copy(), expression=exp.Literal.number(END_TICKS)),
    )
    msg = f"__ss_e517: Adding a value to a '{type_name}' column caused an overflow."
    fail = exp.Anonymous(this="error", expressions=[exp.Literal.string(msg)])
    return exp.Case(ifs=[exp.If(this=outside, true=fail)], default=ticks)


Fix = Callable[[NodeFixes, Any], exp.Expression]

# Nodes whose own form is already right; Paren and Alias only carry their child's type up.
_PASSTHROUGH = (
    exp.Is, exp.Not, exp.And, exp.Or, exp.Distinct, exp.Group, exp.Order, exp.Where, exp.Having, exp.Limit,
    exp.Offset, exp.Fetch, exp.Star, exp.Identifier, exp.TableAlias, exp.DataType, exp.Var, exp.Boolean, exp.Tuple,
    exp.Exists, exp.Lambda, exp.Interval, exp.Table, exp.From, exp.Join, exp.PartitionedByProperty, exp.WindowSpec,
)  # fmt: skip

# The fix-up per sqlglot node class, in order: a node takes the first entry it is an instance of (sqlglot's
# classes inherit from several bases, so the order of entries, not the MRO, decides), else _fix_other.
FIXES: dict[type, Fix] = {
    exp.National: NodeFixes._fix_national,
    exp.Literal: NodeFixes._fix_literal,
    exp.Neg: NodeFixes._fix_neg,
    exp.Null: NodeFixes._fix_null,
    exp.HexString: NodeFixes._fix_hex,
    exp.Parameter: NodeFixes._parameter,
    exp.Anonymous: NodeFixes._function,
    exp.Cast: NodeFixes._cast,
    exp.TryCast: NodeFixes._cast,
    exp.Add: NodeFixes._fix_add,
    exp.Sub: NodeFixes._fix_arith,
    exp.Mul: NodeFixes._fix_arith,
    exp.Mod: NodeFixes._fix_arith,
    exp.Div: NodeFixes._fix_div,
    **dict.fromkeys(_CMP, NodeFixes._compare),
    exp.DateAdd: NodeFixes._dateadd,
    exp.Extract: NodeFixes._fix_extract,
    exp.Year: NodeFixes._fix_date_part,
    exp.Month: NodeFixes._fix_date_part,
    exp.Day: NodeFixes._fix_date_part,
    exp.DateDiff: NodeFixes._fix_date_part,
    exp.Escape: NodeFixes._fix_escape,
    exp.Like: NodeFixes._like,
    exp.ILike: NodeFixes._like,
    exp.Between: NodeFixes._fix_between,
    exp.In: NodeFixes._fix_in,
    exp.Count: NodeFixes._fix_count,
    exp.Min: NodeFixes._fix_min_max,
    exp.Max: NodeFixes._fix_min_max,
    exp.Sum: NodeFixes._fix_sum,
    exp.Avg: NodeFixes._fix_avg,
    exp.Length: NodeFixes._fix_length,
    **dict.fromkeys((exp.Abs, exp.Ceil, exp.Floor, exp.Round, exp.Sign), NodeFixes._fix_math),
    exp.Coalesce: NodeFixes._fix_coalesce,
    exp.Uuid: NodeFixes._fix_uuid,
    exp.CurrentTimestamp: NodeFixes._fix_now,
    exp.CurrentTimestampLTZ: NodeFixes._fix_now,
    exp.CurrentDate: NodeFixes._fix_now,
    exp.Window: NodeFixes._fix_window,
    exp.Ordered: NodeFixes._fix_passthrough,
    exp.Paren: NodeFixes._fix_paren,
    exp.Alias: NodeFixes._fix_alias,
    **dict.fromkeys(_PASSTHROUGH, NodeFixes._fix_passthrough),
    exp.Case: NodeFixes._fix_case,
    exp.Substring: NodeFixes._fix_substring,
    exp.If: NodeFixes._fix_if,
    exp.Func: NodeFixes._fix_func,
}
_FIX_BY_CLASS: dict[type, Fix] = {}


def _fix_for(node_class: type) -> Fix:
    fix = _FIX_BY_CLASS.get(node_class)
    if fix is None:
        fix = next((f for c, f in FIXES.items() if issubclass(node_class, c)), NodeFixes._fix_other)
        _FIX_BY_CLASS[node_class] = fix
    return fix
