"""A small token parser for the T-SQL DDL the stand-in accepts (CREATE TABLE/INDEX/SCHEMA, ALTER TABLE,
DROP, TRUNCATE). sqlglot's parse of these loses what the side catalog needs (IDENTITY seed/increment,
constraint names, CLUSTERED, INCLUDE, default texts), so they are read directly from the tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlglot.tokens import Token, TokenType

from .results import SqlServerError
from .sqltext import read_type, syntax_error, unsupported
from .types import SqlType


class Cursor:
    """Walks a statement's tokens; raw text slices keep expressions exactly as written."""

    def __init__(self, text: str, toks: list[Token]):
        self.text = text
        self.toks = _split_compound(toks)
        self.i = 0
        self.base = toks[0].start if toks else 0

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        if j >= len(self.toks):
            return ""
        t = self.toks[j]
        return "" if t.token_type == TokenType.IDENTIFIER and t.text.upper() != t.text else t.text.upper()

    def kind(self, k: int = 0) -> TokenType | None:
        j = self.i + k
        return self.toks[j].token_type if j < len(self.toks) else None

    def at_end(self) -> bool:
        return self.i >= len(self.toks)

    def next(self) -> Token:
        if self.i >= len(self.toks):
            raise syntax_error(self.toks[-1].text if self.toks else "")
        t = self.toks[self.i]
        self.i += 1
        return t

    def accept(self, *words: str) -> bool:
        if self.kind() in (TokenType.IDENTIFIER,) and self.toks[self.i].text.upper() not in words:
            return False
        if self.peek() in words and self.kind() != TokenType.STRING:
            self.i += 1
            return True
        return False

    def expect(self, *words: str) -> None:
        """Step over `words`, in order, or fail with a syntax error at the first that is not there."""
        for word in words:
            if word == "(" and self.kind() == TokenType.L_PAREN or word == ")" and self.kind() == TokenType.R_PAREN:
                self.i += 1
            elif not self.accept(word):
                raise syntax_error(self.toks[self.i].text if self.i < len(self.toks) else word)

    def if_exists(self) -> bool:
        """Step over `IF EXISTS` (DROP ... IF EXISTS name), saying whether it was there."""
        if not self.accept("IF"):
            return False
        self.expect("EXISTS")
        return True

    def ident(self) -> str:
        t = self.next()
        if t.token_type in (
            TokenType.STRING,
            TokenType.L_PAREN,
            TokenType.R_PAREN,
            TokenType.COMMA,
            TokenType.NUMBER,
        ):
            raise syntax_error(t.text)
        return t.text

    def qualified(self) -> list[str]:
        parts = [self.ident()]
        while self.kind() == TokenType.DOT:
            self.i += 1
            parts.append(self.ident())
        return parts

    def paren_raw(self) -> str:
        """The raw text of a balanced parenthesised group starting here, parentheses included."""
        if self.kind() != TokenType.L_PAREN:
            raise syntax_error(self.toks[self.i].text if self.i < len(self.toks) else "")
        start = self.toks[self.i].start
        depth = 0
        while True:
            t = self.next()
            if t.token_type == TokenType.L_PAREN:
                depth += 1
            elif t.token_type == TokenType.R_PAREN:
                depth -= 1
                if depth == 0:
                    return self.text[start - self.base : t.end - self.base + 1]

    def skip_parens(self) -> None:
        if self.kind() == TokenType.L_PAREN:
            self.paren_raw()

    def raw_from(self, start_i: int) -> str:
        a = self.toks[start_i].start
        b = self.toks[self.i - 1].end
        return self.text[a - self.base : b - self.base + 1]

    def type(self) -> SqlType:
        k, ty = read_type(self.toks, self.i)
        if ty is None:
            t = self.toks[self.i] if self.i < len(self.toks) else None
            name = t.text if t else ""
            raise SqlServerError(2715, f"Column, parameter, or variable #1: Cannot find data type {name}.")
        self.i = k
        return ty


def _split_compound(toks: list[Token]) -> list[Token]:
    """sqlglot tokenizes `PRIMARY KEY` / `FOREIGN KEY` as one token; the DDL grammar wants two words."""
    out: list[Token] = []
    for t in toks:
        if t.token_type in (TokenType.PRIMARY_KEY, TokenType.FOREIGN_KEY):
            a, b = t.text.split(None, 1)
            out.append(Token(TokenType.VAR, a, t.line, t.col, t.start, t.start + len(a) - 1))
            out.append(Token(TokenType.VAR, b, t.line, t.col, t.end - len(b) + 1, t.end))
        else:
            out.append(t)
    return out


