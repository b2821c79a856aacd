"""INSERT text read straight from its tokens: plain literals of a VALUES list, and the target's table hints."""

from __future__ import annotations

import decimal

from sqlglot.tokens import Token, TokenType

from .. import ddl
from ..results import SqlServerError
from ..sqltext import Statement, read_type, syntax_error
from ..types import EXACT, SqlType


class _NotLiteral:
    pass


NOT_LITERAL = _NotLiteral()


def fast_literal(toks: list[Token], i: int, col: SqlType) -> tuple[object, int]:
    """One literal at toks[i]: number, string, N'', 0x.., NULL, -n, CAST('..' AS <the column's type>)."""
    t = toks[i]
    tt = t.token_type
    if tt == TokenType.NUMBER:
        text = t.text
        if text.isdigit():
            return int(text), i + 1
        if "e" in text.lower():
            return float(text), i + 1
        return decimal.Decimal(text), i + 1
    if tt in (TokenType.STRING, TokenType.NATIONAL_STRING):
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        if nxt is not None and nxt.token_type not in (TokenType.COMMA, TokenType.R_PAREN):
            return NOT_LITERAL, i
        return t.text, i + 1
    if tt == TokenType.NULL:
        return None, i + 1
    if tt == TokenType.HEX_STRING:
        h = t.text
        return bytes.fromhex(h if len(h) % 2 == 0 else "0" + h), i + 1
    if tt == TokenType.DASH and i + 1 < len(toks) and toks[i + 1].token_type == TokenType.NUMBER:
        v, j = fast_literal(toks, i + 1, col)
        if isinstance(v, decimal.Decimal):
            return EXACT.minus(v), j
        if isinstance(v, (int, float)):
            return -v, j
        return NOT_LITERAL, i
    if t.text.upper() == "CAST" and i + 5 < len(toks) and toks[i + 1].token_type == TokenType.L_PAREN:
        s = toks[i + 2]
        if s.token_type not in (TokenType.STRING, TokenType.NATIONAL_STRING) or toks[i + 3].text.upper() != "AS":
            return NOT_LITERAL, i
        j, ty = read_type(toks, i + 4)
        if ty is None or ty.name != col.name or j >= len(toks) or toks[j].token_type != TokenType.R_PAREN:
            return NOT_LITERAL, i
        if ty.name in ("time", "datetime2", "datetimeoffset") and ty.scale > col.scale:
            return NOT_LITERAL, i
        return s.text, j + 1
    return NOT_LITERAL, i


_INSERT_HINTS = {
    "HOLDLOCK", "IGNORE_CONSTRAINTS", "IGNORE_TRIGGERS", "KEEPDEFAULTS", "KEEPIDENTITY", "NOWAIT", "PAGLOCK",
    "READCOMMITTED", "READCOMMITTEDLOCK", "READPAST", "REPEATABLEREAD", "ROWLOCK", "SERIALIZABLE", "SNAPSHOT",
    "TABLOCK", "TABLOCKX", "UPDLOCK", "XLOCK",
}  # fmt: skip


def strip_insert_hints(st: Statement) -> Statement:
    """`INSERT [INTO] t WITH (TABLOCK, ...) ...`: check the target's table hints and drop them."""
    c = ddl.Cursor(st.text, st.tokens)
    c.expect("INSERT")
    c.accept("INTO")
    try:
        c.qualified()
    except SqlServerError:
        return st
    if c.peek() != "WITH" or c.kind(1) != TokenType.L_PAREN:
        return st
    first = c.i
    k = first + 2
    toks = st.tokens
    while k < len(toks) and toks[k].token_type != TokenType.R_PAREN:
        word = toks[k].text.upper()
        if toks[k].token_type != TokenType.COMMA:
            if word in ("NOLOCK", "READUNCOMMITTED"):
                raise SqlServerError(
                    1065,
                    "The NOLOCK and READUNCOMMITTED lock hints are not allowed for target tables of INSERT, "
                    "UPDATE, DELETE or MERGE statements.",
                    state=1,
                    severity=15,
                )
            if word not in _INSERT_HINTS:
                raise SqlServerError(
                    321,
                    f'"{toks[k].text}" is not a recognized table hints option. If it is intended as a parameter to '
                    "a table-valued function or to the CHANGETABLE function, ensure that your database "
                    "compatibility mode is set to 90.",
                    1,
                    15,
                )
        k += 1
    if k >= len(toks):
        raise syntax_error("(")
    base = toks[0].start
    a, b = toks[first].start - base, toks[k].end - base
    text = st.text[:a] + " " * (b + 1 - a) + st.text[b + 1 :]
    return Statement(text, toks[:first] + toks[k + 1 :], st.line)
