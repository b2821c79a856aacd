"""T-SQL -> DuckDB: batch splitting, and a type-aware rewrite of sqlglot's T-SQL parse tree.

sqlglot's generic tsql->duckdb translation loses facts SQL Server's answers depend on (real vs float,
GETDATE vs SYSDATETIME, int/int division, LEN's trailing-space rule, CONVERT raising instead of TRY_CAST …),
so the translator:

1. pre-rewrites the token stream so lossy type names and functions survive parsing as opaque names;
2. resolves every table and column against the side catalog (208/207 are raised here, before DuckDB sees
   the query: a DuckDB error would abort the session's open transaction);
3. rewrites nodes with the resolved types: storage-form columns (datetime2, time, datetimeoffset,
   uniqueidentifier) stay raw where their storage order/equality is SQL Server's, literals compared with
   them are converted to storage form in Python, everything else is wrapped in a conversion macro;
4. reports the declared type of each result column so COLMETADATA matches SQL Server's.

Anything it cannot translate faithfully raises error 40517 naming the construct rather than guessing.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.dialects.tsql import TSQL
from sqlglot.errors import ErrorLevel, ParseError, TokenError, UnsupportedError
from sqlglot.tokens import Token, TokenType

from .results import SqlServerError
from .syscatalog import VIEWS, Catalog, Table, quote
from .types import (
    EXACT,
    INT_RANGES,
    KNOWN_TYPES,
    TICKS_PER_DAY,
    TICKS_PER_SECOND,
    SqlType,
    make_type,
    out_of_range,
    parse_type,
    scalar_to_storage,
)

_TSQL = TSQL()

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
        toks = list(_TSQL.tokenize(sql))
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
        if word == "IF" and prev in ("TABLE", "VIEW", "SCHEMA", "INDEX", "CONSTRAINT", "COLUMN"):
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

    for i, t in enumerate(toks):
        if t.token_type == TokenType.SEMICOLON and depth == 0:
            if cur:
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
    for g in groups:
        start, end = g[0].start, g[-1].end
        out.append(Statement(sql[start : end + 1], g, sql.count("\n", 0, start) + 1))
    return out


def _if_body_started(cur: list[Token]) -> bool:
    depth = 0
    for t in cur[1:]:
        if t.token_type == TokenType.L_PAREN:
            depth += 1
        elif t.token_type == TokenType.R_PAREN:
            depth -= 1
        elif depth == 0 and t.token_type != TokenType.IDENTIFIER and t.text.upper() in STATEMENT_STARTS:
            return True
    return False


def _cte_done(cur: list[Token]) -> bool:
    """True when a WITH-statement already has its body (a top-level statement keyword after the CTE list)."""
    depth = 0
    for t in cur[1:]:
        if t.token_type == TokenType.L_PAREN:
            depth += 1
        elif t.token_type == TokenType.R_PAREN:
            depth -= 1
        elif depth == 0 and t.text.upper() in ("SELECT", "INSERT", "UPDATE", "DELETE"):
            return True
    return False


# ------------------------------------------------------------------------------------ pre-rewrite

_KEEP_FUNCS = {
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


#: days from 0001-01-01 to 1900-01-01 (a time converted to datetime2 takes that date)
_DAY_1900 = 693_595


def _round_dt2(ticks: exp.Expression, unit: exp.Expression, src: str) -> exp.Expression:
    """datetime2 ticks rounded to a coarser unit; reaching the year 10000 is error 242, as in SQL Server."""
    msg = f"__ss_242: The conversion of a {src} data type to a datetime2 data type resulted in an out-of-range value."
    return exp.Anonymous(this="__ss_round_dt2", expressions=[ticks, unit, exp.Literal.string(msg)])


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
                    k, ty = _read_type(toks, j + 1)
                    if ty is not None:
                        edits.append((toks[j + 1].start, toks[k - 1].end, encode_type(ty)))
                        type_spans.append((toks[j + 1].start, toks[k - 1].end))
            elif low in ("convert", "try_convert"):
                k, ty = _read_type(toks, i + 2)
                if ty is not None:
                    edits.append((toks[i + 2].start, toks[k - 1].end, encode_type(ty)))
                    type_spans.append((toks[i + 2].start, toks[k - 1].end))
            # a type span starts after its CAST token, so only the last few spans can contain this token
            inside_type = any(a <= t.start <= b for a, b in type_spans[-4:])
            if low in _KEEP_FUNCS and not inside_type and (i == 0 or toks[i - 1].token_type != TokenType.DOT):
                edits.append((t.start, t.end, f"__ss_fn_{low}"))
        i += 1
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


def _read_type(toks: list[Token], j: int) -> tuple[int, SqlType | None]:
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


# ------------------------------------------------------------------------------------ translation


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


class Translator:
    """Rewrites one parsed statement in place for DuckDB."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.ctes: dict[str, list[OutCol]] = {}
        self.alias_n = 0

    # ---- tables

    def resolve_table(self, node: exp.Table) -> tuple[Table | None, str | None]:
        """A FROM-clause table -> (catalog table, registered view name)."""
        parts = [p.name for p in (node.args.get("catalog"), node.args.get("db")) if p is not None]
        name = node.name
        schema = parts[-1] if parts else None
        shown = ".".join([*parts, name])
        if len(parts) == 2 and parts[0].lower() not in (
            self.ctx.database.lower(),
            "master",
            "tempdb",
            "msdb",
            "model",
        ):
            raise SqlServerError(208, f"Invalid object name '{shown}'.", severity=16)
        if schema is None and name.lower() in self.ctes:
            return None, None
        if schema is not None and schema.lower() in ("sys", "information_schema"):
            key = f"{schema.lower()}.{name.lower()}"
            if key not in VIEWS:
                raise SqlServerError(208, f"Invalid object name '{shown}'.")
            self.ctx.views.add(key)
            return None, key
        if schema is None and name.lower().startswith("#"):
            raise unsupported("temporary table " + name)
        t = self.ctx.catalog.table(schema or "dbo", name)
        if t is None:
            raise SqlServerError(208, f"Invalid object name '{shown}'.")
        return t, None

    def bind_table(self, node: exp.Table) -> Source:
        t, view = self.resolve_table(node)
        alias = node.alias or node.name
        if view is not None:
            vname = view_table_name(view)
            cols = [OutCol(c, ty) for c, ty in VIEWS[view].columns]
            node.set("this", exp.to_identifier(vname, quoted=True))
            node.set("db", None)
            node.set("catalog", None)
            node.set("alias", exp.TableAlias(this=exp.to_identifier(alias, quoted=True)))
            return Source(alias, cols)
        if t is None:
            return Source(alias, self.ctes[node.name.lower()])
        node.set("this", exp.to_identifier(t.name, quoted=True))
        node.set("db", exp.to_identifier(t.schema, quoted=True))
        node.set("catalog", None)
        node.set("alias", exp.TableAlias(this=exp.to_identifier(alias, quoted=True)))
        for k in ("joins", "pivots", "laterals"):
            if node.args.get(k):
                raise unsupported(k.upper())
        node.set("hints", None)
        cols = [OutCol(c.name, c.type, c.nullable, c.identity is not None, c.computed is not None) for c in t.columns]
        return Source(alias, cols, t)

    # ---- queries

    def query(self, node: exp.Expression, outer: list[list[Source]]) -> list[OutCol]:
        if isinstance(node, exp.Subquery):
            return self.query(node.this, outer)
        if isinstance(node, exp.SetOperation):
            with_ = node.args.get("with_") or node.args.get("with")
            if with_ is not None:
                self._ctes(with_, outer)
            left = self.query(node.this, outer)
            right = self.query(node.expression, outer)
            if len(left) != len(right):
                raise SqlServerError(
                    205,
                    "All queries combined using a UNION, INTERSECT or EXCEPT operator must have an equal "
                    "number "
                    "of expressions in their target lists.",
                )
            for o in ("order",):
                if node.args.get(o):
                    scope = [Source("", left)]
                    self._rewrite_tree(node.args[o], [scope, *outer], scope)
            return left
        if isinstance(node, exp.Select):
            return self.select(node, outer)
        if isinstance(node, exp.Values):
            raise unsupported("VALUES as a table")
        raise unsupported(type(node).__name__.upper())

    def _ctes(self, with_: exp.Expression, outer: list[list[Source]]) -> None:
        if with_.args.get("recursive"):
            raise unsupported("recursive common table expression")
        for cte in with_.expressions:
            cols = self.query(cte.this, outer)
            names = (
                [c.name for c in cte.args["alias"].columns]
                if cte.args.get("alias") and cte.args["alias"].columns
                else None
            )
            if names:
                cols = [OutCol(n, c.type, c.nullable, raw=c.is_raw) for n, c in zip(names, cols, strict=False)]
            self.ctes[cte.alias_or_name.lower()] = cols

    def select(self, sel: exp.Select, outer: list[list[Source]]) -> list[OutCol]:
        with_ = sel.args.get("with_") or sel.args.get("with")
        if with_ is not None:
            self._ctes(with_, outer)
        scope: list[Source] = []
        from_ = sel.args.get("from_") or sel.args.get("from")
        sources: list[exp.Expression] = []
        if from_ is not None:
            sources.append(from_.this)
        for j in sel.args.get("joins") or []:
            sources.append(j.this)
        for src in sources:
            if isinstance(src, exp.Table):
                if isinstance(src.this, (exp.Anonymous, exp.Func)):
                    raise unsupported("table-valued function " + src.sql("tsql"))
                scope.append(self.bind_table(src))
            elif isinstance(src, exp.Subquery):
                cols = self.query(src.this, outer)
                alias = src.alias
                if not alias:
                    raise syntax_error(")")
                if src.args["alias"].columns:
                    cols = [
                        OutCol(i.name, c.type, c.nullable, raw=c.is_raw)
                        for i, c in zip(src.args["alias"].columns, cols, strict=False)
                    ]
                src.meta["ss_done"] = True
                scope.append(Source(alias, cols))
            else:
                raise unsupported(type(src).__name__.upper())
        self._expand_stars(sel, scope)
        scopes = [scope, *outer]
        for key, val in list(sel.args.items()):
            if key in ("with", "with_", "from_", "from") or val is None:
                continue
            if key == "joins":
                for j in val:
                    if j.args.get("on") is not None:
                        self._rewrite_tree(j.args["on"], scopes, scope)
                    if j.args.get("using"):
                        raise unsupported("JOIN USING")
                continue
            if key == "expressions":
                new = []
                for e in val:
                    new.append(self._rewrite_tree(e, scopes, scope, projection=True))
                sel.set("expressions", new)
                continue
            if isinstance(val, exp.Expression):
                self._rewrite_tree(val, scopes, scope, order=key == "order", aliases=self._aliases(sel))
            elif isinstance(val, list):
                for v in val:
                    if isinstance(v, exp.Expression):
                        self._rewrite_tree(v, scopes, scope)
        if sel.args.get("into"):
            raise unsupported("SELECT INTO")
        return [self._outcol(e) for e in sel.expressions]

    def _aliases(self, sel: exp.Select) -> set[str]:
        return {e.alias.lower() for e in sel.expressions if isinstance(e, exp.Alias)}

    def _expand_stars(self, sel: exp.Select, scope: list[Source]) -> None:
        out: list[exp.Expression] = []
        for e in sel.expressions:
            if isinstance(e, exp.Star):
                if not scope:
                    raise SqlServerError(263, "Must specify table to select from.")
                for s in scope:
                    out += [exp.column(c.name, s.alias, quoted=True) for c in s.cols]
            elif isinstance(e, exp.Column) and isinstance(e.this, exp.Star):
                q = e.table.lower()
                src = next((s for s in scope if s.alias.lower() == q), None)
                if src is None:
                    raise SqlServerError(4104, f'The multi-part identifier "{e.table}" could not be bound.')
                out += [exp.column(c.name, src.alias, quoted=True) for c in src.cols]
            else:
                out.append(e)
        sel.set("expressions", out)

    def _outcol(self, e: exp.Expression) -> OutCol:
        name = e.alias if isinstance(e, exp.Alias) else e.name if isinstance(e, exp.Column) else ""
        inner = e.this if isinstance(e, exp.Alias) else e
        t = type_of(inner)
        src = inner.meta.get("ss_col") if inner.meta else None
        raw = bool(inner.meta.get("ss_raw")) if inner.meta else False
        if isinstance(src, OutCol):
            return OutCol(name, src.type, src.nullable, src.identity, src.computed, raw)
        return OutCol(name, t, raw=raw)

    # ---- expressions

    def resolve_column(self, col: exp.Column, scopes: list[list[Source]], aliases: set[str] | None) -> exp.Expression:
        name = col.name
        qual = [p.name for p in (col.args.get("catalog"), col.args.get("db"), col.args.get("table")) if p is not None]
        low = name.lower()
        for scope in scopes:
            hits: list[tuple[Source, OutCol]] = []
            for s in scope:
                if qual and s.alias.lower() != qual[-1].lower():
                    continue
                c = next((c for c in s.cols if c.name.lower() == low), None)
                if c is not None:
                    hits.append((s, c))
            if len(hits) > 1 and not qual:
                raise SqlServerError(209, f"Ambiguous column name '{name}'.")
            if hits:
                s, c = hits[0]
                new = exp.column(c.name, s.alias, quoted=True)
                new.meta["ss_type"] = c.type
                new.meta["ss_col"] = c
                new.meta["ss_raw"] = c.is_raw
                return new
            if qual and any(s.alias.lower() == qual[-1].lower() for s in scope):
                raise SqlServerError(207, f"Invalid column name '{name}'.")
        if aliases and low in aliases and not qual:
            return col
        if qual:
            raise SqlServerError(4104, f'The multi-part identifier "{".".join([*qual, name])}" could not be bound.')
        raise SqlServerError(207, f"Invalid column name '{name}'.")

    def _rewrite_tree(
        self,
        node: exp.Expression,
        scopes: list[list[Source]],
        scope: list[Source],
        projection: bool = False,
        order: bool = False,
        aliases: set[str] | None = None,
    ) -> exp.Expression:
        parent, key, idx = node.parent, node.arg_key, node.index
        new = self._rw(node, scopes, aliases)
        if new is not node and parent is not None and key is not None and not projection:
            # the rewritten node may now sit inside `new`, so put `new` back at the original place
            if idx is None:
                parent.set(key, new)
            else:
                items = list(parent.args[key])
                items[idx] = new
                parent.set(key, items)
        return new

    def _rw(self, node: exp.Expression, scopes: list[list[Source]], aliases: set[str] | None) -> exp.Expression:
        """Post-order rewrite of an expression tree (nested queries get this scope as their outer scope)."""
        if isinstance(node, (exp.Select, exp.SetOperation)) or (
            isinstance(node, exp.Subquery) and not node.meta.get("ss_done")
        ):
            target = node.this if isinstance(node, exp.Subquery) else node
            cols = self.query(target, scopes)
            if len(cols) == 1:
                node.meta["ss_type"] = cols[0].type
                node.meta["ss_raw"] = cols[0].is_raw
            return node
        if isinstance(node, exp.Column):
            if isinstance(node.this, exp.Star) or (not node.table and node.name.lower().startswith("__ss_t_")):
                return node
            if not node.table and node.name == _EMPTY_BINARY and not node.this.quoted:
                return literal(b"", SqlType("varbinary", 1))
            return self.resolve_column(node, scopes, aliases)
        if isinstance(node, exp.Parameter):
            return self._parameter(node)
        for key, val in list(node.args.items()):
            if isinstance(val, exp.Expression):
                nv = self._rw(val, scopes, aliases)
                if nv is not val:
                    node.set(key, nv)
            elif isinstance(val, list):
                node.set(key, [self._rw(v, scopes, aliases) if isinstance(v, exp.Expression) else v for v in val])
        return self._fix(node)

    # ---- node fix-ups (children already rewritten)

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
        out.meta["ss_type"] = t
        out.meta["ss_raw"] = True
        return out

    def _fix(self, node: exp.Expression) -> exp.Expression:
        out: exp.Expression
        a: exp.Expression
        b: exp.Expression
        if isinstance(node, exp.National):
            return literal(node.this, SqlType("nvarchar", max(1, len(node.this))))
        if isinstance(node, exp.Literal):
            if node.is_string:
                node.meta["ss_type"] = SqlType("varchar", max(1, len(node.this)))
                node.meta["ss_const"] = node.this
                if "\x00" in node.this:
                    return literal(node.this, type_of(node))
            else:
                txt = node.this
                if re.fullmatch(r"\d+", txt):
                    v = int(txt)
                    node.meta["ss_type"] = make_type(
                        "int" if v < 2**31 else "bigint" if v < 2**63 else "decimal",
                        ["38", "0"] if v >= 2**63 else [],
                    )
                    node.meta["ss_const"] = v
                elif re.fullmatch(r"\d*\.\d*", txt):
                    d = decimal.Decimal(txt)
                    digits = txt.replace(".", "").lstrip("0") or "0"
                    scale = len(txt.split(".")[1])
                    node.meta["ss_type"] = SqlType("numeric", 0, max(len(digits), scale, 1), scale)
                    node.meta["ss_const"] = d
                else:
                    node.meta["ss_type"] = SqlType("float", 0, 53)
                    node.meta["ss_const"] = float(txt)
            return node
        if (
            isinstance(node, exp.Neg)
            and node.this.meta.get("ss_const") is not None
            and isinstance(node.this, exp.Literal)
        ):
            v = node.this.meta["ss_const"]
            if isinstance(v, (int, float, decimal.Decimal)):
                node.meta["ss_const"] = EXACT.minus(v) if isinstance(v, decimal.Decimal) else -v
                node.meta["ss_type"] = type_of(node.this)
            return node
        if isinstance(node, exp.Null):
            node.meta["ss_const"] = None
            return node
        if isinstance(node, exp.HexString):
            raw = bytes.fromhex(node.this if len(node.this) % 2 == 0 else "0" + node.this)
            return literal(raw, SqlType("varbinary", max(1, len(raw))))
        if isinstance(node, exp.Parameter):
            return self._parameter(node)
        if isinstance(node, exp.Anonymous):
            return self._function(node)
        if isinstance(node, (exp.Cast, exp.TryCast)):
            return self._cast(node)
        if isinstance(node, exp.Add):
            if self._stringy(node.this) or self._stringy(node.expression):
                ctype = _concat_type(type_of(node.this), type_of(node.expression))
                ca = node.this.meta.get("ss_const", _NOCONST) if node.this.meta else _NOCONST
                cb = node.expression.meta.get("ss_const", _NOCONST) if node.expression.meta else _NOCONST
                if isinstance(ca, str) and isinstance(cb, str):
                    return literal(ca + cb, ctype)  # constant folding keeps N'a' + NCHAR(0) + N'b' a literal
                a, b = self._native(node.this), self._native(node.expression)
                out = exp.DPipe(this=a, expression=b, safe=False)
                out.meta["ss_type"] = ctype
                return out
            return self._arith(node)
        if isinstance(node, (exp.Sub, exp.Mul, exp.Mod)):
            return self._arith(node)
        if isinstance(node, exp.Div):
            a, b = self._native(node.this), self._native(node.expression)
            ta, tb = type_of(a), type_of(b)
            guard = exp.Anonymous(this="__ss_nz", expressions=[b])
            if ta is not None and tb is not None and ta.name in _INT_TYPES and tb.name in _INT_TYPES:
                out = exp.IntDiv(this=a, expression=guard)
                out.meta["ss_type"] = _wider_int(ta, tb)
                return out
            return exp.Div(this=a, expression=guard)
        if isinstance(node, _CMP):
            return self._compare(node)
        if isinstance(node, exp.DateAdd):
            return self._dateadd(node)
        if isinstance(node, exp.Extract):
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
            if part in ("DAYOFWEEK", "WEEKDAY", "DW"):
                # SQL Server numbers weekdays from SET DATEFIRST 7: Sunday = 1
                body: exp.Expression = exp.Add(this=node, expression=exp.Literal.number(1))
            else:
                body = node
            out = exp.Cast(this=body, to=exp.DataType.build("INTEGER"))
            out.meta["ss_type"] = make_type("int", [])
            return out
        if isinstance(node, (exp.Year, exp.Month, exp.Day, exp.DateDiff)):
            self._nativize_children(node)
            big = isinstance(node, exp.DateDiff) and node.args.get("big_int")
            out = exp.Cast(this=node, to=exp.DataType.build("BIGINT" if big else "INTEGER"))
            out.meta["ss_type"] = make_type("bigint" if big else "int", [])
            return out
        if isinstance(node, exp.Escape):
            raise unsupported("LIKE ... ESCAPE")
        if isinstance(node, (exp.Like, exp.ILike)):
            return self._like(node)
        if isinstance(node, exp.Between):
            t = type_of(node.this)
            if node.this.meta.get("ss_raw") and t is not None:
                for k in ("low", "high"):
                    conv = self._const_to_storage(node.args[k], t)
                    if conv is None:
                        node.set("this", self._native(node.this))
                        node.set(k, self._native(node.args[k]))
                        return node
                    node.set(k, conv)
            else:
                self._nativize_children(node)
            return node
        if isinstance(node, exp.In):
            t = type_of(node.this)
            if node.this.meta.get("ss_raw") and t is not None and node.expressions:
                convs = [self._const_to_storage(e, t) for e in node.expressions]
                if all(c is not None for c in convs):
                    node.set("expressions", convs)
                    return node
            if node.args.get("query") is not None and node.this.meta.get("ss_raw"):
                return node
            self._nativize_children(node)
            return node
        if isinstance(node, exp.Count):
            big = node.args.get("big_int")
            node.set("big_int", None)
            node.meta["ss_type"] = make_type("bigint" if big else "int", [])
            if big:
                return node
            out = exp.Cast(this=node, to=exp.DataType.build("INTEGER"))
            out.meta["ss_type"] = make_type("int", [])
            return out
        if isinstance(node, (exp.Min, exp.Max)):
            node.meta["ss_type"] = type_of(node.this)
            node.meta["ss_raw"] = node.this.meta.get("ss_raw", False)
            if isinstance(node.this.meta.get("ss_col"), OutCol):
                c = node.this.meta["ss_col"]
                node.meta["ss_col"] = OutCol("", c.type, True, raw=c.is_raw)
            return node
        if isinstance(node, exp.Sum):
            t = type_of(node.this)
            self._nativize_children(node)
            if t is not None and t.name in _INT_TYPES:
                target = make_type("bigint" if t.name == "bigint" else "int", [])
                out = exp.Cast(this=node, to=exp.DataType.build("BIGINT" if t.name == "bigint" else "INTEGER"))
                out.meta["ss_type"] = target
                return out
            if t is not None and t.name in ("money", "smallmoney"):
                out = exp.Cast(this=node, to=exp.DataType.build("DECIMAL(19,4)"))
                out.meta["ss_type"] = make_type("money", [])
                return out
            return node
        if isinstance(node, exp.Avg):
            t = type_of(node.this)
            self._nativize_children(node)
            if t is not None and t.name in _INT_TYPES:
                s = exp.Sum(this=node.this.copy())
                c = exp.Count(this=node.this.copy())
                target = make_type("bigint" if t.name == "bigint" else "int", [])
                out = exp.Cast(
                    this=exp.IntDiv(
                        this=s,
                        expression=exp.Anonymous(this="nullif", expressions=[c, exp.Literal.number(0)]),
                    ),
                    to=exp.DataType.build("BIGINT" if t.name == "bigint" else "INTEGER"),
                )
                out.meta["ss_type"] = target
                return out
            return node
        if isinstance(node, exp.Length):
            arg = self._native(node.this)
            out = exp.Cast(
                this=exp.Length(this=exp.Anonymous(this="rtrim", expressions=[arg])),
                to=exp.DataType.build("INTEGER"),
            )
            out.meta["ss_type"] = make_type("int", [])
            return out
        if isinstance(node, exp.Coalesce):
            if _raw_choice(node, [node.this, *node.expressions]):
                return node
            self._nativize_children(node)
            node.meta["ss_type"] = type_of(node.this)
            return node
        if isinstance(node, exp.Uuid):
            out = exp.Anonymous(this="__ss_newid", expressions=[])
            out.meta["ss_type"] = make_type("uniqueidentifier", [])
            out.meta["ss_raw"] = True
            return out
        if isinstance(node, (exp.CurrentTimestamp, exp.CurrentTimestampLTZ, exp.CurrentDate)):
            return self._now("getdate")
        if isinstance(node, exp.Window):
            return node
        if isinstance(node, exp.Ordered):
            return node
        if isinstance(
            node,
            (
                exp.Alias,
                exp.Paren,
                exp.Is,
                exp.Not,
                exp.And,
                exp.Or,
                exp.Distinct,
                exp.Group,
                exp.Order,
                exp.Where,
                exp.Having,
                exp.Limit,
                exp.Offset,
                exp.Fetch,
                exp.Star,
                exp.Identifier,
                exp.TableAlias,
                exp.DataType,
                exp.Var,
                exp.Boolean,
                exp.Tuple,
                exp.Exists,
                exp.Lambda,
                exp.Interval,
                exp.Table,
                exp.From,
                exp.Join,
                exp.PartitionedByProperty,
                exp.WindowSpec,
            ),
        ):
            if isinstance(node, exp.Paren):
                node.meta["ss_type"] = type_of(node.this)
                if node.this.meta.get("ss_raw"):
                    node.meta["ss_raw"] = True
                if "ss_const" in (node.this.meta or {}):
                    node.meta["ss_const"] = node.this.meta["ss_const"]
            if isinstance(node, exp.Alias):
                for k in ("ss_type", "ss_col", "ss_raw"):
                    if node.this.meta and k in node.this.meta:
                        node.meta[k] = node.this.meta[k]
            return node
        if isinstance(node, exp.Case):
            ifs = node.args.get("ifs") or []
            if _raw_choice(node, [i.args["true"] for i in ifs] + [node.args.get("default")]):
                return node
            for i in ifs:
                self._nativize_children(i)
            self._nativize_children(node)
            return node
        if isinstance(node, exp.If):
            if isinstance(node.parent, exp.Case):
                return node  # a WHEN branch: the CASE decides the form of its values
            if _raw_choice(node, [node.args.get("true"), node.args.get("false")]):
                return node
            self._nativize_children(node)
            return node
        if isinstance(node, exp.Func):
            self._nativize_children(node)
            self._known_func(node)
            return node
        self._nativize_children(node)
        return node

    def _known_func(self, node: exp.Func) -> None:
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
            node.meta["ss_type"] = _wider_int(ta, tb)
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

    def _compare(self, node: exp.Expression) -> exp.Expression:
        a, b = node.this, node.expression
        ra, rb = bool(a.meta.get("ss_raw")), bool(b.meta.get("ss_raw"))
        ta, tb = type_of(a), type_of(b)
        if ra and rb and ta is not None and tb is not None and ta.name == tb.name:
            if ta.name == "datetimeoffset":
                node.set("this", exp.Dot(this=a, expression=exp.to_identifier("utc")))
                node.set("expression", exp.Dot(this=b, expression=exp.to_identifier("utc")))
            return node
        if ra and ta is not None:
            conv = self._const_to_storage(b, ta)
            if conv is not None:
                if ta.name == "datetimeoffset":
                    conv = (
                        exp.Dot(this=conv, expression=exp.to_identifier("utc"))
                        if not isinstance(conv, exp.Null)
                        else conv
                    )
                    node.set("this", exp.Dot(this=a, expression=exp.to_identifier("utc")))
                node.set("expression", conv)
                return node
        if rb and tb is not None:
            conv = self._const_to_storage(a, tb)
            if conv is not None:
                if tb.name == "datetimeoffset":
                    conv = (
                        exp.Dot(this=conv, expression=exp.to_identifier("utc"))
                        if not isinstance(conv, exp.Null)
                        else conv
                    )
                    node.set("expression", exp.Dot(this=b, expression=exp.to_identifier("utc")))
                node.set("this", conv)
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

    def _parameter(self, node: exp.Parameter) -> exp.Expression:
        inner = node.this
        if isinstance(inner, exp.Parameter):
            name = inner.name.upper()
            st, sv = self.ctx.system_value(name)
            return literal(sv, st)
        name = "@" + node.name
        key = name.lower()
        if key not in self.ctx.variables:
            raise SqlServerError(137, f'Must declare the scalar variable "{name}".', severity=15)
        t, v = self.ctx.variables[key]
        if t is not None and t.name in SPECIAL_STORAGE and v is not None:
            out = storage_literal(scalar_to_storage(v, t, self.ctx.dateformat), t)
            out.meta["ss_type"] = t
            out.meta["ss_raw"] = True
            out.meta["ss_const"] = v
            return out
        if t is not None and v is not None and t.name in ("datetime", "smalldatetime"):
            v = scalar_to_storage(v, t, self.ctx.dateformat)
        return literal(v, t)

    def _now(self, fn: str) -> exp.Expression:
        now = self.ctx.now
        if fn in ("getdate", "getutcdate"):
            t = make_type("datetime", [])
            v = now if fn == "getdate" else now.astimezone(dt.UTC).replace(tzinfo=None)
            return literal(scalar_to_storage(v.replace(tzinfo=None), t), t)
        t = make_type("datetime2", ["7"]) if fn != "sysdatetimeoffset" else make_type("datetimeoffset", ["7"])
        v = now if fn == "sysdatetime" else now.astimezone(dt.UTC)
        st = scalar_to_storage(v.replace(tzinfo=None) if fn != "sysdatetimeoffset" else v, t)
        out = storage_literal(st, t)
        out.meta["ss_type"] = t
        out.meta["ss_raw"] = True
        return out

    def _function(self, node: exp.Anonymous) -> exp.Expression:
        out: exp.Expression
        cur: exp.Expression
        raw = node.name
        name = raw.lower()
        if not name.startswith("__ss_fn_"):
            if name.startswith("__ss_"):
                return node
            raise SqlServerError(195, f"'{raw}' is not a recognized built-in function name.", severity=15)
        fn = name[len("__ss_fn_") :]
        args = list(node.expressions)
        consts = [a.meta.get("ss_const") if a.meta and "ss_const" in a.meta else _NOCONST for a in args]
        all_const = all(c is not _NOCONST for c in consts)
        if fn in ("getdate", "sysdatetime", "sysutcdatetime", "getutcdate", "sysdatetimeoffset"):
            return self._now(fn)
        if fn == "nchar":
            out = exp.Anonymous(this="chr", expressions=[args[0]])
            out.meta["ss_type"] = SqlType("nchar", 1)
            if "ss_const" in (args[0].meta or {}) and isinstance(args[0].meta["ss_const"], int):
                out.meta["ss_const"] = chr(args[0].meta["ss_const"])
            return out
        if fn in ("newid", "newsequentialid"):
            out = exp.Anonymous(this="__ss_newid", expressions=[])
            out.meta["ss_type"] = make_type("uniqueidentifier", [])
            out.meta["ss_raw"] = True
            return out
        if fn == "len":
            arg = self._native(args[0])
            out = exp.Cast(
                this=exp.Length(
                    this=exp.Anonymous(this="rtrim", expressions=[exp.Cast(this=arg, to=exp.DataType.build("VARCHAR"))])
                ),
                to=exp.DataType.build("INTEGER"),
            )
            out.meta["ss_type"] = make_type("int", [])
            return out
        if fn == "isnull":
            out = exp.Coalesce(this=args[0], expressions=[args[1]])
            t0, t1 = type_of(args[0]), type_of(args[1])
            narrower = t0 is not None and t1 is not None and t1.scale > t0.scale  # would need rounding
            if not narrower and _raw_choice(out, args[:2]):
                out.meta["ss_type"] = t0 or t1  # ISNULL takes the first argument's type
                return out
            a, b = self._native(args[0]), self._native(args[1])
            out = exp.Coalesce(this=a, expressions=[b])
            out.meta["ss_type"] = type_of(args[0])
            return out
        if fn == "iif":
            out = exp.If(this=args[0], true=args[1], false=args[2])
            if _raw_choice(out, args[1:3]):
                return out
            out = exp.If(this=args[0], true=self._native(args[1]), false=self._native(args[2]))
            return out
        if fn in ("left", "right"):
            f = "left" if fn == "left" else "right"
            out = exp.Anonymous(
                this=f,
                expressions=[exp.Cast(this=self._native(args[0]), to=exp.DataType.build("VARCHAR")), args[1]],
            )
            t = type_of(args[0])
            out.meta["ss_type"] = t if t is not None and t.is_string else SqlType("varchar", 8000)
            return out
        if fn == "charindex":
            if len(args) > 2:
                raise unsupported("CHARINDEX with a start position")
            out = exp.Cast(
                this=exp.Anonymous(this="strpos", expressions=[self._native(args[1]), self._native(args[0])]),
                to=exp.DataType.build("INTEGER"),
            )
            out.meta["ss_type"] = make_type("int", [])
            return out
        if fn == "datalength":
            return self._datalength(args[0])
        if fn == "hashbytes":
            return self._hashbytes(args)
        if fn == "checksum_agg":
            out = exp.Cast(
                this=exp.Anonymous(this="bit_xor", expressions=[self._native(args[0])]),
                to=exp.DataType.build("INTEGER"),
            )
            out.meta["ss_type"] = make_type("int", [])
            return out
        if fn in ("checksum", "binary_checksum"):
            raise unsupported(fn.upper() + " (SQL Server's hash is not reproduced; use HASHBYTES)")
        if fn in ("convert", "try_convert"):
            return self._convert(args, fn == "try_convert")
        if fn == "concat":
            parts = [
                exp.Coalesce(
                    this=exp.Cast(this=self._native(a), to=exp.DataType.build("VARCHAR")),
                    expressions=[exp.Literal.string("")],
                )
                for a in args
            ]
            cur = parts[0]
            for p in parts[1:]:
                cur = exp.DPipe(this=cur, expression=p)
            cur.meta["ss_type"] = SqlType("nvarchar", -1)
            return cur
        if fn == "quotename":
            a = self._native(args[0])
            if len(args) > 1:
                raise unsupported("QUOTENAME with a quote character")
            out = exp.DPipe(
                this=exp.DPipe(
                    this=exp.Literal.string("["),
                    expression=exp.Anonymous(
                        this="replace", expressions=[a, exp.Literal.string("]"), exp.Literal.string("]]")]
                    ),
                ),
                expression=exp.Literal.string("]"),
            )
            out.meta["ss_type"] = SqlType("nvarchar", 258)
            return out
        if fn in ("space", "replicate"):
            if fn == "space":
                out = exp.Anonymous(this="repeat", expressions=[exp.Literal.string(" "), args[0]])
            else:
                out = exp.Anonymous(this="repeat", expressions=[self._native(args[0]), args[1]])
            out.meta["ss_type"] = SqlType("varchar", 8000)
            return out
        if fn == "square":
            out = exp.Mul(
                this=exp.Cast(this=args[0], to=exp.DataType.build("DOUBLE")),
                expression=exp.Cast(this=args[0].copy(), to=exp.DataType.build("DOUBLE")),
            )
            out.meta["ss_type"] = SqlType("float", 0, 53)
            return out
        # metadata functions: evaluated in Python when their arguments are constants
        if (
            fn
            in (
                "object_name",
                "schema_name",
                "type_name",
                "object_id",
                "columnproperty",
                "col_name",
                "object_schema_name",
            )
            and not all_const
        ):
            return self._meta_subquery(fn, args)
        if all_const:
            t, v = self.ctx.function_value(fn, list(consts))
            if t is not None and t.name in SPECIAL_STORAGE and v is not None:
                out = storage_literal(scalar_to_storage(v, t), t)
                out.meta["ss_type"] = t
                out.meta["ss_raw"] = True
                return out
            return literal(v, t)
        raise unsupported(fn.upper() + " with non-constant arguments")

    def _meta_subquery(self, fn: str, args: list[exp.Expression]) -> exp.Expression:
        out: exp.Expression

        def sub(view: str, col: str, key: str, arg: exp.Expression) -> exp.Expression:
            self.ctx.views.add(view)
            src = quote(view_table_name(view))
            q = f"(SELECT {quote(col)} FROM {src} WHERE {quote(key)} = ({arg.sql('duckdb')}) LIMIT 1)"
            return _parse_duck(q)

        t = SqlType("nvarchar", 128)
        if fn == "object_id":
            # OBJECT_ID(name): a one-part name is looked up in dbo, as for a user whose default schema is dbo
            self.ctx.views.update(("sys.objects", "sys.schemas"))
            o, sc = quote(view_table_name("sys.objects")), quote(view_table_name("sys.schemas"))
            bare = f"replace(replace({args[0].sql('duckdb')}, '[', ''), ']', '')"
            want = f"lower(CASE WHEN strpos({bare}, '.') > 0 THEN {bare} ELSE 'dbo.' || {bare} END)"
            q = (f"(SELECT o.object_id FROM {o} o JOIN {sc} s ON s.schema_id = o.schema_id "
                 f"WHERE lower(s.name || '.' || o.name) = {want} LIMIT 1)")  # fmt: skip
            out = _parse_duck(q)
            t = make_type("int", [])
        elif fn == "object_schema_name":
            self.ctx.views.update(("sys.objects", "sys.schemas"))
            o, sc = quote(view_table_name("sys.objects")), quote(view_table_name("sys.schemas"))
            q = (f"(SELECT s.name FROM {o} o JOIN {sc} s ON s.schema_id = o.schema_id "
                 f"WHERE o.object_id = ({args[0].sql('duckdb')}) LIMIT 1)")  # fmt: skip
            out = _parse_duck(q)
        elif fn == "object_name":
            out = sub("sys.objects", "name", "object_id", args[0])
        elif fn == "schema_name":
            out = sub("sys.schemas", "name", "schema_id", args[0])
        elif fn == "type_name":
            out = sub("sys.types", "name", "user_type_id", args[0])
        elif fn == "col_name":
            self.ctx.views.add("sys.columns")
            src = quote(view_table_name("sys.columns"))
            a0, a1 = args[0].sql("duckdb"), args[1].sql("duckdb")
            q = f"(SELECT name FROM {src} WHERE object_id = ({a0}) AND column_id = ({a1}) LIMIT 1)"
            out = _parse_duck(q)
        elif fn == "columnproperty" and isinstance(args[2].meta.get("ss_const"), str):
            prop = str(args[2].meta["ss_const"]).lower()
            colmap = {"isidentity": "is_identity", "iscomputed": "is_computed", "allowsnull": "is_nullable"}
            if prop not in colmap:
                raise unsupported("COLUMNPROPERTY " + prop)
            self.ctx.views.add("sys.columns")
            q = (
                f"(SELECT CAST({colmap[prop]} AS INTEGER) FROM {quote(view_table_name('sys.columns'))} WHERE "
                "object_id = "
                f"({args[0].sql('duckdb')}) AND lower(name) = lower({args[1].sql('duckdb')}) LIMIT 1)"
            )
            out = _parse_duck(q)
            t = make_type("int", [])
        else:
            raise unsupported(fn.upper() + " with non-constant arguments")
        out.meta["ss_type"] = t
        return out

    def _datalength(self, arg: exp.Expression) -> exp.Expression:
        t = type_of(arg)
        if t is None:
            raise unsupported("DATALENGTH of an expression of unknown type")
        if t.is_unicode:
            body: exp.Expression = exp.Anonymous(this="__ss_utf16_bytes", expressions=[arg])
        elif t.is_string:
            body = exp.Length(this=arg)
        elif t.name in ("binary", "varbinary", "image", "timestamp"):
            body = exp.Anonymous(this="octet_length", expressions=[arg])
        else:
            size = {"decimal": None, "numeric": None}.get(t.name, t.max_length)
            if size is None:
                from .types import decimal_storage

                size = decimal_storage(t.precision)
            body = exp.Case(
                ifs=[exp.If(this=exp.Is(this=arg, expression=exp.Null()), true=exp.Null())],
                default=exp.Literal.number(size),
            )
        out = exp.Cast(this=body, to=exp.DataType.build("BIGINT" if t.max_length == -1 else "INTEGER"))
        out.meta["ss_type"] = make_type("bigint" if t.max_length == -1 else "int", [])
        return out

    def _hashbytes(self, args: list[exp.Expression]) -> exp.Expression:
        alg = args[0].meta.get("ss_const") if args[0].meta else None
        if not isinstance(alg, str) or alg.upper() not in (
            "MD5",
            "SHA1",
            "SHA2_256",
            "SHA2_512",
            "SHA",
            "MD4",
            "MD2",
        ):
            raise unsupported("HASHBYTES algorithm")
        if alg.upper() in ("MD4", "MD2"):
            raise unsupported("HASHBYTES " + alg.upper())
        arg = args[1]
        t = type_of(arg)
        if t is None:
            raise unsupported("HASHBYTES of an expression of unknown type")
        if t.is_string:
            fn = "__ss_hash_n" if t.is_unicode else "__ss_hash_v"
        elif t.name in ("binary", "varbinary", "image", "timestamp"):
            fn = "__ss_hash_b"
        else:
            raise unsupported("HASHBYTES of " + t.name)
        out = exp.Anonymous(this=fn, expressions=[exp.Literal.string(alg.upper()), arg])
        out.meta["ss_type"] = SqlType("varbinary", 8000)
        return out

    def _fraction_part(self, arg: exp.Expression, per_second: int) -> exp.Expression:
        """DATEPART(millisecond/microsecond/nanosecond): the fraction of the second only, from the 100 ns
        storage of datetime2/time/datetimeoffset (DuckDB's own parts are microseconds including the seconds)."""
        t = type_of(arg)
        if t is None or t.is_string:
            t = make_type("datetime2", ["7"])
            arg = self._convert_to(arg, t, False, None)
        if arg.meta.get("ss_raw") and t.name in ("datetime2", "time", "datetimeoffset"):
            ticks = arg
            if t.name == "datetimeoffset":
                ticks = exp.Dot(this=exp.Paren(this=arg), expression=exp.to_identifier("utc"))
            frac: exp.Expression = exp.Mod(
                this=exp.Paren(
                    this=exp.Add(
                        this=exp.Mod(this=exp.Paren(this=ticks), expression=exp.Literal.number(TICKS_PER_SECOND)),
                        expression=exp.Literal.number(TICKS_PER_SECOND),
                    )
                ),
                expression=exp.Literal.number(TICKS_PER_SECOND),
            )
        else:
            us = exp.Anonymous(this="microsecond", expressions=[self._native(arg)])
            frac = exp.Mul(
                this=exp.Paren(this=exp.Mod(this=us, expression=exp.Literal.number(1_000_000))),
                expression=exp.Literal.number(10),
            )
        scaled: exp.Expression = (
            exp.Mul(this=exp.Paren(this=frac), expression=exp.Literal.number(per_second // TICKS_PER_SECOND))
            if per_second >= TICKS_PER_SECOND
            else exp.IntDiv(this=exp.Paren(this=frac), expression=exp.Literal.number(TICKS_PER_SECOND // per_second))
        )
        out = exp.Cast(this=scaled, to=exp.DataType.build("INTEGER"))
        out.meta["ss_type"] = make_type("int", [])
        return out

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

    def _convert(self, args: list[exp.Expression], try_: bool) -> exp.Expression:
        target = args[0]
        t = decode_type(target.name) if isinstance(target, exp.Column) else None
        if t is None:
            raise syntax_error(target.sql("tsql"))
        style = args[2].meta.get("ss_const") if len(args) > 2 and args[2].meta else None
        return self._convert_to(args[1], t, try_, style)

    def _convert_to(self, arg: exp.Expression, t: SqlType, try_: bool, style: object) -> exp.Expression:
        body: exp.Expression
        src = type_of(arg)
        const = arg.meta.get("ss_const", _NOCONST) if arg.meta else _NOCONST
        if (
            const is not _NOCONST
            and not (src is not None and src.name in SPECIAL_STORAGE)
            and style in (None, 0, 120, 121, 126, 127, 23, 20)
        ):
            if isinstance(const, str) and style is not None and t.name in ("datetime", "datetime2", "date"):
                const = const.replace("T", " ")
            try:
                st = scalar_to_storage(const, t, self.ctx.dateformat)
            except SqlServerError as e:
                if try_:
                    return literal(None, t)
                if e.number == 242 and src is not None and t.name == "datetime2":
                    raise out_of_range(src.name, t.name) from None
                raise
            if t.is_string and isinstance(st, str) and t.length > 0:
                st = st[: t.length]
            out = storage_literal(st, t) if t.name in SPECIAL_STORAGE else literal(st, t)
            out.meta["ss_type"] = t
            out.meta["ss_raw"] = t.name in SPECIAL_STORAGE
            out.meta["ss_const"] = const if t.name in SPECIAL_STORAGE else st
            out.meta["ss_storage"] = st
            return out
        native = self._native(arg)
        n = t.name
        cast_cls = exp.TryCast if try_ else exp.Cast
        if (
            style in (20, 120, 21, 121, 126, 127, 8, 24, 108)
            and src is not None
            and t.is_string
            and arg.meta.get("ss_raw")
            and src.name in ("datetime2", "time")
        ):
            out = _raw_temporal_style(arg, src, int(style))
            if t.length > 0:
                out = exp.Anonymous(this="left", expressions=[out, exp.Literal.number(t.length)])
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
                fn = {
                    "datetime2": "__ss_ts_dt2",
                    "time": "__ss_t_time",
                    "datetimeoffset": "__ss_tz_dto",
                    "uniqueidentifier": "__ss_guid_key",
                }[n]
                duck = {
                    "datetime2": "TIMESTAMP",
                    "time": "TIME",
                    "datetimeoffset": "TIMESTAMPTZ",
                    "uniqueidentifier": "UUID",
                }[n]
                out = exp.Anonymous(this=fn, expressions=[cast_cls(this=native, to=exp.DataType.build(duck))])
                if n == "datetime2":
                    out = _round_dt2(out, exp.Literal.number(10 ** (7 - t.scale)), src.name if src else "varchar")
                elif n == "time":
                    out = exp.Anonymous(
                        this="__ss_round_ticks", expressions=[out, exp.Literal.number(10 ** (7 - t.scale))]
                    )
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
            if src is not None and src.name in ("binary", "varbinary"):
                raise unsupported("CAST of binary to a string type")
            body = cast_cls(this=native, to=exp.DataType.build("VARCHAR"))
            if src is not None and src.name == "bit":
                body = exp.Cast(
                    this=exp.Cast(this=native, to=exp.DataType.build("INTEGER")),
                    to=exp.DataType.build("VARCHAR"),
                )
            if src is not None and src.name in ("float", "real"):
                raise unsupported("CAST of float to a string type")
            if t.length > 0:
                body = exp.Anonymous(this="left", expressions=[body, exp.Literal.number(t.length)])
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
            out = cast_cls(this=inner, to=exp.DataType.build(duck))
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
            if src is None or src.name not in ("binary", "varbinary", "timestamp", "image"):
                raise unsupported(f"CAST of {src.name if src else 'expression'} to {n}")
            out = arg
        else:
            from .types import duck_type

            out = cast_cls(this=native, to=exp.DataType.build(duck_type(t), dialect="duckdb"))
        out.meta["ss_type"] = t
        return out


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
    order = ["bit", "tinyint", "smallint", "int", "bigint"]
    w = max(order.index(a.name), order.index(b.name), 3)
    return make_type(order[w], [])


def _concat_type(a: SqlType | None, b: SqlType | None) -> SqlType:
    uni = any(t is not None and t.is_unicode for t in (a, b))
    la = a.length if a is not None and a.is_string else -1
    lb = b.length if b is not None and b.is_string else -1
    if la == -1 or lb == -1:
        return SqlType("nvarchar" if uni else "varchar", -1)
    n = la + lb
    limit = 4000 if uni else 8000
    return SqlType("nvarchar" if uni else "varchar", n if n <= limit else -1)


__all__ = [
    "Context",
    "OutCol",
    "Statement",
    "Translator",
    "parse_statement",
    "split_batch",
    "tokenize",
    "unsupported",
]