@dataclass
class ColDef:
    name: str
    type: SqlType | None
    nullable: bool | None = None
    identity: tuple[int, int] | None = None
    computed: str | None = None
    default: str | None = None
    default_name: str | None = None
    rowguidcol: bool = False
    #: `[schema.]name` of the alias type the column is declared with (type None until the catalog resolves it)
    alias: list[str] | None = None


@dataclass
class ConstraintDef:
    kind: str  # PK, UQ, FK, CHECK
    name: str | None
    columns: list[tuple[str, bool]] = field(default_factory=list)
    clustered: bool | None = None
    ref: list[str] = field(default_factory=list)
    ref_columns: list[str] = field(default_factory=list)
    on_delete: str = "NO_ACTION"
    on_update: str = "NO_ACTION"
    check: str = ""


@dataclass
class CreateTable:
    name: list[str]
    columns: list[ColDef]
    constraints: list[ConstraintDef]
    data_compression: int = 0


@dataclass
class CreateIndex:
    name: str
    table: list[str]
    unique: bool
    clustered: bool
    columns: list[tuple[str, bool]]
    include: list[str]
    filter: str | None


def normalize_default(raw: str) -> str:
    """SQL Server stores defaults parenthesised: 0 -> ((0)), getdate() -> (getdate()), N'x' -> (N'x')."""
    inner = raw.strip()
    while inner.startswith("(") and inner.endswith(")") and _balanced(inner[1:-1]):
        inner = inner[1:-1].strip()
    if re.fullmatch(r"[-+]?\d+(\.\d+)?", inner):
        return f"(({inner}))"
    m = re.fullmatch(r"([A-Za-z_]\w*)\s*\(\s*\)", inner)
    if m:
        return f"({m.group(1).lower()}())"
    return f"({inner})"


def _balanced(s: str) -> bool:
    depth = 0
    in_str = False
    for ch in s:
        if ch == "'":
            in_str = not in_str
        elif not in_str and ch == "(":
            depth += 1
        elif not in_str and ch == ")":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def _default_expr(c: Cursor) -> str:
    """A DEFAULT's expression: a parenthesised group, a literal, or a function call."""
    if c.kind() == TokenType.L_PAREN:
        return c.paren_raw()
    start = c.i
    if c.peek() in ("-", "+"):
        c.next()
    c.next()
    if c.kind() == TokenType.L_PAREN:
        c.paren_raw()
    return c.raw_from(start)


def _index_columns(c: Cursor) -> list[tuple[str, bool]]:
    c.expect("(")
    cols: list[tuple[str, bool]] = []
    while True:
        name = c.ident()
        desc = False
        if c.accept("DESC"):
            desc = True
        else:
            c.accept("ASC")
        cols.append((name, desc))
        if c.kind() == TokenType.COMMA:
            c.next()
            continue
        c.expect(")")
        return cols


def _name_list(c: Cursor) -> list[str]:
    return [n for n, _ in _index_columns(c)]


def _skip_index_options(c: Cursor) -> int:
    """Skip WITH (...), ON filegroup and the like; return the DATA_COMPRESSION among the WITH options."""
    compression = 0
    while True:
        if c.peek() == "WITH" and c.kind(1) == TokenType.L_PAREN:
            c.next()
            compression = _data_compression(c.paren_raw())
        elif c.peek() == "ON" and c.peek(1) not in ("DELETE", "UPDATE"):
            c.next()
            c.next()
            c.skip_parens()
        elif c.peek() in ("TEXTIMAGE_ON", "FILESTREAM_ON"):
            c.next()
            c.next()
        else:
            return compression


