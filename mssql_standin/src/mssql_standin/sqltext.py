"""T-SQL text: tokens, statements and batches, and the pre-rewrite that lets sqlglot parse what SQL Server
accepts (type names and functions it would lose kept as opaque names)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.dialects.tsql import TSQL
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token, TokenType

from .clrtypes import static_call_edits, to_string_edits
from .results import SqlServerError
from .types import KNOWN_TYPES, SqlType, parse_type

_TSQL = TSQL()


class _Tokenizer(TSQL.Tokenizer):
    """sqlglot's T-SQL tokens, except that PRINT is a word: sqlglot reads a COMMAND's whole rest up to `;` as one
    string, while SQL Server ends PRINT's expression where the next statement starts (`PRINT 'a' SELECT 1`)."""

    KEYWORDS = {k: v for k, v in TSQL.Tokenizer.KEYWORDS.items() if k != "PRINT"}


STATEMENT_STARTS = {
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "CREATE",
    "ALTER",
    "DROP",
    "TRUNCATE",
    "SET",
    "USE",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "SAVE",
    "DECLARE",
    "EXEC",
    "EXECUTE",
    "PRINT",
    "DBCC",
    "BULK",
    "IF",
    "WHILE",
    "RETURN",
    "MERGE",
    "GRANT",
    "REVOKE",
    "DENY",
    "WITH",
    "RAISERROR",
    "THROW",
}


SPECIAL_STORAGE = {"datetime2", "time", "datetimeoffset", "uniqueidentifier"}


def unsupported(construct: str) -> SqlServerError:
    return SqlServerError(
        40517,
        f"Keyword or statement option '{construct}' is not supported in this version of SQL Server "
        "(SQL Server stand-in).",
        state=1,
        severity=16,
    )


def syntax_error(near: str) -> SqlServerError:
    return SqlServerError(102, f"Incorrect syntax near '{near}'.", state=1, severity=15)


def tokenize(sql: str) -> list[Token]:
    try:
        # A tokenizer keeps its position in the text it reads, and sessions run in threads: one per call.
        toks = list(_Tokenizer(dialect=_TSQL).tokenize(sql))
    except TokenError as e:
        raise SqlServerError(
            105, f"Unclosed quotation mark after the character string '{sql[-20:]}'.", severity=15
        ) from e
    for t in toks:
        # sqlglot reads the empty binary literal `0x` as an identifier; in T-SQL it is a zero-length binary.
        if t.token_type == TokenType.IDENTIFIER and sql[t.start : t.end + 1].lower() == "0x":
            t.token_type = TokenType.HEX_STRING
            t.text = ""
    return toks


@dataclass
class Statement:
    text: str
    tokens: list[Token]
    line: int
    #: the statement ended with a semicolon (MERGE must: error 10713)
    terminated: bool = False

    @property
    def words(self) -> list[str]:
        return [t.text.upper() for t in self.tokens[:4]]


def split_batch(sql: str) -> list[Statement]:
    """Split a T-SQL batch into statements (semicolons are optional in T-SQL)."""
    toks = tokenize(sql)
    groups: list[list[Token]] = []
    cur: list[Token] = []
    depth = 0

    def starts_new(i: int) -> bool:
        t = toks[i]
        word = t.text.upper() if t.token_type not in (TokenType.IDENTIFIER, TokenType.STRING) else ""
        if depth or not cur or word not in STATEMENT_STARTS:
            return False
        prev = cur[-1].text.upper() if cur[-1].token_type != TokenType.IDENTIFIER else ""
        first = cur[0].text.upper()
        if prev in ("UNION", "ALL", "EXCEPT", "INTERSECT", "AS", "THEN", "ELSE", "FOR"):
            return False
        if prev == "ON" and word in ("DELETE", "UPDATE"):
            return False
        if (prev, word) in (("BULK", "INSERT"), ("INSERT", "BULK")):
            return False
        if word == "IF" and prev in ("TABLE", "VIEW", "SCHEMA", "INDEX", "CONSTRAINT", "COLUMN", "TYPE"):
            return False
        seen = {x.text.upper() for x in cur if x.token_type != TokenType.IDENTIFIER}
        if first in ("MERGE", "GRANT", "REVOKE", "DENY"):
            return False
        if first == "IF" and (prev == "ELSE" or not _if_body_started(cur)):
            return False
        if first == "DBCC" and word == "WITH":
            return False
        if first == "INSERT" and word in ("SELECT", "EXEC", "EXECUTE", "WITH") and not ({"VALUES", "SELECT"} & seen):
            return False
        if first == "UPDATE" and word == "SET" and "SET" not in seen:
            return False
        if first == "ALTER" and word in ("DROP", "ALTER", "WITH", "SET"):
            nxt_word = toks[i + 1].text.upper() if i + 1 < len(toks) else ""
            if word == "SET" or (word, nxt_word) in (
                ("DROP", "CONSTRAINT"),
                ("DROP", "COLUMN"),
                ("ALTER", "COLUMN"),
                ("WITH", "CHECK"),
                ("WITH", "NOCHECK"),
            ):  # fmt: skip
                return False
        if first == "WITH" and word in ("SELECT", "INSERT", "UPDATE", "DELETE") and not _cte_done(cur):
            # `WITH x AS (...) SELECT`: the first top-level statement keyword is the CTE's body
            return False
        if word == "WITH":
            nxt = toks[i + 1] if i + 1 < len(toks) else None
            return nxt is not None and nxt.token_type not in (TokenType.L_PAREN,) and first not in ("CREATE", "BULK")
        if first == "CREATE" and word in ("SELECT",) and "AS" in seen:
            return False
        if first == "DECLARE" and word == "CURSOR":
            return False
        return not (first == "BEGIN" and len(cur) == 1 and word in ("TRAN", "TRANSACTION"))

    ended: set[int] = set()  # groups closed by a semicolon
    for i, t in enumerate(toks):
        if t.token_type == TokenType.SEMICOLON and depth == 0:
            if cur:
                ended.add(len(groups))
                groups.append(cur)
            cur = []
            continue
        if starts_new(i):
            groups.append(cur)
            cur = []
        if t.token_type == TokenType.L_PAREN:
            depth += 1
        elif t.token_type == TokenType.R_PAREN:
            depth = max(0, depth - 1)
        cur.append(t)
    if cur:
        groups.append(cur)
    out = []
    for k, g in enumerate(groups):
        start, end = g[0].start, g[-1].end
        out.append(Statement(sql[start : end + 1], g, sql.count("\n", 0, start) + 1, k in ended))
    return out


