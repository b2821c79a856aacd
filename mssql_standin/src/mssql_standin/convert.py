"""CAST/CONVERT as SQL Server does them: styles, rounding, out-of-range errors, and the storage forms of
datetime2, time, datetimeoffset and uniqueidentifier."""

from __future__ import annotations

from sqlglot import exp

from . import clrtypes, variant_cast
from .binconv import (
    BINARY_SOURCES,
    INT_BYTES,
    bytes_cast,
    bytes_int,
    const_bytes_or_text,
    hex_convertible,
    hex_style,
    string_prefix,
)
from .functions import utf16_prefix
from .results import SqlServerError
from .sqlexpr import _DAY_1900, _NOCONST, TranslatorBase, literal, storage_literal, type_of
from .sqltext import SPECIAL_STORAGE, decode_type, syntax_error, unsupported
from .types import (
    CLR_TYPES,
    TICKS_PER_DAY,
    TICKS_PER_SECOND,
    SqlType,
    out_of_range,
    parse_type,
    scalar_to_storage,
)


def _raw_choice(node: exp.Expression, values: list[exp.Expression | None]) -> bool:
    """CASE/IIF/COALESCE/ISNULL whose every value is in the same storage form (or NULL) stays in it, so a
    datetime2 keeps its 100 ns; node is marked raw with the widest scale. False: nativize as usual."""
    t: SqlType | None = None
    for v in values:
        if v is None or isinstance(v, exp.Null):
            continue
        vt = type_of(v)
        if not v.meta.get("ss_raw") or vt is None or vt.name not in SPECIAL_STORAGE:
            return False
        if t is not None and vt.name != t.name:
            return False
        if t is None or vt.scale > t.scale:
            t = vt
    if t is None:
        return False
    node.meta["ss_type"] = t
    node.meta["ss_raw"] = True
    return True


def _raw_temporal_style(arg: exp.Expression, src: SqlType, style: int) -> exp.Expression:
    """CONVERT(varchar, datetime2/time, style) from the 100 ns storage: styles 21/121 show every fractional
    digit of the declared scale, 126/127 too (with a 'T', and no fraction when it is zero); 20/120/8/108 none."""
    is_time = src.name == "time"
    fn = "__ss_time_str" if is_time else "__ss_dt2_str"
    digits = src.scale if style in (21, 121, 126, 127) else 0
    text: exp.Expression = exp.Anonymous(this=fn, expressions=[arg, exp.Literal.number(digits)])
    if is_time and style in (20, 120):
        raise unsupported(f"CONVERT style {style} of time")
    if not is_time and style in (8, 24, 108):
        text = exp.Anonymous(this="__ss_time_str", expressions=[
            exp.Mod(this=exp.Paren(this=arg), expression=exp.Literal.number(TICKS_PER_DAY)), exp.Literal.number(0)
        ])  # fmt: skip
    if style in (126, 127) and digits:
        whole = exp.Anonymous(this=fn, expressions=[arg, exp.Literal.number(0)])
        zero = exp.EQ(
            this=exp.Mod(this=exp.Paren(this=arg), expression=exp.Literal.number(TICKS_PER_SECOND)),
            expression=exp.Literal.number(0),
        )
        text = exp.If(this=zero, true=whole, false=text)
    if style in (126, 127) and not is_time:
        text = exp.Anonymous(this="replace", expressions=[text, exp.Literal.string(" "), exp.Literal.string("T")])
    return text


def _concat(*parts: exp.Expression) -> exp.Expression:
    out = parts[0]
    for part in parts[1:]:
        out = exp.DPipe(this=out, expression=part, safe=False)
    return out