def _constraint(c: Cursor, name: str | None, column: str | None) -> ConstraintDef:
    if c.accept("PRIMARY"):
        c.expect("KEY")
        kind = "PK"
    elif c.accept("UNIQUE"):
        kind = "UQ"
    elif c.accept("FOREIGN"):
        c.expect("KEY")
        cols = _name_list(c)
        c.expect("REFERENCES")
        return _references(c, name, cols)
    elif c.accept("REFERENCES"):
        c.i -= 1
        c.next()
        return _references(c, name, [column] if column else [])
    elif c.accept("CHECK"):
        if c.accept("NOT"):
            c.expect("FOR", "REPLICATION")
        cd = ConstraintDef("CHECK", name, [(column, False)] if column else [])
        cd.check = c.paren_raw()
        return cd
    else:
        raise syntax_error(c.peek())
    clustered: bool | None = None
    if c.accept("CLUSTERED"):
        clustered = True
    elif c.accept("NONCLUSTERED"):
        clustered = False
    keys: list[tuple[str, bool]] = (
        _index_columns(c) if c.kind() == TokenType.L_PAREN else ([(column, False)] if column else [])
    )
    _skip_index_options(c)
    return ConstraintDef(kind, name, keys, clustered)


def _references(c: Cursor, name: str | None, cols: list[str]) -> ConstraintDef:
    ref = c.qualified()
    ref_cols = _name_list(c) if c.kind() == TokenType.L_PAREN else []
    cd = ConstraintDef("FK", name, [(x, False) for x in cols], None, ref, ref_cols)
    while c.peek() == "ON" and c.peek(1) in ("DELETE", "UPDATE"):
        c.next()
        which = c.next().text.upper()
        if which == "DELETE":
            cd.on_delete = _referential_action(c)
        else:
            cd.on_update = _referential_action(c)
    c.accept("NOT")
    c.accept("FOR")
    c.accept("REPLICATION")
    return cd


def _referential_action(c: Cursor) -> str:
    """ON DELETE/UPDATE's action: NO ACTION, CASCADE, SET NULL or SET DEFAULT."""
    if c.accept("CASCADE"):
        return "CASCADE"
    if c.accept("SET"):
        return "SET_NULL" if c.accept("NULL") else ("SET_DEFAULT" if c.accept("DEFAULT") else "NO_ACTION")
    if not c.accept("NO"):
        raise syntax_error(c.peek())
    c.expect("ACTION")
    return "NO_ACTION"


def parse_create_table(text: str, toks: list[Token]) -> CreateTable:
    c = Cursor(text, toks)
    c.expect("CREATE", "TABLE")
    name = c.qualified()
    c.expect("(")
    cols: list[ColDef] = []
    cons: list[ConstraintDef] = []
    while True:
        if c.peek() in ("CONSTRAINT", "PRIMARY", "UNIQUE", "FOREIGN", "CHECK"):
            cname = None
            if c.accept("CONSTRAINT"):
                cname = c.ident()
            cons.append(_constraint(c, cname, None))
        elif c.peek() in ("INDEX",):
            raise unsupported("inline INDEX in CREATE TABLE")
        else:
            cols.append(_column(c, cons))
        if c.kind() == TokenType.COMMA:
            c.next()
            if c.kind() == TokenType.R_PAREN:
                c.next()
                break
            continue
        c.expect(")")
        break
    compression = _skip_index_options(c)
    if c.peek() == "WITH":
        c.next()
        compression = _data_compression(c.paren_raw())
    if not c.at_end():
        raise syntax_error(c.next().text)
    return CreateTable(name, cols, cons, compression)


DATA_COMPRESSION = {"NONE": 0, "ROW": 1, "PAGE": 2}
"""sys.partitions.data_compression of each DATA_COMPRESSION a rowstore table accepts."""


def _data_compression(options: str) -> int:
    """The table's DATA_COMPRESSION among its WITH options (the others are accepted and ignored)."""
    m = re.search(r"(?i)\bDATA_COMPRESSION\s*=\s*(\w+)", options)
    if m is None:
        return 0
    value = m.group(1).upper()
    if value not in DATA_COMPRESSION:
        raise syntax_error(m.group(1))
    return DATA_COMPRESSION[value]


def alias_name(c: Cursor) -> list[str]:
    """The `[schema.]name` of an alias type; a name followed by arguments is a system type written wrong (2715)."""
    start = c.i
    parts = c.qualified()
    if c.kind() == TokenType.L_PAREN or len(parts) > 2:
        c.i = start
        c.type()
    return parts


