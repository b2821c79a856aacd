"""MERGE, as "MERGE (Transact-SQL)" documents it: WHEN MATCHED [AND ...] THEN UPDATE/DELETE (the first clause whose
condition holds acts), WHEN NOT MATCHED [BY TARGET] [AND ...] THEN INSERT, WHEN NOT MATCHED BY SOURCE [AND ...]
THEN UPDATE/DELETE, the terminating semicolon (error 10713), a target row matched by several source rows (error
8672), and one rows-affected count for all three actions.

Every decision is taken on the table as it was before the statement: the matched and unmatched target rows (by
rowid, with the clause that acts on each and its new values) are computed and registered first, then the source
rows to insert are written (their NOT EXISTS still sees the old table), then the updates and deletes run by
rowid — all in one transaction."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa
from sqlglot import exp

from ..results import Result, RowCount, SqlServerError
from ..session import fetch_first
from ..sqlexpr import duck_sql
from ..sqltext import Statement, parse_statement, syntax_error, unsupported
from ..syscatalog import Column, Table, quote
from ..translate import Translator
from .dml import DmlStatements
from .joined import JoinedRows, bind_joined
from .output import OutputClause, split_clauses

_MATCHED, _UNMATCHED = "__ss_merge_matched", "__ss_merge_unmatched"

MUST_END_WITH_SEMICOLON = SqlServerError(
    10713, "A MERGE statement must be terminated by a semi-colon (;).", severity=15
)
MORE_THAN_ONCE = SqlServerError(
    8672,
    "The MERGE statement attempted to UPDATE or DELETE the same row more than once. This happens when a target row "
    "matches more than one source row. A MERGE statement cannot UPDATE/DELETE the same row of the target table "
    "multiple times. Refine the ON clause to ensure a target row matches at most one source row, or use the GROUP BY "
    "clause to group the source rows.",
)


@dataclass
class _Branch:
    """One WHEN ... THEN UPDATE/DELETE clause: its number among its kind, and the SET list (empty for DELETE)."""

    number: int
    sets: list[tuple[Column, exp.Expression]] = field(default_factory=list)
    delete: bool = False


class MergeStatements(DmlStatements):
    """MERGE INTO target USING source ON ... WHEN ..."""

    def _merge(self, st: Statement) -> Iterator[Result]:
        if not st.terminated:
            raise MUST_END_WITH_SEMICOLON
        clauses = split_clauses(st)
        if clauses.percent:
            raise unsupported("MERGE TOP ... PERCENT")
        limit = self._top_count(clauses, "")
        tree = parse_statement(clauses.statement.text, clauses.statement.tokens)
        if not isinstance(tree, exp.Merge) or not isinstance(tree.this, exp.Table):
            raise syntax_error("MERGE")
        target: exp.Table = tree.this
        t = self._table([p.name for p in (target.args.get("catalog"), target.args.get("db")) if p is not None] +
                        [target.name])  # fmt: skip
        source = _source(tree.args["using"])
        on = tree.args["on"]
        whens = list(tree.args["whens"].expressions)
        matched = [w for w in whens if w.args.get("matched")]
        by_source = [w for w in whens if not w.args.get("matched") and w.args.get("source")]
        by_target = [w for w in whens if not w.args.get("matched") and not w.args.get("source")]
        if len(by_target) > 1:
            raise syntax_error("WHEN")
        own = self.trancount == 0
        if own:
            self._duck("BEGIN TRANSACTION")
        try:
            n, results = self._merge_rows(t, target, source, on, (matched, by_source, by_target), clauses.output, limit)
        except BaseException:
            if own:  # DuckDB may already have ended the transaction on the error
                with contextlib.suppress(duckdb.Error):
                    self.cur.execute("ROLLBACK")
            raise
        finally:
            self._release_rows()
        if own:
            self._duck("COMMIT")
        self.rowcount = n
        yield from results

    def _merge_rows(
        self,
        t: Table,
        target: exp.Table,
        source: exp.Expression,
        on: exp.Expression,
        whens: tuple[list[exp.When], list[exp.When], list[exp.When]],
        output: OutputClause | None,
        limit: int | None,
    ) -> tuple[int, list[Result]]:
        """The three actions (WHEN MATCHED, NOT MATCHED BY SOURCE, BY TARGET) on the table as it was: the number of
        rows they changed, and the statement's results (OUTPUT's rows with $action, or its count). TOP's `limit`
        caps the rows acted on (which ones SQL Server leaves open: here matched, then unmatched, then inserted)."""
        matched, by_source, by_target = whens
        pinned: list[tuple[str, list[_Branch]]] = []
        if matched:
            first = target.copy()
            first.set("joins", [exp.Join(this=source.copy(), on=on.copy())])
            branches, taken = self._pin(t, target, first, None, matched, limit)
            pinned.append((_MATCHED, branches))
            limit = None if limit is None else limit - taken
        if by_source:
            missing = exp.Not(this=exp.Exists(this=exp.select("1").from_(source.copy()).where(on.copy())))
            branches, taken = self._pin(t, target, target.copy(), missing, by_source, limit)
            pinned.append((_UNMATCHED, branches))
            limit = None if limit is None else limit - taken
        try:
            chosen = " UNION ALL ".join(f"SELECT __ss_rid FROM {name}" for name, _ in pinned) or "SELECT NULL"
            before = self._rows_of(t, f"rowid IN ({chosen})") if output is not None else None
            last = self._last_rowid(t)
            n = self._merge_insert(t, target, source, on, by_target[0], limit) if by_target else 0
            updated = []
            for name, branches in pinned:
                for b in branches:
                    n += self._merge_change(t, target, name, b)
                    if b.sets:
                        updated.append(f"SELECT __ss_rid FROM {name} WHERE __ss_k = {b.number}")
            if updated:
                self._check_changed_keys(t, self.trancount == 0)  # a user transaction ends with it too
            if output is None or before is None:
                return n, [RowCount(n, "MERGE")]
            after = self._rows_of(t, f"rowid > {last} OR rowid IN ({' UNION ALL '.join(updated) or 'SELECT NULL'})")
            return n, list(self._output(output, t, "MERGE", n, after, before, merge_actions(after, before, last)))
        finally:
            for name, _ in pinned:
                self.cur.unregister(name)

    def _pin(
        self,
        t: Table,
        target: exp.Table,
        first: exp.Expression,
        where: exp.Expression | None,
        whens: list[exp.When],
        limit: int | None,
    ) -> tuple[list[_Branch], int]:
        """Register, per target row `first` reaches (WHERE `where`), the number of the clause that acts on it and
        the new values of the UPDATE clauses, at most `limit` rows: as _MATCHED when `first` joins the source (a
        row matched twice is then error 8672), else as _UNMATCHED. The branches, and the rows registered."""
        check_once = where is None
        branches: list[_Branch] = []
        ifs: list[exp.Expression] = []
        values: list[exp.Expression] = []
        for k, w in enumerate(whens):
            then = w.args["then"]
            branch = _Branch(k, delete=isinstance(then, exp.Var) and then.name.upper() == "DELETE")
            if isinstance(then, exp.Update):
                branch.sets = self._set_list(t, then)
                values += [v for _, v in branch.sets]
            elif not branch.delete:
                raise SqlServerError(10711, "An action of type 'INSERT' is not allowed in the 'WHEN MATCHED' clause "
                                     "of a MERGE statement.", severity=15)  # fmt: skip
            condition = w.args.get("condition") or exp.EQ(this=exp.Literal.number(1), expression=exp.Literal.number(1))
            ifs.append(exp.If(this=condition, true=exp.Literal.number(k)))
            branches.append(branch)
        ctx = self._context()
        by_alias = exp.Table(this=exp.to_identifier(target.alias or target.name))  # the target row in `first`
        joined = bind_joined(Translator(ctx), by_alias, first, where, [exp.Case(ifs=ifs), *values])
        self._register_views(ctx)
        choice, *rewritten = joined.select.expressions
        projections = [(duck_sql(choice), "__ss_k")]
        for b in branches:
            for c, _ in b.sets:
                value = self._assign_expr(t, c, rewritten.pop(0))
                projections.append(
                    (f"CASE WHEN __ss_k = {b.number} THEN {value} END", f"__ss_v{b.number}_{c.column_id}")
                )
        name = _MATCHED if check_once else _UNMATCHED
        if check_once:
            self._refuse_double_match(joined, projections[:1])
        rows = self._arrow(f"SELECT * FROM ({joined.sql(projections)}) WHERE __ss_k IS NOT NULL")
        if limit is not None:
            rows = rows.slice(0, max(limit, 0))
        self._close_reader()
        self.cur.register(name, rows)
        return branches, rows.num_rows

    def _refuse_double_match(self, joined: JoinedRows, choice: list[tuple[str, str]]) -> None:
        """Error 8672 when a target row some clause would change matches more than one source row."""
        sql = joined.sql(choice, distinct=False)
        r = fetch_first(self._duck(f"SELECT count(*) - count(DISTINCT __ss_rid) FROM ({sql}) WHERE __ss_k IS NOT NULL"))
        if r and r[0]:
            raise MORE_THAN_ONCE

    def _merge_change(self, t: Table, target: exp.Table, pinned: str, b: _Branch) -> int:
        """One UPDATE/DELETE clause applied to the rows pinned for it."""
        rows = f"rowid IN (SELECT __ss_rid FROM {pinned} WHERE __ss_k = {b.number})"
        alias = target.alias or target.name
        if b.delete:
            r = fetch_first(self._duck(f"DELETE FROM {t.physical} WHERE {rows}"))
        else:
            sets = [
                (c, f"(SELECT __ss_v{b.number}_{c.column_id} FROM {pinned} WHERE __ss_rid = {quote(alias)}.rowid)")
                for c, _ in b.sets
            ]
            sql, _ = self._update_sql(t, alias, sets)
            r = fetch_first(self._duck(f"{sql} WHERE {rows}"))
        return int(r[0]) if r else 0  # type: ignore[call-overload]

    def _merge_insert(
        self, t: Table, target: exp.Table, source: exp.Expression, on: exp.Expression, w: exp.When, limit: int | None
    ) -> int:
        """WHEN NOT MATCHED [BY TARGET] [AND ...] THEN INSERT [(columns)] VALUES (...): the source rows no target
        row matches (DEFAULT values left to the column's default)."""
        then = w.args["then"]
        if not isinstance(then, exp.Insert) or not isinstance(then.expression, exp.Tuple):
            raise unsupported("MERGE ... INSERT other than VALUES")
        names = (
            [c.name for c in then.this.expressions]
            if isinstance(then.this, exp.Tuple)
            else [c.name for c in t.columns if c.computed is None and not c.is_rowversion and c.identity is None]
        )
        values = list(then.expression.expressions)
        if len(values) != len(names):
            raise SqlServerError(
                10714 if len(values) < len(names) else 10715,
                "The number of columns in the INSERT clause of a MERGE statement must match the number of values.",
                severity=15,
            )
        kept = [(n, v) for n, v in zip(names, values, strict=True) if not _is_default(v)]
        found = exp.Exists(this=exp.select("1").from_(target.copy()).where(on.copy()))
        condition: exp.Expression = exp.Not(this=found)
        if w.args.get("condition") is not None:
            condition = exp.And(this=condition, expression=w.args["condition"].copy())
        query = exp.select(*[v.copy() for _, v in kept]).from_(source.copy()).where(condition)
        return self._insert_query(t, [n for n, _ in kept], query, None if limit is None else max(limit, 0))


def _source(using: exp.Expression) -> exp.Expression:
    """USING's table source; (VALUES (...), ...) AS s (a, b) read as a UNION ALL of one-row SELECTs."""
    if not isinstance(using, exp.Values):
        return using
    alias = using.args.get("alias")
    names = [c.name for c in alias.columns] if alias is not None else []
    rows = [
        exp.select(*[exp.alias_(v.copy(), n) for v, n in zip(row.expressions, names, strict=False)])
        for row in using.expressions
    ]
    union: exp.Expression = rows[0]
    for r in rows[1:]:
        union = exp.union(union, r, distinct=False)
    return exp.Subquery(this=union, alias=exp.TableAlias(this=exp.to_identifier(alias.name if alias else "s")))


def _is_default(v: exp.Expression) -> bool:
    return isinstance(v, (exp.Var, exp.Column)) and not getattr(v, "table", "") and v.name.upper() == "DEFAULT"


def merge_actions(inserted: pa.Table, deleted: pa.Table, last: int) -> pa.Table:
    """OUTPUT's $action per changed row (by __ss_rid): INSERT for a row above the old last rowid, UPDATE for one
    with both images, DELETE for one with only its old image."""
    new = set(inserted.column("__ss_rid").to_pylist())
    old = set(deleted.column("__ss_rid").to_pylist())
    rids = sorted(new | old)
    actions = ["INSERT" if r > last else "UPDATE" if r in old and r in new else "DELETE" for r in rids]
    return pa.table({"__ss_rid": pa.array(rids, pa.int64()), "$action": pa.array(actions, pa.string())})