def _offset_text(offset_min: exp.Expression) -> exp.Expression:
    """'+hh:mm' / '-hh:mm' of a datetimeoffset's offset in minutes."""
    minutes = exp.Anonymous(this="abs", expressions=[exp.Cast(this=offset_min, to=exp.DataType.build("INTEGER"))])

    def two(v: exp.Expression) -> exp.Expression:
        text = exp.Cast(this=v, to=exp.DataType.build("VARCHAR"))
        return exp.Anonymous(this="lpad", expressions=[text, exp.Literal.number(2), exp.Literal.string("0")])

    sign = exp.If(
        this=exp.LT(this=offset_min, expression=exp.Literal.number(0)),
        true=exp.Literal.string("-"),
        false=exp.Literal.string("+"),
    )
    hours = two(exp.IntDiv(this=minutes, expression=exp.Literal.number(60)))
    rest = two(exp.Mod(this=minutes, expression=exp.Literal.number(60)))
    return _concat(sign, hours, exp.Literal.string(":"), rest)


def _raw_offset_style(arg: exp.Expression, src: SqlType, style: int) -> exp.Expression:
    """CONVERT(varchar, datetimeoffset, 21/121/126/127) from the 100 ns storage: the local date and time with every
    fractional digit of the declared scale (126/127: a 'T', no fraction when it is zero), then the offset
    (' +hh:mm' for 21/121, '+hh:mm' for 126, and 127 writes a zero offset as 'Z')."""
    offset = exp.Dot(this=exp.Paren(this=arg), expression=exp.to_identifier("offset_min"))
    local = exp.Add(
        this=exp.Dot(this=exp.Paren(this=arg), expression=exp.to_identifier("utc")),
        expression=exp.Mul(
            this=exp.Cast(this=offset, to=exp.DataType.build("BIGINT")), expression=exp.Literal.number(600_000_000)
        ),
    )
    text = _raw_temporal_style(local, SqlType("datetime2", scale=src.scale), style)
    zone = _offset_text(offset)
    if style in (21, 121):
        return _concat(text, exp.Literal.string(" "), zone)
    if style == 127:
        zone = exp.If(
            this=exp.EQ(this=offset, expression=exp.Literal.number(0)), true=exp.Literal.string("Z"), false=zone
        )
    return _concat(text, zone)


_NUMBER_STYLES = {("float", 3): "%.17G", ("real", 3): "%.9G"}
"""CONVERT styles of float and real to text: style 3 always has enough digits to read the same value back
(SQL Server 2016 and later)."""


def _number_style(native: exp.Expression, src: SqlType, style: int) -> exp.Expression | None:
    """CONVERT(varchar, float/real, 3) and CONVERT(varchar, money/smallmoney, 2) (four decimals, no commas);
    None for the other styles."""
    fmt = _NUMBER_STYLES.get((src.name, style))
    if fmt is not None:
        return exp.Anonymous(this="printf", expressions=[exp.Literal.string(fmt), native])
    if src.name in ("money", "smallmoney") and style == 2:
        as_decimal = exp.Cast(this=native, to=exp.DataType.build("DECIMAL(19,4)"))
        return exp.Cast(this=as_decimal, to=exp.DataType.build("VARCHAR"))
    return None


def _raw_temporal_cast(arg: exp.Expression, src: SqlType, t: SqlType) -> exp.Expression:
    """datetime2/time/datetimeoffset to another of them, on the 100 ns storage (DuckDB's own types would
    drop the last digit). A datetimeoffset converts by its local time; a time gets the date 1900-01-01."""

    def num(v: int) -> exp.Expression:
        return exp.Literal.number(v)

    unit = num(10 ** (7 - t.scale))
    local: exp.Expression
    if src.name == "datetimeoffset":
        local = exp.Add(
            this=exp.Dot(this=exp.Paren(this=arg), expression=exp.to_identifier("utc")),
            expression=exp.Mul(
                this=exp.Cast(
                    this=exp.Dot(this=exp.Paren(this=arg), expression=exp.to_identifier("offset_min")),
                    to=exp.DataType.build("BIGINT"),
                ),
                expression=num(600_000_000),
            ),
        )
    elif src.name == "time":
        local = exp.Add(this=exp.Paren(this=arg), expression=num(_DAY_1900 * TICKS_PER_DAY))
    else:
        local = arg
    if t.name == "time":
        tod = exp.Mod(this=exp.Paren(this=local), expression=num(TICKS_PER_DAY))
        rounded = exp.Anonymous(this="__ss_round_ticks", expressions=[tod, unit])
        return exp.Mod(this=rounded, expression=num(TICKS_PER_DAY))
    ticks = _round_dt2(exp.Paren(this=local), unit, src.name)
    if t.name == "datetime2":
        return ticks
    return exp.Struct(
        expressions=[
            exp.PropertyEQ(this=exp.to_identifier("utc"), expression=ticks),
            exp.PropertyEQ(
                this=exp.to_identifier("offset_min"),
                expression=exp.Cast(this=num(0), to=exp.DataType.build("SMALLINT")),
            ),
        ]
    )