def _column(c: Cursor, cons: list[ConstraintDef]) -> ColDef:
    name = c.ident()
    if c.accept("AS"):
        start = c.i
        if c.kind() == TokenType.L_PAREN:
            expr = c.paren_raw()
        else:
            while not c.at_end() and c.kind() not in (TokenType.COMMA,) and c.peek() not in ("PERSISTED", "CONSTRAINT"):
                if c.kind() == TokenType.L_PAREN:
                    c.paren_raw()
                elif c.kind() == TokenType.R_PAREN:
                    break
                else:
                    c.next()
            expr = c.raw_from(start)
        col = ColDef(name, None, computed=expr)
        if c.accept("PERSISTED") and c.accept("NOT"):
            c.expect("NULL")
        return col
    col = ColDef(name, c.type()) if read_type(c.toks, c.i)[1] is not None else ColDef(name, None, alias=alias_name(c))
    while not c.at_end() and c.kind() not in (TokenType.COMMA, TokenType.R_PAREN):
        cname = None
        if c.accept("CONSTRAINT"):
            cname = c.ident()
        if c.accept("NOT"):
            if c.accept("FOR"):
                c.expect("REPLICATION")
                continue
            c.expect("NULL")
            col.nullable = False
        elif c.accept("NULL"):
            col.nullable = True
        elif c.accept("IDENTITY"):
            seed, inc = 1, 1
            if c.kind() == TokenType.L_PAREN:
                raw = c.paren_raw()[1:-1]
                parts = [p.strip() for p in raw.split(",")]
                try:
                    seed, inc = int(parts[0]), int(parts[1])
                except (ValueError, IndexError):
                    raise syntax_error(raw) from None
            col.identity = (seed, inc)
        elif c.accept("DEFAULT"):
            col.default = _default_expr(c)
            col.default_name = cname
        elif c.accept("COLLATE"):
            coll = c.ident()
            if not re.search(r"_CI_", coll, re.I) or not coll.upper().startswith(
                ("SQL_LATIN1_GENERAL_CP1_", "LATIN1_GENERAL")
            ):
                raise unsupported("COLLATE " + coll)
        elif c.accept("ROWGUIDCOL"):
            col.rowguidcol = True
        elif c.accept("SPARSE"):
            continue
        elif c.peek() in ("PRIMARY", "UNIQUE", "REFERENCES", "CHECK", "FOREIGN"):
            cons.append(_constraint(c, cname, name))
        else:
            raise syntax_error(c.next().text)
    return col


def parse_create_index(text: str, toks: list[Token]) -> CreateIndex:
    c = Cursor(text, toks)
    c.expect("CREATE")
    unique = c.accept("UNIQUE")
    clustered = False
    if c.accept("CLUSTERED"):
        clustered = True
    else:
        c.accept("NONCLUSTERED")
    if c.accept("COLUMNSTORE"):
        raise unsupported("COLUMNSTORE index")
    c.expect("INDEX")
    name = c.ident()
    c.expect("ON")
    table = c.qualified()
    cols = _index_columns(c)
    include: list[str] = []
    filt: str | None = None
    if c.accept("INCLUDE"):
        include = _name_list(c)
    if c.accept("WHERE"):
        start = c.i
        while not c.at_end() and not (
            c.peek() in ("WITH", "ON")
            and c.kind(1) in (TokenType.L_PAREN, TokenType.VAR, TokenType.IDENTIFIER, TokenType.PRIMARY_KEY)
        ):
            if c.kind() == TokenType.L_PAREN:
                c.paren_raw()
            else:
                c.next()
        filt = c.raw_from(start)
    _skip_index_options(c)
    return CreateIndex(name, table, unique, clustered, cols, include, filt)


