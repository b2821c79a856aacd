"""Conversions to and from binary as SQL Server does them: a string's bytes in its encoding (nvarchar UTF-16LE,
varchar code page 1252) padded or cut on the right, an integer's big-endian bytes padded or cut on the left."""

from __future__ import annotations

from sqlglot import exp

from .functions import bytes_string, string_bytes
from .types import SqlType

BINARY_SOURCES = ("binary", "varbinary", "timestamp", "image")


def fit_binary(value: exp.Expression, t: SqlType) -> exp.Expression:
    """Bytes converted to binary(n)/varbinary(n): cut to n bytes without an error, binary(n) padded with 0x00."""
    if t.length <= 0:
        return value
    hexed: exp.Expression = exp.Anonymous(
        this="left", expressions=[exp.Anonymous(this="hex", expressions=[value]), exp.Literal.number(2 * t.length)]
    )
    if t.name == "binary":
        hexed = exp.Anonymous(
            this="rpad", expressions=[hexed, exp.Literal.number(2 * t.length), exp.Literal.string("0")]
        )
    return exp.Anonymous(this="unhex", expressions=[hexed])


#: bytes of the integer types as binary holds them (big-endian two's complement; tinyint is unsigned)
INT_BYTES = {"bigint": 8, "int": 4, "smallint": 2, "tinyint": 1, "bit": 1}


def const_bytes_or_text(const: object, src: SqlType | None, t: SqlType) -> object:
    """A constant string converted to binary (its bytes, fitted to t), constant bytes to a string, an integer
    to binary (its bytes, padded or cut on the left) and bytes to an integer (the rightmost bytes)."""
    if isinstance(const, (bytes, bytearray)) and t.name in INT_BYTES and t.name != "bit":
        size = INT_BYTES[t.name]
        return int.from_bytes(bytes(const[-size:]), "big", signed=t.name != "tinyint")
    if isinstance(const, int) and src is not None and src.name in INT_BYTES and t.name in ("binary", "varbinary"):
        size = INT_BYTES[src.name]
        raw = (const & ((1 << (8 * size)) - 1)).to_bytes(size, "big")
        if t.length <= 0 or t.length == size or (t.name == "varbinary" and t.length > size):
            return raw
        return raw[-t.length :] if t.length < size else raw.rjust(t.length, b"\x00")
    if isinstance(const, str) and t.name in ("binary", "varbinary"):
        const = string_bytes(const, src is not None and src.is_unicode)
    elif isinstance(const, (bytes, bytearray)) and t.is_string:
        return bytes_string(bytes(const), t.is_unicode)
    if not isinstance(const, (bytes, bytearray)) or t.name not in ("binary", "varbinary") or t.length <= 0:
        return const
    cut = bytes(const[: t.length])
    return cut.ljust(t.length, b"\x00") if t.name == "binary" else cut


def string_prefix(body: exp.Expression, t: SqlType) -> exp.Expression:
    """A string cut to t's length: characters for varchar, UTF-16 code units for nvarchar."""
    fn = "__ss_utf16_left" if t.is_unicode else "left"
    return exp.Anonymous(this=fn, expressions=[body, exp.Literal.number(t.length)])


def int_bytes(native: exp.Expression, src: SqlType, t: SqlType) -> exp.Expression:
    """An integer as binary: its bytes, padded with zeros or cut on the left to binary(n)/varbinary(n)."""
    size = INT_BYTES[src.name]
    full = exp.Anonymous(
        this="lpad",
        expressions=[
            exp.Anonymous(this="hex", expressions=[exp.Cast(this=native, to=exp.DataType.build("BIGINT"))]),
            exp.Literal.number(16),
            exp.Literal.string("0"),
        ],
    )
    keep = size if t.length <= 0 or (t.name == "varbinary" and t.length > size) else min(size, t.length)
    hexed: exp.Expression = exp.Anonymous(this="right", expressions=[full, exp.Literal.number(2 * keep)])
    if t.name == "binary" and t.length > size:
        hexed = exp.Anonymous(
            this="lpad", expressions=[hexed, exp.Literal.number(2 * t.length), exp.Literal.string("0")]
        )
    return exp.Anonymous(this="unhex", expressions=[hexed])


def bytes_int(native: exp.Expression, t: SqlType) -> exp.Expression:
    """Binary as an integer type: its rightmost bytes (zero-padded when fewer), read as two's complement."""
    size = INT_BYTES[t.name]
    hexed = exp.Anonymous(
        this="right",
        expressions=[
            exp.Anonymous(
                this="lpad",
                expressions=[
                    exp.Anonymous(this="hex", expressions=[native]),
                    exp.Literal.number(2 * size),
                    exp.Literal.string("0"),
                ],
            ),
            exp.Literal.number(2 * size),
        ],
    )
    unsigned = exp.Cast(
        this=exp.Cast(
            this=exp.DPipe(this=exp.Literal.string("0x"), expression=hexed),
            to=exp.DataType.build("UBIGINT", dialect="duckdb"),
        ),
        to=exp.DataType.build("HUGEINT", dialect="duckdb"),
    )
    value: exp.Expression = unsigned
    if t.name != "tinyint":
        half, whole = 1 << (8 * size - 1), 1 << (8 * size)
        value = exp.Case(
            ifs=[
                exp.If(
                    this=exp.GTE(this=unsigned.copy(), expression=exp.Literal.number(half)),
                    true=exp.Sub(this=unsigned.copy(), expression=exp.Literal.number(whole)),
                )
            ],
            default=unsigned.copy(),
        )
    duck = {"int": "INTEGER", "bigint": "BIGINT", "smallint": "SMALLINT", "tinyint": "UTINYINT"}[t.name]
    return exp.Cast(this=value, to=exp.DataType.build(duck, dialect="duckdb"))


def bytes_cast(native: exp.Expression, src: SqlType | None, t: SqlType) -> exp.Expression:
    """string/integer <-> binary: a string's bytes as SQL Server stores it, an integer's bytes, or bytes read
    as the string type."""
    if src is not None and src.name in INT_BYTES and not t.is_string:
        return int_bytes(native, src, t)
    if t.is_string:
        return exp.Anonymous(this="__ss_bytes_nvarchar" if t.is_unicode else "__ss_bytes_varchar", expressions=[native])
    if src is not None and src.is_string:
        fn = "__ss_nvarchar_bytes" if src.is_unicode else "__ss_varchar_bytes"
        return fit_binary(exp.Anonymous(this=fn, expressions=[native]), t)
    return fit_binary(native, t)


def hex_convertible(src: SqlType, t: SqlType) -> bool:
    """CONVERT styles 1 and 2 apply between binary and the character types."""
    return (src.name in BINARY_SOURCES and t.is_string) or (src.is_string and t.name in ("binary", "varbinary"))


def hex_style(native: exp.Expression, t: SqlType, style: int) -> exp.Expression:
    """CONVERT style 1 ('0x' and hex digits) or 2 (hex digits alone): binary written as text, or text read back."""
    if t.is_string:
        digits: exp.Expression = exp.Anonymous(this="hex", expressions=[native])
        if style == 1:
            digits = exp.DPipe(this=exp.Literal.string("0x"), expression=digits)
        return string_prefix(digits, t) if t.length > 0 else digits
    text: exp.Expression = exp.Cast(this=native, to=exp.DataType.build("VARCHAR"))
    if style == 1:
        text = exp.Anonymous(this="substr", expressions=[text, exp.Literal.number(3)])
    return fit_binary(exp.Anonymous(this="unhex", expressions=[text]), t)
