"""The TOP (n) and OUTPUT clauses of INSERT, UPDATE and DELETE.

Both are cut out of the statement's tokens before sqlglot sees it (its T-SQL grammar reads neither fully).
The rows a statement touches are pinned by DuckDB's rowid, which stays put while a row is updated and grows
for appended rows: UPDATE/DELETE first choose their rows (TOP without ORDER BY takes any n, as SQL Server
does), OUTPUT reads them before (deleted) and after (inserted) the change, and an INSERT reads the rows above
the table's highest rowid (inside a transaction of its own, so no other session's rows come in between).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

import duckdb
import pyarrow as pa
from sqlglot import exp
from sqlglot.tokens import Token, TokenType

from ..results import Result, ResultSet, RowCount, SqlServerError
from ..rows import RowWriter
from ..session import fetch_first
from ..sqlexpr import OutCol, Source, duck_sql
from ..sqltext import Statement, parse_statement, syntax_error, tokenize
from ..syscatalog import Table, quote
from ..translate import Translator
from ..types import SqlType, type_from_arrow

#: where an OUTPUT clause ends: the next clause of its statement
_AFTER_OUTPUT = {"VALUES", "SELECT", "DEFAULT", "EXEC", "EXECUTE", "FROM", "WHERE", "OPTION", "WITH"}
_INSERTED, _DELETED = "__ss_out_inserted", "__ss_out_deleted"
_KEYS = "__ss_out_keys"
_ACTIONS = "__ss_out_actions"


@dataclass
class OutputClause:
    """`OUTPUT <select list> [INTO target [(columns)]]`."""

    items: str
    into: list[str] | None = None
    into_columns: list[str] | None = None


@dataclass
class DmlClauses:
    """A DML statement without its TOP and OUTPUT clauses, and those clauses."""

    statement: Statement
    top: str | None = None
    percent: bool = False
    output: OutputClause | None = None


def split_clauses(st: Statement) -> DmlClauses:
    """Cut `TOP (n) [PERCENT]` (right after the verb) and `OUTPUT ...` out of an INSERT/UPDATE/DELETE."""
    toks = st.tokens
    cut: list[tuple[int, int]] = []
    top = None
    percent = False
    if len(toks) > 2 and toks[1].text.upper() == "TOP":
        if toks[2].token_type != TokenType.L_PAREN:
            raise syntax_error(toks[2].text)
        close = _closing(toks, 2)
        top = _text(st, toks, 3, close - 1)
        end = close
        if close + 1 < len(toks) and toks[close + 1].text.upper() == "PERCENT":
            percent = True
            end = close + 1
        cut.append((1, end))
    output = None
    start = _output_start(toks)
    if start is not None:
        stop = len(toks)
        into = None
        depth = 0
        for k in range(start + 1, len(toks)):
            kind = toks[k].token_type
            depth += (kind == TokenType.L_PAREN) - (kind == TokenType.R_PAREN)
            word = toks[k].text.upper() if kind not in (TokenType.STRING, TokenType.IDENTIFIER) else ""
            if depth == 0 and word == "INTO" and into is None:
                into = k
            elif depth == 0 and word in _AFTER_OUTPUT and k > start + 1:
                stop = k
                break
        items_end = into if into is not None else stop
        output = OutputClause(_text(st, toks, start + 1, items_end - 1))
        if into is not None:
            output.into, output.into_columns = _into_target(toks, into + 1, stop)
        cut.append((start, stop - 1))
    rest = _without(st, cut) if cut else st
    if rest.tokens[0].text.upper() == "DELETE" and len(rest.tokens) > 1 and rest.tokens[1].text.upper() != "FROM":
        rest = _with_from(rest)  # `DELETE t WHERE ...`: FROM is optional in T-SQL
    return DmlClauses(rest, top, percent, output)


def _with_from(st: Statement) -> Statement:
    base = st.tokens[0].start
    text = "DELETE FROM " + st.text[st.tokens[1].start - base :]
    return Statement(text, tokenize(text), st.line)


def _closing(toks: list[Token], open_at: int) -> int:
    depth = 0
    for k in range(open_at, len(toks)):
        depth += (toks[k].token_type == TokenType.L_PAREN) - (toks[k].token_type == TokenType.R_PAREN)
        if depth == 0:
            return k
    raise syntax_error(toks[-1].text)


#: an OUTPUT clause comes before these (a later `output` is a name in the statement's query or condition)
_BEFORE_OUTPUT = {"VALUES", "SELECT", "WHERE", "EXEC", "EXECUTE", "OPTION"}


def _output_start(toks: list[Token]) -> int | None:
    """Where OUTPUT begins; in a MERGE it follows every WHEN clause (whose INSERT may hold VALUES or SELECT)."""
    merge = toks[0].text.upper() == "MERGE"
    depth = 0
    for k, t in enumerate(toks):
        depth += (t.token_type == TokenType.L_PAREN) - (t.token_type == TokenType.R_PAREN)
        word = t.text.upper() if t.token_type not in (TokenType.STRING, TokenType.IDENTIFIER) else ""
        assigned = k + 1 < len(toks) and toks[k + 1].token_type == TokenType.EQ  # SET output = ...
        if depth == 0 and word == "OUTPUT" and not assigned:
            return k
        if depth == 0 and word in _BEFORE_OUTPUT and not merge:
            return None
    return None


def _text(st: Statement, toks: list[Token], first: int, last: int) -> str:
    if last < first:
        raise syntax_error(toks[min(first, len(toks) - 1)].text)
    base = st.tokens[0].start
    return st.text[toks[first].start - base : toks[last].end - base + 1]


def _into_target(toks: list[Token], k: int, stop: int) -> tuple[list[str], list[str] | None]:
    parts: list[str] = []
    while k < stop and toks[k].token_type != TokenType.L_PAREN:
        if toks[k].token_type != TokenType.DOT:
            parts.append(toks[k].text)
        k += 1
    if parts and parts[0] == "@":  # a table variable: `@` and its name are two tokens
        parts = ["@" + "".join(parts[1:])]
    if not parts:
        raise syntax_error("INTO")
    if k >= stop:
        return parts, None
    cols = [t.text for t in toks[k + 1 : stop] if t.token_type not in (TokenType.COMMA, TokenType.R_PAREN)]
    return parts, cols


def _without(st: Statement, spans: list[tuple[int, int]]) -> Statement:
    """The statement with token spans blanked out (positions in the text kept, for error lines)."""
    toks = st.tokens
    base = toks[0].start
    text = st.text
    drop: set[int] = set()
    for a, b in spans:
        lo, hi = toks[a].start - base, toks[b].end - base + 1
        text = text[:lo] + " " * (hi - lo) + text[hi:]
        drop.update(range(a, b + 1))
    return Statement(text, [t for i, t in enumerate(toks) if i not in drop], st.line)


class OutputStatements(RowWriter):
    """Rows chosen by TOP and returned (or stored) by OUTPUT."""

    def _top_count(self, clauses: DmlClauses, matching: str) -> int | None:
        """TOP's row count; PERCENT is of the rows `matching` (a SELECT count(*)) selects, rounded up."""
        if clauses.top is None:
            return None
        text = "SELECT " + clauses.top
        value = self._scalar(parse_statement(text, tokenize(text)))
        if value is None:
            raise SqlServerError(1014, "A TOP or FETCH clause contains an invalid value.", severity=15)
        if clauses.percent:
            pct = float(value)  # type: ignore[arg-type]
            if not 0 <= pct <= 100:
                raise SqlServerError(1031, "Percent values must be between 0 and 100.", severity=15)
            r = fetch_first(self._duck(matching))
            total = int(r[0]) if r else 0  # type: ignore[call-overload]
            return math.ceil(total * pct / 100)
        if not isinstance(value, int) or isinstance(value, bool):
            raise SqlServerError(
                1060,
                "The number of rows provided for a TOP or FETCH clauses row count parameter must be an integer.",
                severity=15,
            )
        if value < 0:
            raise SqlServerError(127, "A TOP N or FETCH rowcount value may not be negative.", severity=15)
        return value

    def _choose_rows(self, t: Table, alias: str, where_sql: str, limit: int | None) -> None:
        """Pin the rows an UPDATE/DELETE changes by rowid (registered as _KEYS)."""
        cap = f" LIMIT {limit}" if limit is not None else ""
        keys = self._arrow(f"SELECT rowid AS __ss_rid FROM {t.physical} AS {quote(alias)}{where_sql}{cap}")
        self._close_reader()
        self.cur.register(_KEYS, keys)

    def _rows_of(self, t: Table, condition: str) -> pa.Table:
        cols = ", ".join(quote(c.name) for c in t.columns)
        return self._arrow(f"SELECT rowid AS __ss_rid, {cols} FROM {t.physical} WHERE {condition} ORDER BY rowid")

    @staticmethod
    def chosen() -> str:
        return f"rowid IN (SELECT __ss_rid FROM {_KEYS})"

    @contextlib.contextmanager
    def _own_transaction(self) -> Iterator[None]:
        """A transaction around the statement when the session has none (rolled back if it fails)."""
        if self.trancount:
            yield
            return
        self._duck("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                self.cur.execute("ROLLBACK")
            raise
        self.cur.execute("COMMIT")

    def _last_rowid(self, t: Table) -> int:
        r = fetch_first(self._duck(f"SELECT max(rowid) FROM {t.physical}"))
        return int(r[0]) if r and r[0] is not None else -1  # type: ignore[call-overload]

    def _output(
        self,
        clause: OutputClause,
        t: Table,
        statement: str,
        count: int,
        inserted: pa.Table | None,
        deleted: pa.Table | None,
        actions: pa.Table | None = None,
    ) -> Iterator[Result]:
        """OUTPUT's rows as a result set (its DONE counts the statement's rows), or into a table; `actions` (MERGE)
        gives each row's $action, and a row may then have only one of its images."""
        sql, cols = self._output_query(clause, t, inserted, deleted, actions)
        self.rowcount = count
        if clause.into is None:
            rs = self._result_set(sql, cols)
            rows = list(rs.batches)
            self.rowcount = count
            yield ResultSet(rs.columns, iter(rows), statement.lower())
            return
        if clause.into[0].startswith("@"):
            raise SqlServerError(1087, f'Must declare the table variable "{clause.into[0]}".', severity=15)
        target = self._table(clause.into)
        names = clause.into_columns or [
            c.name for c in target.columns if c.computed is None and not c.is_rowversion and c.identity is None
        ]
        if len(names) != len(cols):
            raise SqlServerError(213, "Column name or number of supplied values does not match table definition.")
        tbl = self._arrow(sql)
        arrays = [
            self._to_result(tbl.column(i).combine_chunks(), c.type or type_from_arrow(tbl.schema.field(i).type))
            for i, c in enumerate(cols)
        ]
        self.insert_arrow(target, names, arrays, rows=tbl.num_rows)
        self.rowcount = count
        yield RowCount(count, statement)

    def _output_query(
        self,
        clause: OutputClause,
        t: Table,
        inserted: pa.Table | None,
        deleted: pa.Table | None,
        actions: pa.Table | None = None,
    ) -> tuple[str, list[OutCol]]:
        """The OUTPUT list over the inserted/deleted rows as DuckDB SQL, with its result columns."""
        text = "SELECT " + clause.items
        sel = parse_statement(text, tokenize(text))
        if not isinstance(sel, exp.Select) or sel.args.get("from_") or sel.args.get("from"):
            raise syntax_error("OUTPUT")
        # in a MERGE a row may lack one image: every column can then be NULL
        cols = [
            OutCol(c.name, c.type, c.nullable or actions is not None, c.identity is not None, c.computed is not None)
            for c in t.columns
        ]
        scope = []
        froms = []
        for name, rows, reg in (("inserted", inserted, _INSERTED), ("deleted", deleted, _DELETED)):
            if rows is None:
                continue
            scope.append(Source(name, cols, t))
            self._close_reader()
            self.cur.register(reg, rows)
            froms.append(f"{reg} AS {quote(name)}")
        if actions is not None:  # MERGE: $action names what happened to each row
            scope.append(Source("", [OutCol("$action", SqlType("nvarchar", 10), False)]))
            self.cur.register(_ACTIONS, actions)
        if any(isinstance(e, exp.Star) for e in sel.expressions):
            raise syntax_error("*")
        tr = Translator(self._context())
        tr._expand_stars(sel, scope)
        items = [tr._rewrite_tree(e, [scope], scope, projection=True) for e in sel.expressions]
        self._register_views(tr.ctx)
        out = [tr._outcol(e) for e in items]
        source = froms[0] if len(froms) == 1 else f"{froms[0]} JOIN {froms[1]} USING (__ss_rid)"
        order = f"{quote(scope[0].alias)}.__ss_rid"
        if actions is not None:
            source = f"{froms[0]} FULL JOIN {froms[1]} USING (__ss_rid) JOIN {_ACTIONS} USING (__ss_rid)"
            order = "__ss_rid"
        return f"SELECT {', '.join(duck_sql(e) for e in items)} FROM {source} ORDER BY {order}", out

    def _release_rows(self) -> None:
        """Drop the registered key and OUTPUT tables (they hold the statement's rows in memory)."""
        self._close_reader()
        for name in (_KEYS, _INSERTED, _DELETED, _ACTIONS):
            with contextlib.suppress(duckdb.Error):
                self.cur.unregister(name)