def sql_server_definition(raw: str) -> str:
    """An expression as sys.computed_columns shows it: `Id * 2` -> ([Id]*(2)), names bracketed, constants
    parenthesised, no spaces around operators. Falls back to bracketing names when the text does not parse."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one("SELECT " + raw, read="tsql").expressions[0]
    except Exception:  # noqa: BLE001 - any parse failure falls back to the textual form
        return normalize_filter(raw)
    ops = {exp.Add: "+", exp.Sub: "-", exp.Mul: "*", exp.Div: "/", exp.Mod: "%", exp.DPipe: "+", exp.EQ: "=",
           exp.NEQ: "<>", exp.GT: ">", exp.GTE: ">=", exp.LT: "<", exp.LTE: "<=", exp.And: " AND ",
           exp.Or: " OR "}  # fmt: skip

    def r(n: exp.Expr) -> str:
        if isinstance(n, exp.Paren):
            return r(n.this)
        if isinstance(n, exp.Column):
            return ".".join(f"[{p.name}]" for p in n.parts)
        if isinstance(n, exp.Literal):
            return f"({n.this})" if not n.is_string else "'" + n.this.replace("'", "''") + "'"
        if isinstance(n, exp.National):
            return "N'" + n.this.replace("'", "''") + "'"
        if isinstance(n, exp.Neg):
            return f"(-{r(n.this).strip('()')})" if isinstance(n.this, exp.Literal) else f"-{r(n.this)}"
        for cls, op in ops.items():
            if isinstance(n, cls):
                return f"({r(n.left)}{op}{r(n.right)})"
        if isinstance(n, exp.Length):
            inner = n.this.this if isinstance(n.this, exp.Cast) else n.this
            return f"len({r(inner)})"
        if isinstance(n, exp.Func):
            name = n.sql("tsql").split("(")[0].lower() if not isinstance(n, exp.Anonymous) else n.name.lower()
            args = [a for a in n.args.values() if isinstance(a, exp.Expression)]
            flat: list[exp.Expression] = []
            for k, v in n.args.items():
                if isinstance(v, list):
                    flat += [x for x in v if isinstance(x, exp.Expression)]
                elif isinstance(v, exp.Expression) and k != "expressions":
                    flat.append(v)
            return f"{name}({','.join(r(a) for a in (flat or args))})"
        return n.sql("tsql")

    out = r(tree)
    return out if out.startswith("(") else f"({out})"


def normalize_filter(raw: str) -> str:
    """sys.indexes.filter_definition is bracketed and parenthesised: `b IS NOT NULL` -> ([b] IS NOT NULL)."""
    s = raw.strip()
    while s.startswith("(") and s.endswith(")") and _balanced(s[1:-1]):
        s = s[1:-1].strip()
    out = re.sub(
        r"(?<![\[\w'@])([A-Za-z_]\w*)(?![\w\]'(])",
        lambda m: m.group(1) if m.group(1).upper() in _SQL_WORDS else f"[{m.group(1)}]",
        s,
    )
    return f"({out})"


_SQL_WORDS = {"IS", "NOT", "NULL", "AND", "OR", "IN", "LIKE", "BETWEEN", "N"}


@dataclass
class AlterAdd:
    table: list[str]
    constraints: list[ConstraintDef]
    columns: list[ColDef]
    drop_constraint: str | None = None
    drop_column: str | None = None
    #: ADD CONSTRAINT name DEFAULT expr FOR column: (name, expr, column)
    defaults: list[tuple[str | None, str, str]] = field(default_factory=list)
    #: CHECK / NOCHECK CONSTRAINT ...: accepted, constraints are not re-validated
    check_toggle: bool = False


def parse_alter_table(text: str, toks: list[Token]) -> AlterAdd:
    c = Cursor(text, toks)
    c.expect("ALTER", "TABLE")
    table = c.qualified()
    if c.accept("WITH") and not (c.accept("CHECK") or c.accept("NOCHECK")):
        raise syntax_error("WITH")
    if c.accept("ADD"):
        cons: list[ConstraintDef] = []
        cols: list[ColDef] = []
        defaults: list[tuple[str | None, str, str]] = []
        while True:
            if c.peek() in ("CONSTRAINT", "PRIMARY", "UNIQUE", "FOREIGN", "CHECK", "DEFAULT"):
                cname = c.ident() if c.accept("CONSTRAINT") else None
                if c.accept("DEFAULT"):
                    expr = _default_expr(c)
                    c.expect("FOR")
                    defaults.append((cname, expr, c.ident()))
                else:
                    cons.append(_constraint(c, cname, None))
            else:
                cols.append(_column(c, cons))
            if c.kind() == TokenType.COMMA:
                c.next()
                continue
            break
        if not c.at_end():
            raise syntax_error(c.next().text)
        return AlterAdd(table, cons, cols, defaults=defaults)
    if c.accept("DROP"):
        if c.accept("CONSTRAINT"):
            c.accept("IF") and c.accept("EXISTS")
            return AlterAdd(table, [], [], drop_constraint=c.ident())
        if c.accept("COLUMN"):
            return AlterAdd(table, [], [], drop_column=c.ident())
    if c.accept("CHECK") or c.accept("NOCHECK"):
        c.expect("CONSTRAINT")
        return AlterAdd(table, [], [], check_toggle=True)
    raise unsupported("this ALTER TABLE form")