def _top_level(cur: list[Token]) -> Iterator[Token]:
    """The tokens after the first that stand outside every parenthesis."""
    depth = 0
    for t in cur[1:]:
        if t.token_type == TokenType.L_PAREN:
            depth += 1
        elif t.token_type == TokenType.R_PAREN:
            depth -= 1
        elif depth == 0:
            yield t


def _if_body_started(cur: list[Token]) -> bool:
    return any(t.token_type != TokenType.IDENTIFIER and t.text.upper() in STATEMENT_STARTS for t in _top_level(cur))


def _cte_done(cur: list[Token]) -> bool:
    """True when a WITH-statement already has its body (a top-level statement keyword after the CTE list)."""
    return any(t.text.upper() in ("SELECT", "INSERT", "UPDATE", "DELETE") for t in _top_level(cur))


_KEEP_FUNCS = {
    "sql_variant_property",
    "sysdatetime",
    "sysutcdatetime",
    "getutcdate",
    "sysdatetimeoffset",
    "getdate",
    "datalength",
    "hashbytes",
    "checksum",
    "binary_checksum",
    "checksum_agg",
    "newid",
    "len",
    "convert",
    "try_convert",
    "isnull",
    "iif",
    "scope_identity",
    "ident_current",
    "ident_seed",
    "ident_incr",
    "object_id",
    "object_name",
    "schema_name",
    "schema_id",
    "type_name",
    "type_id",
    "db_name",
    "db_id",
    "databasepropertyex",
    "serverproperty",
    "columnproperty",
    "quotename",
    "suser_sname",
    "suser_name",
    "user_name",
    "host_name",
    "app_name",
    "objectproperty",
    "left",
    "right",
    "charindex",
    "newsequentialid",
    "original_db_name",
    "square",
    "collationproperty",
    "has_perms_by_name",
    "is_srvrolemember",
    "sessionproperty",
    "error_message",
    "concat",
    "space",
    "replicate",
    "col_name",
    "col_length",
    "object_schema_name",
    "nchar",
}


# Words that start a type name: every type types.py knows, plus the one-word aliases the parser maps.
_TYPE_WORDS = KNOWN_TYPES | {"integer", "dec", "rowversion"}


def encode_type(t: SqlType) -> str:
    return f"__ss_t_{t.name}_{t.length if t.length >= 0 else 'max'}_{t.precision}_{t.scale}"


def decode_type(name: str) -> SqlType | None:
    m = re.fullmatch(r"__ss_t_([a-z0-9_]+?)_(max|\d+)_(\d+)_(\d+)", name, re.I)
    if not m:
        return None
    return SqlType(
        m.group(1).lower(),
        -1 if m.group(2).lower() == "max" else int(m.group(2)),
        int(m.group(3)),
        int(m.group(4)),
    )


#: DATEPART parts below the second, by units per second
_FRACTION_PARTS = {
    "MILLISECOND": 1000, "MS": 1000, "MICROSECOND": 1_000_000, "MCS": 1_000_000, "NANOSECOND": 1_000_000_000,
    "NS": 1_000_000_000,
}  # fmt: skip


#: what pre_rewrite puts in place of the empty binary literal `0x`, which sqlglot cannot parse
_EMPTY_BINARY = "__ss_empty_binary"