def _round_dt2(ticks: exp.Expression, unit: exp.Expression, src: str) -> exp.Expression:
    """datetime2 ticks rounded to a coarser unit; reaching the year 10000 is error 242, as in SQL Server."""
    msg = f"__ss_242: The conversion of a {src} data type to a datetime2 data type resulted in an out-of-range value."
    return exp.Anonymous(this="__ss_round_dt2", expressions=[ticks, unit, exp.Literal.string(msg)])


def _temporal_text(arg: exp.Expression, src: SqlType) -> exp.Expression:
    """CAST(<temporal or money> AS varchar) as SQL Server writes it (styles 0 and 121)."""
    n = src.name
    if n == "datetime2":
        return exp.Anonymous(this="__ss_dt2_str", expressions=[arg, exp.Literal.number(src.scale)])
    if n == "time":
        return exp.Anonymous(this="__ss_time_str", expressions=[arg, exp.Literal.number(src.scale)])
    if n == "datetimeoffset":
        return exp.Anonymous(this="__ss_dto_str", expressions=[arg, exp.Literal.number(src.scale)])
    if n in ("datetime", "smalldatetime"):
        return exp.Anonymous(this="__ss_dt_str", expressions=[arg])
    if n == "date":
        return exp.Anonymous(this="strftime", expressions=[arg, exp.Literal.string("%Y-%m-%d")])
    return exp.Cast(this=exp.Cast(this=arg, to=exp.DataType.build("DECIMAL(19,2)")), to=exp.DataType.build("VARCHAR"))


def _styled_text(
    arg: exp.Expression, native: exp.Expression, src: SqlType | None, t: SqlType, style: object
) -> exp.Expression | None:
    """CONVERT(<string type>, value, style) for the styles computed here from the storage forms: datetime2/time
    (20/120, 21/121, 126/127, 8/24/108), datetimeoffset (21/121, 126/127), float/real 3 and money 2; None for
    every other conversion."""
    if style is None or src is None or not t.is_string:
        return None
    code: int = int(style)  # type: ignore[call-overload]
    raw = bool(arg.meta.get("ss_raw"))
    out: exp.Expression | None = None
    if raw and src.name in ("datetime2", "time") and code in (20, 120, 21, 121, 126, 127, 8, 24, 108):
        out = _raw_temporal_style(arg, src, code)
    elif raw and src.name == "datetimeoffset" and code in (21, 121, 126, 127):
        out = _raw_offset_style(arg, src, code)
    elif (numbered := _number_style(native, src, code)) is not None:
        return string_prefix(numbered, t) if t.length > 0 else numbered
    if out is not None and t.length > 0:
        out = exp.Anonymous(this="left", expressions=[out, exp.Literal.number(t.length)])
    return out


