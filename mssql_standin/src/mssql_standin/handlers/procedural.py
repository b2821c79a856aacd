"""IF ... ELSE, PRINT, EXEC of a string or a procedure (sp_executesql, sp_tablecollations), and the
metadata query bulk-copy clients send."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
from sqlglot.tokens import Token, TokenType

from ..functions import COLLATION
from ..results import BulkLoadRequest, ColumnSpec, Done, Info, Result, ResultSet, SqlServerError
from ..session import SessionCore, bracket
from ..sqlexpr import OutCol
from ..sqltext import STATEMENT_STARTS, Statement, parse_statement, split_batch, syntax_error, tokenize, unsupported
from ..types import SqlType, make_type, parse_type
from .dml import NOT_LITERAL, fast_literal


class ProceduralStatements(SessionCore):
    """IF, PRINT, EXEC, sp_executesql."""

    def _if(self, st: Statement) -> Iterator[Result | BulkLoadRequest]:
        """`IF <condition> <statement> [ELSE <statement>]` (one statement per branch; no BEGIN ... END)."""
        toks = st.tokens
        depth = 0
        body = els = None
        for i, t in enumerate(toks[1:], 1):
            if t.token_type == TokenType.L_PAREN:
                depth += 1
            elif t.token_type == TokenType.R_PAREN:
                depth -= 1
            elif depth == 0 and t.token_type != TokenType.IDENTIFIER:
                word = t.text.upper()
                if body is None and word in STATEMENT_STARTS:
                    body = i
                elif body is not None and word == "ELSE":
                    els = i
                    break
        if body is None:
            raise syntax_error(toks[-1].text)
        if toks[body].text.upper() == "BEGIN" and (body + 1 >= len(toks) or toks[body + 1].text.upper() not in
                                                    ("TRAN", "TRANSACTION")):  # fmt: skip
            raise unsupported("BEGIN ... END block")
        base = toks[0].start
        cond = st.text[toks[1].start - base : toks[body].start - base]
        probe = f"SELECT CASE WHEN {cond} THEN 1 ELSE 0 END"
        take = self._scalar(parse_statement(probe, tokenize(probe))) == 1
        end = toks[els].start - base if els is not None else len(st.text)
        if take:
            yield from self._batch(st.text[toks[body].start - base : end])
        elif els is not None and els + 1 < len(toks):
            yield from self._batch(st.text[toks[els + 1].start - base :])

    def _print(self, st: Statement) -> Iterator[Result]:
        """PRINT <expression>: its value as an informational message."""
        text = "SELECT " + st.text[len(st.tokens[0].text) :].strip()
        r = self._scalar(parse_statement(text, tokenize(text)))
        yield Info(0, "" if r is None else str(r), state=1, severity=0)

    def _exec(self, st: Statement) -> Iterator[Result | BulkLoadRequest]:
        toks = st.tokens
        if len(toks) > 1 and toks[1].token_type == TokenType.L_PAREN:
            inner = st.text[toks[1].start - toks[0].start :]
            tree = parse_statement("SELECT " + inner, tokenize("SELECT " + inner))
            sql = self._scalar(tree)
            if not isinstance(sql, str):
                raise syntax_error("EXEC")
            yield from self._batch(sql)
            return
        i = 1
        if toks[i].token_type == TokenType.PARAMETER:
            raise unsupported("EXEC with a return-status variable")
        names: list[str] = []
        while i < len(toks) and (
            toks[i].token_type in (TokenType.DOT,) or not names or toks[i - 1].token_type == TokenType.DOT
        ):
            if toks[i].token_type != TokenType.DOT:
                names.append(toks[i].text)
            i += 1
        proc = names[-1].lower() if names else ""
        args = [
            t.text for t in toks[i:] if t.token_type in (TokenType.STRING, TokenType.NATIONAL_STRING, TokenType.NUMBER)
        ]
        if proc in ("sp_tablecollations_100", "sp_tablecollations_90", "sp_tablecollations"):
            yield self._tablecollations(args[0] if args else "")
        elif proc == "sp_executesql":
            if not args:
                raise syntax_error("sp_executesql")
            yield from self._executesql(toks[i:])
        elif proc in ("sp_reset_connection", "sp_setapprole"):
            yield Done("EXECUTE")
        else:
            raise SqlServerError(2812, f"Could not find stored procedure '{'.'.join(names)}'.")

    def _executesql(self, toks: list[Token]) -> Iterator[Result | BulkLoadRequest]:
        """EXEC sp_executesql N'stmt' [, N'@p type, ...' [, @p = value, ...]] (no OUTPUT parameters)."""
        groups: list[list[Token]] = [[]]
        depth = 0
        for t in toks:
            if t.token_type == TokenType.COMMA and depth == 0:
                groups.append([])
                continue
            depth += 1 if t.token_type == TokenType.L_PAREN else -1 if t.token_type == TokenType.R_PAREN else 0
            groups[-1].append(t)
        if not groups[0] or groups[0][0].token_type not in (TokenType.STRING, TokenType.NATIONAL_STRING):
            raise unsupported("sp_executesql with a statement that is not a literal")
        sql = groups[0][0].text
        declared: dict[str, SqlType] = {}
        if len(groups) > 1:
            decl = groups[1][0].text if groups[1] else ""
            for part in _split_top(decl):
                bits = part.strip().split(None, 1)
                if len(bits) == 2:
                    declared[bits[0].lower()] = parse_type(bits[1].replace("OUTPUT", "").replace("output", ""))
        saved = dict(self.state.variables)
        try:
            for g in groups[2:]:
                words = [t.text for t in g]
                if any(w.upper() in ("OUTPUT", "OUT") for w in words):
                    raise unsupported("sp_executesql OUTPUT parameters")
                if len(g) < 3 or g[0].token_type != TokenType.PARAMETER:
                    raise unsupported("sp_executesql positional parameters")
                name = "@" + g[1].text.lower()
                ty = declared.get(name)
                if g[3:] and g[3].token_type == TokenType.PARAMETER:
                    key = "@" + g[4].text.lower() if len(g) > 4 else ""
                    if key not in saved:
                        raise SqlServerError(137, f'Must declare the scalar variable "{key}".', severity=15)
                    value = saved[key][1]
                else:
                    value, _ = fast_literal(g, 3, ty or make_type("nvarchar", ["4000"]))
                    if value is NOT_LITERAL:
                        raise unsupported("sp_executesql parameter value that is not a literal")
                self.state.variables[name] = (ty, value)
            yield from self._batch(sql)
        finally:
            self.state.variables = saved

    def _tablecollations(self, name: str) -> ResultSet:
        t = self._table_by_text(name)
        cols = [
            ColumnSpec("colid", "int", 4, 10, nullable=False),
            ColumnSpec("name", "nvarchar", 256, nullable=False, collation=COLLATION),
            ColumnSpec("tds_collation", "binary", 5),
            ColumnSpec("collation", "nvarchar", 256, collation=COLLATION),
        ]
        rows = [c for c in t.columns]
        tds = bytes.fromhex("0904D00034")
        batch = pa.RecordBatch.from_arrays(
            [
                pa.array([c.column_id for c in rows], pa.int32()),
                pa.array([c.name for c in rows], pa.string()),
                pa.array([tds if c.type.is_string and c.type.name != "xml" else None for c in rows], pa.binary()),
                pa.array(
                    [COLLATION if c.type.is_string and c.type.name != "xml" else None for c in rows],
                    pa.string(),
                ),
            ],
            names=["colid", "name", "tds_collation", "collation"],
        )
        return ResultSet(cols, iter([batch]))

    def _bulkcopy_metadata(self, sql: str) -> Iterator[Result]:
        """SqlBulkCopy's metadata batch (mssql-python): @@TRANCOUNT, the table's FMTONLY shape, collations."""
        import re

        m = re.search(r"sp_tablecollations(?:_100|_90)?\s+N?'((?:[^']|'')*)'", sql, re.I)
        if not m:
            raise unsupported("bulk copy metadata batch")
        name = m.group(1).replace("''", "'")
        t = self._table_by_text(name)
        if re.match(r"\s*select\s+@@trancount", sql, re.I):
            yield self._result_set(f"SELECT CAST({self.trancount} AS INTEGER)", [OutCol("", make_type("int", []))])
        old = self.state.fmtonly
        self.state.fmtonly = True
        try:
            yield from self._select(split_batch(f"SELECT * FROM {bracket(t.schema)}.{bracket(t.name)}")[0])
        finally:
            self.state.fmtonly = old
        yield self._tablecollations(name)


def _split_top(text: str) -> list[str]:
    """Split at commas outside parentheses: '@a int, @b decimal(9, 2)' -> ['@a int', ' @b decimal(9, 2)']."""
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
            continue
        depth += 1 if ch == "(" else -1 if ch == ")" else 0
        cur += ch
    if cur.strip():
        out.append(cur)
    return out