def pre_rewrite(sql: str, toks: list[Token]) -> str:
    """Rename lossy functions to __ss_fn_<name> and CAST/CONVERT target types to encoded opaque names."""
    edits: list[tuple[int, int, str]] = []
    type_spans: list[tuple[int, int]] = []
    n = len(toks)
    i = 0
    while i < n:
        t = toks[i]
        low = t.text.lower()
        nxt = toks[i + 1] if i + 1 < n else None
        if t.token_type == TokenType.HEX_STRING and t.text == "":
            edits.append((t.start, t.end, _EMPTY_BINARY))
        if nxt is not None and nxt.token_type == TokenType.L_PAREN and t.token_type != TokenType.IDENTIFIER:
            if low in ("cast", "try_cast"):
                j = _matching_as(toks, i + 1)
                if j is not None:
                    k, ty = read_type(toks, j + 1, in_cast=True)
                    if ty is not None:
                        edits.append((toks[j + 1].start, toks[k - 1].end, encode_type(ty)))
                        type_spans.append((toks[j + 1].start, toks[k - 1].end))
            elif low in ("convert", "try_convert"):
                k, ty = read_type(toks, i + 2, in_cast=True)
                if ty is not None:
                    edits.append((toks[i + 2].start, toks[k - 1].end, encode_type(ty)))
                    type_spans.append((toks[i + 2].start, toks[k - 1].end))
            # a type span starts after its CAST token, so only the last few spans can contain this token
            inside_type = any(a <= t.start <= b for a, b in type_spans[-4:])
            if low in _KEEP_FUNCS and not inside_type and (i == 0 or toks[i - 1].token_type != TokenType.DOT):
                edits.append((t.start, t.end, f"__ss_fn_{low}"))
        i += 1
    for start, end, value in static_call_edits(toks):  # geography::Point(...) and friends: their serialization
        edits.append((start, end, "0x" + value.hex().upper() if value else _EMPTY_BINARY))
    for start, end, chain in to_string_edits(toks):  # h.ToString(): the CAST that gives the same text
        edits.append((start, end, f"CAST({chain} AS {encode_type(SqlType('nvarchar', 4000))})"))
    if not edits:
        return sql
    base = toks[0].start if toks else 0  # token positions count from the start of the whole batch
    out = []
    pos = 0
    for s, e, rep in sorted((a - base, b - base, r) for a, b, r in edits):
        if s < pos:
            continue
        out.append(sql[pos:s])
        out.append(rep)
        pos = e + 1
    out.append(sql[pos:])
    return "".join(out)


def _matching_as(toks: list[Token], lparen: int) -> int | None:
    depth = 0
    for j in range(lparen, len(toks)):
        tt = toks[j].token_type
        if tt == TokenType.L_PAREN:
            depth += 1
        elif tt == TokenType.R_PAREN:
            depth -= 1
            if depth == 0:
                return None
        elif depth == 1 and toks[j].text.upper() == "AS":
            return j
    return None


#: types whose length CAST and CONVERT default to 30 when none is given (a declaration defaults it to 1)
_CAST_LENGTH_30 = {"char", "varchar", "nchar", "nvarchar", "binary", "varbinary"}


def read_type(toks: list[Token], j: int, in_cast: bool = False) -> tuple[int, SqlType | None]:
    """Read `name [ (args) ]` at j; returns (index after, type) or (j, None) if it is not a type."""
    if j >= len(toks):
        return j, None
    words = [toks[j].text.lower()]
    k = j + 1
    if words[0] in ("sys", "dbo") and k + 1 < len(toks) and toks[k].token_type == TokenType.DOT:
        words = [toks[k + 1].text.lower()]
        k += 2
    if words[0] == "double" and k < len(toks) and toks[k].text.lower() == "precision":
        words = ["float"]
        k += 1
    if words[0] not in _TYPE_WORDS:
        return j, None
    args: list[str] = []
    if k < len(toks) and toks[k].token_type == TokenType.L_PAREN:
        k += 1
        while k < len(toks) and toks[k].token_type != TokenType.R_PAREN:
            if toks[k].token_type != TokenType.COMMA:
                args.append(toks[k].text.lower())
            k += 1
        k += 1
    if in_cast and not args and words[0] in _CAST_LENGTH_30:
        args = ["30"]
    try:
        return k, parse_type(words[0] + (f"({','.join(args)})" if args else ""))
    except SqlServerError:
        return j, None


def parse_statement(text: str, toks: list[Token]) -> exp.Expression:
    """Parse one statement with sqlglot after the pre-rewrite; parse errors become error 102."""
    sql = pre_rewrite(text, toks)
    try:
        trees = sqlglot.parse(sql, read="tsql")
    except ParseError as e:
        errs = getattr(e, "errors", None) or []
        near = errs[0].get("highlight", "") if errs else ""
        raise syntax_error(near or text.split()[-1]) from e
    trees = [t for t in trees if t is not None]
    if len(trees) != 1 or isinstance(trees[0], exp.Command):
        raise syntax_error(text.split()[0] if text.split() else text)
    tree = trees[0]
    assert isinstance(tree, exp.Expression)
    return tree