class Conversions(TranslatorBase):
    """CAST, CONVERT and TRY_CONVERT with SQL Server's styles, ranges and errors."""

    def _cast(self, node: exp.Expression) -> exp.Expression:
        to = node.args["to"]
        tname = to.this if isinstance(to.this, str) else to.args.get("kind") or to.sql("tsql")
        t = decode_type(str(tname)) if isinstance(tname, str) else None
        if t is None:
            try:
                t = parse_type(to.sql("tsql"))
            except SqlServerError:
                raise unsupported("CAST to " + to.sql("tsql")) from None
        return self._convert_to(node.this, t, isinstance(node, exp.TryCast), None)

    def _to_storage_form(self, native: exp.Expression, src: SqlType | None, t: SqlType, try_: bool) -> exp.Expression:
        """A DuckDB-native value converted to the storage form of datetime2, time, datetimeoffset or
        uniqueidentifier (a string read as datetimeoffset by the literal parser)."""
        n = t.name
        if n == "datetimeoffset" and src is not None and src.is_string:
            return self._text_dto(native, t, try_)
        if n in ("datetime2", "time") and src is not None and src.is_string:
            return self._text_ticks(native, t, try_)
        fn = {
            "datetime2": "__ss_ts_dt2",
            "time": "__ss_t_time",
            "datetimeoffset": "__ss_tz_dto",
            "uniqueidentifier": "__ss_guid_key",
        }[n]
        duck = {"datetime2": "TIMESTAMP", "time": "TIME", "datetimeoffset": "TIMESTAMPTZ", "uniqueidentifier": "UUID"}[
            n
        ]
        cast_cls = exp.TryCast if try_ else exp.Cast
        out: exp.Expression = exp.Anonymous(
            this=fn, expressions=[cast_cls(this=native, to=exp.DataType.build(duck, dialect="duckdb"))]
        )
        unit = exp.Literal.number(10 ** (7 - t.scale))
        if n == "datetime2":
            return _round_dt2(out, unit, src.name if src else "varchar")
        if n == "time":
            return exp.Anonymous(this="__ss_round_ticks", expressions=[out, unit])
        return out

    def _text_dto(self, text: exp.Expression, t: SqlType, try_: bool) -> exp.Expression:
        """A string read as datetimeoffset by the same parser as literals (its offset kept, its UTC range
        checked): DuckDB's TIMESTAMPTZ knows no '+01:00'."""
        return exp.Anonymous(
            this="__ss_text_dto",
            expressions=[
                exp.Cast(this=text, to=exp.DataType.build("VARCHAR")),
                exp.Literal.string(self.ctx.dateformat),
                exp.Literal.number(t.scale),
                exp.Boolean(this=try_),
            ],
        )

    def _text_ticks(self, text: exp.Expression, t: SqlType, try_: bool) -> exp.Expression:
        """A string read as datetime2/time by the same parser as literals: all seven fractional digits reach the
        100 ns storage (through DuckDB's TIMESTAMP the seventh would be lost)."""
        return exp.Anonymous(
            this="__ss_text_ticks",
            expressions=[
                exp.Cast(this=text, to=exp.DataType.build("VARCHAR")),
                exp.Literal.string(self.ctx.dateformat),
                exp.Literal.string(str(t)),
                exp.Boolean(this=try_),
            ],
        )

    def _convert(self, args: list[exp.Expression], try_: bool) -> exp.Expression:
        target = args[0]
        t = decode_type(target.name) if isinstance(target, exp.Column) else None
        if t is None:
            raise syntax_error(target.sql("tsql"))
        style = args[2].meta.get("ss_const") if len(args) > 2 and args[2].meta else None
        return self._convert_to(args[1], t, try_, style)

    def _variant_or_clr(
        self, arg: exp.Expression, src: SqlType | None, t: SqlType, try_: bool, style: object, const: bool
    ) -> exp.Expression | None:
        """CASTs from sql_variant (the base value, through its text), to sql_variant (the source type kept as base
        type) and from CLR types to text (ToString()); None for every other CAST."""
        if src is None:
            return None
        if src.name == "sql_variant" and not const and t.name != "sql_variant":
            value = variant_cast.as_text(arg) if t.is_string else variant_cast.as_value(arg, t)
            return self._convert_to(value, t, try_, style)
        if t.name == "sql_variant" and src.name != "sql_variant":
            held = variant_cast.cast_constant(arg)  # the value keeps its own type as base type
            return held if held is not None else variant_cast.cast_expression(arg, src)
        if src.name in CLR_TYPES and t.is_string:
            return self._convert_to(clrtypes.as_text(arg, src.name), t, try_, style)  # ToString(): '/1/2/', WKT
        return None

    def _convert_to(self, arg: exp.Expression, t: SqlType, try_: bool, style: object) -> exp.Expression:
        body: exp.Expression
        src = type_of(arg)
        const = arg.meta.get("ss_const", _NOCONST) if arg.meta else _NOCONST
        special = self._variant_or_clr(arg, src, t, try_, style, const is not _NOCONST)
        if special is not None:
            return special
        if (
            const is not _NOCONST
            and not (src is not None and src.name in SPECIAL_STORAGE)
            and style in (None, 0, 120, 121, 126, 127, 23, 20)
        ):
            if isinstance(const, str) and style is not None and t.name in ("datetime", "datetime2", "date"):
                const = const.replace("T", " ")
            const = const_bytes_or_text(const, src, t)
            try:
                st = scalar_to_storage(const, t, self.ctx.dateformat)
            except SqlServerError as e:
                if try_:
                    return literal(None, t)
                if e.number == 242 and src is not None and t.name == "datetime2":
                    raise out_of_range(src.name, t.name) from None
                raise
            if t.is_string and isinstance(st, str) and t.length > 0:
                st = utf16_prefix(st, t.length) if t.is_unicode else st[: t.length]
            out = storage_literal(st, t) if t.name in SPECIAL_STORAGE else literal(st, t)
            out.meta["ss_type"] = t
            out.meta["ss_raw"] = t.name in SPECIAL_STORAGE
            out.meta["ss_const"] = const if t.name in SPECIAL_STORAGE else st
            out.meta["ss_storage"] = st
            return out
        native = self._native(arg)
        n = t.name
        cast_cls = exp.TryCast if try_ else exp.Cast
        if (styled := _styled_text(arg, native, src, t, style)) is not None:
            out = styled
        elif (
            style not in (None, 0)
            and src is not None
            and t.is_string
            and src.name in ("datetime", "smalldatetime", "datetime2", "date", "datetimeoffset", "time")
        ):
            fmt = {
                120: "%Y-%m-%d %H:%M:%S",
                20: "%Y-%m-%d %H:%M:%S",
                121: "%Y-%m-%d %H:%M:%S.%g",
                23: "%Y-%m-%d",
                112: "%Y%m%d",
                126: "%Y-%m-%dT%H:%M:%S.%g",
                108: "%H:%M:%S",
                101: "%m/%d/%Y",
                103: "%d/%m/%Y",
            }.get(int(style))  # type: ignore[call-overload]
            if fmt is None:
                raise unsupported(f"CONVERT style {style}")
            out = exp.Anonymous(
                this="strftime",
                expressions=[
                    exp.Cast(this=native, to=exp.DataType.build("TIMESTAMP")),
                    exp.Literal.string(fmt),
                ],
            )
        elif style in (1, 2) and src is not None and hex_convertible(src, t):
            out = hex_style(native, t, int(style))
        elif style not in (None, 0) and not (
            t.name in ("date", "datetime", "datetime2") and style in (120, 121, 126, 127, 23, 20)
        ):
            raise unsupported(f"CONVERT style {style}")
        elif (
            n in ("datetime2", "time", "datetimeoffset")
            and src is not None
            and src.name in ("datetime2", "time", "datetimeoffset")
            and src.name != n
            and arg.meta.get("ss_raw")
        ):
            out = _raw_temporal_cast(arg, src, t)
            out.meta["ss_raw"] = True
        elif n == "uniqueidentifier" and src is not None and src.name in ("binary", "varbinary"):
            out = exp.Anonymous(this="__ss_le_guid", expressions=[native])
            out.meta["ss_raw"] = True
        elif n in ("datetime2", "time", "datetimeoffset", "uniqueidentifier"):
            if src is not None and src.name == n:
                out = arg
                if t.scale < src.scale and n != "uniqueidentifier":
                    unit = exp.Literal.number(10 ** (7 - t.scale))
                    fn = "__ss_dto_round" if n == "datetimeoffset" else "__ss_round_ticks"
                    out = exp.Anonymous(this=fn, expressions=[arg, unit])
                    if n == "datetime2":
                        out = _round_dt2(arg, unit, "datetime2")
                    if n == "time":
                        out = exp.Mod(this=out, expression=exp.Literal.number(TICKS_PER_DAY))
            else:
                out = self._to_storage_form(native, src, t, try_)
            out.meta["ss_raw"] = True
        elif n in ("datetime", "smalldatetime"):
            fn = "__ss_dt_round" if n == "datetime" else "__ss_sdt_round"
            out = exp.Anonymous(this=fn, expressions=[cast_cls(this=native, to=exp.DataType.build("TIMESTAMP"))])
        elif (
            t.is_string
            and src is not None
            and src.name
            in (
                "datetime2",
                "time",
                "datetimeoffset",
                "datetime",
                "smalldatetime",
                "date",
                "money",
                "smallmoney",
            )
        ):
            if src.name in ("datetime2", "time", "datetimeoffset") and not arg.meta.get("ss_raw"):
                # a DuckDB-native value typed as one of these (ISNULL of mixed scales): back to storage form
                fn = {"datetime2": "__ss_ts_dt2", "time": "__ss_t_time", "datetimeoffset": "__ss_tz_dto"}[src.name]
                arg = exp.Anonymous(this=fn, expressions=[arg])
            body = _temporal_text(arg, src)
            if t.length > 0:
                body = exp.Anonymous(this="left", expressions=[body, exp.Literal.number(t.length)])
            out = body
        elif t.is_string:
            body = (
                bytes_cast(native, src, t)
                if src is not None and src.name in BINARY_SOURCES
                else cast_cls(this=native, to=exp.DataType.build("VARCHAR"))
            )
            if src is not None and src.name == "bit":
                body = exp.Cast(
                    this=exp.Cast(this=native, to=exp.DataType.build("INTEGER")),
                    to=exp.DataType.build("VARCHAR"),
                )
            if src is not None and src.name in ("float", "real"):
                raise unsupported("CAST of float to a string type")
            if t.length > 0:
                body = string_prefix(body, t)
            if t.name in ("char", "nchar") and t.length > 0:
                body = exp.Anonymous(
                    this="rpad", expressions=[body, exp.Literal.number(t.length), exp.Literal.string(" ")]
                )
            out = body
        elif n in ("int", "bigint", "smallint", "tinyint"):
            duck = {"int": "INTEGER", "bigint": "BIGINT", "smallint": "SMALLINT", "tinyint": "UTINYINT"}[n]
            inner = native
            if src is not None and src.name in ("float", "real", "decimal", "numeric", "money", "smallmoney"):
                inner = exp.Anonymous(this="trunc", expressions=[native])
            out = (
                bytes_int(native, t)
                if src is not None and src.name in BINARY_SOURCES
                else cast_cls(this=inner, to=exp.DataType.build(duck, dialect="duckdb"))
            )
        elif n == "bit":
            if src is not None and src.is_string:
                out = cast_cls(this=native, to=exp.DataType.build("BOOLEAN"))
            else:
                out = exp.NEQ(this=native, expression=exp.Literal.number(0))
        elif n in ("binary", "varbinary") and src is not None and src.name == "uniqueidentifier":
            key = arg if arg.meta.get("ss_raw") else self._convert_to(arg, src, try_, None)
            # the 16 bytes as SQL Server stores them (uuid.bytes_le order), from the comparison-order key
            out = exp.Anonymous(this="__ss_guid_le", expressions=[key])
            if t.length > 0 and t.length != 16:
                hexed: exp.Expression = exp.Anonymous(this="hex", expressions=[out])
                if t.length < 16:
                    hexed = exp.Anonymous(this="left", expressions=[hexed, exp.Literal.number(2 * t.length)])
                elif n == "binary":
                    hexed = exp.DPipe(this=hexed, expression=exp.Literal.string("00" * (t.length - 16)), safe=False)
                out = exp.Anonymous(this="unhex", expressions=[hexed])
        elif n in ("binary", "varbinary"):
            if src is None or not (
                src.is_string or src.name in BINARY_SOURCES or src.name in INT_BYTES or src.name in CLR_TYPES
            ):
                raise unsupported(f"CAST of {src.name if src else 'expression'} to {n}")
            out = bytes_cast(native, src, t)
        else:
            from .types import duck_type

            out = cast_cls(this=native, to=exp.DataType.build(duck_type(t), dialect="duckdb"))
        out.meta["ss_type"] = t
        return out
