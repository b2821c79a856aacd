"""UPDATE ... FROM and DELETE ... FROM with joins, as T-SQL has them: the statement names its target (a table, or
an alias of one of the FROM sources), and each target row the FROM clause reaches is changed once.

"UPDATE (Transact-SQL)", FROM clause: the target may appear in FROM (by its name or an alias) — then that
instance is the row being changed — or not at all, when its columns are still visible (UPDATE dbo.t ... FROM dbo.s
WHERE s.id = t.id); a target row matched by several source rows is updated once, from one of them (SQL Server
does not say which). DuckDB's own UPDATE ... FROM keeps the target out of FROM, so the rows are found by a SELECT
over the T-SQL FROM clause and pinned by the target's rowid."""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp
from sqlglot.tokens import TokenType

from ..sqlexpr import duck_sql
from ..sqltext import Statement
from ..translate import Translator


@dataclass
class JoinedRows:
    """The target's table-name parts, its alias in the FROM clause, and the bound SELECT over that clause whose
    projections are the given values, rewritten (to be replaced by what the caller selects)."""

    target_parts: list[str]
    alias: str
    select: exp.Select

    def rowid(self) -> exp.Expression:
        return exp.Column(this=exp.Identifier(this="rowid"), table=exp.to_identifier(self.alias, quoted=True))

    def sql(self, projections: list[tuple[str, str]], distinct: bool = True) -> str:
        """SELECT (DISTINCT ON the target row) its rowid as __ss_rid plus (DuckDB expression, name) pairs."""
        sel = self.select.copy()
        items = [exp.Alias(this=self.rowid(), alias=exp.to_identifier("__ss_rid"))]
        items += [exp.Alias(this=exp.Var(this=body), alias=exp.to_identifier(name)) for body, name in projections]
        sel.set("expressions", items)
        return f"SELECT {'DISTINCT ON (__ss_rid) ' if distinct else ''}* FROM ({duck_sql(sel)}) AS __ss_j"


def target_parts(target: exp.Table, first: exp.Expression) -> list[str]:
    """The name parts of the table an UPDATE/DELETE target stands for, given its FROM clause."""
    hit = _target_source(target, [first, *(j.this for j in first.args.get("joins") or [])])
    return _parts(hit if hit is not None else target)


def bind_joined(
    tr: Translator, target: exp.Table, first: exp.Expression, where: exp.Expression | None, values: list[exp.Expression]
) -> JoinedRows:
    """Bind the FROM clause (`first` with its joins) and the target in it; WHERE and `values` are rewritten in its
    scope."""
    joins = list(first.args.get("joins") or [])
    first.set("joins", None)
    hit = _target_source(target, [first, *(j.this for j in joins)])
    if hit is None:  # the target is not in FROM: it joins the sources, its rows filtered by WHERE
        own = target.copy()
        own.set("alias", None)
        sel = exp.Select(expressions=values).from_(own, copy=False)
        sel.set("joins", [exp.Join(this=first), *joins])
        alias, parts = target.name, _parts(target)
    else:
        sel = exp.Select(expressions=values).from_(first, copy=False)
        sel.set("joins", joins)
        alias, parts = hit.alias or hit.name, _parts(hit)
    if where is not None:
        sel.set("where", exp.Where(this=where))
    tr.select(sel, [])
    return JoinedRows(parts, alias, sel)


def _parts(table: exp.Table) -> list[str]:
    return [p.name for p in (table.args.get("catalog"), table.args.get("db")) if p is not None] + [table.name]


def _target_source(target: exp.Table, sources: list[exp.Expression]) -> exp.Table | None:
    """The FROM source the target names: by alias first, else the same table without another alias."""
    tables = [s for s in sources if isinstance(s, exp.Table)]
    if not target.args.get("db"):
        for s in tables:
            if s.alias and s.alias.lower() == target.name.lower():
                return s
    want = [p.lower() for p in _parts(target)]
    for s in tables:
        have = [p.lower() for p in _parts(s)]
        same_schema = len(want) == 1 or want[:-1] == have[:-1] or (len(have) == 1 and want[-2] == "dbo")
        if have[-1] == want[-1] and same_schema and (not s.alias or s.alias.lower() == s.name.lower()):
            return s
    return None


def without_first_from(st: Statement) -> Statement:
    """DELETE FROM t FROM t JOIN ... read as DELETE t FROM ... (sqlglot parses only the second form)."""
    toks = st.tokens
    froms = [i for i, t in enumerate(toks) if t.token_type == TokenType.FROM]
    if len(froms) < 2 or froms[0] != 1 or any(t.token_type == TokenType.L_PAREN for t in toks[: froms[1]]):
        return st
    base = toks[0].start
    lo, hi = toks[1].start - base, toks[1].end - base + 1
    text = st.text[:lo] + " " * (hi - lo) + st.text[hi:]
    return Statement(text, [t for i, t in enumerate(toks) if i != 1], st.line)
