"""Positions in nvarchar strings counted as SQL Server counts them: in UTF-16 code units.

Under the server's collation (SQL_Latin1_General_CP1_CI_AS, not an _SC one) a supplementary character such as an
emoji is two characters to LEN, SUBSTRING, LEFT, RIGHT and CHARINDEX ("Collation and Unicode support",
Supplementary characters; "LEN": only SC collations count a surrogate pair as one). DuckDB counts code points, so
SUBSTRING(N'😀abc', 3, 1) would be 'b' there and is 'a' in SQL Server. A cut through the middle of a pair keeps
neither half (a DuckDB string cannot hold half of one; SQL Server would send a lone surrogate)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import duckdb
import pyarrow as pa
from sqlglot import exp

from .types import SqlType, utf16_len


def _units(s: str) -> bytes:
    return s.encode("utf-16-le", errors="surrogatepass")


def unit_slice(s: str, first: int, stop: int) -> str:
    """Code units [first, stop) of s (0-based), a split pair dropped."""
    if s.isascii() or utf16_len(s) == len(s):
        return s[max(first, 0) : max(stop, 0)]
    b = _units(s)
    return b[2 * max(first, 0) : 2 * max(stop, 0)].decode("utf-16-le", errors="ignore")


def substring(s: str, start: int, length: int) -> str:
    """SUBSTRING(s, start, length): units from `start` (1-based; before 1 counts toward the length)."""
    return unit_slice(s, max(start, 1) - 1, start - 1 + length) if length > 0 else ""


def right(s: str, n: int) -> str:
    total = utf16_len(s)
    return unit_slice(s, total - n, total) if n > 0 else ""


def charindex(needle: str, hay: str) -> int:
    """CHARINDEX(needle, hay): 1-based unit position of the first occurrence, 0 when absent."""
    at = hay.find(needle) if needle else -1
    return 0 if at < 0 else utf16_len(hay[:at]) + 1


def _apply(fn: Callable[..., object], out_type: pa.DataType, *columns: pa.Array) -> pa.Array:
    rows = zip(*(c.to_pylist() for c in columns), strict=True)
    return pa.array([None if None in row else fn(*row) for row in rows], out_type)


def _udf_substring(x: pa.Array, start: pa.Array, length: pa.Array) -> pa.Array:
    return _apply(substring, pa.string(), x, start, length)


def _udf_right(x: pa.Array, n: pa.Array) -> pa.Array:
    return _apply(right, pa.string(), x, n)


def _udf_charindex(needle: pa.Array, hay: pa.Array) -> pa.Array:
    return _apply(charindex, pa.int64(), needle, hay)


def register_utf16_udfs(con: duckdb.DuckDBPyConnection) -> None:
    v, i = duckdb.sqltypes.VARCHAR, duckdb.sqltypes.BIGINT
    udf: Any = con.create_function  # pyarrow UDFs are not in DuckDB's stub overloads
    udf("__ss_utf16_substring", _udf_substring, [v, i, i], v, type="arrow")
    udf("__ss_utf16_right", _udf_right, [v, i], v, type="arrow")
    udf("__ss_utf16_charindex", _udf_charindex, [v, v], i, type="arrow")


def unit_call(name: str, args: list[exp.Expression], t: SqlType | None) -> exp.Expression:
    """A call of __ss_utf16_<name> (the UDFs above, or functions.py's left), typed t (int for charindex)."""
    cast = [
        exp.Cast(this=a, to=exp.DataType.build("VARCHAR" if k == 0 or name == "charindex" else "BIGINT"))
        for k, a in enumerate(args)
    ]
    out: exp.Expression = exp.Anonymous(this=f"__ss_utf16_{name}", expressions=cast)
    if name == "charindex":
        out = exp.Cast(this=out, to=exp.DataType.build("INTEGER"))
    out.meta["ss_type"] = t
    return out
