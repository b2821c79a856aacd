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

from sqlglot import exp

from .fixes import NodeFixes
from .results import SqlServerError
from .sqlexpr import Context, OutCol, Source, literal, type_of, view_table_name
from .sqltext import _EMPTY_BINARY, Statement, parse_statement, split_batch, syntax_error, tokenize, unsupported
from .syscatalog import VIEWS, Table
from .typerules import union_type
from .types import SqlType


class Translator(NodeFixes):
    """A T-SQL tree rewritten for DuckDB against the catalog: tables and columns resolved, every node typed."""

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
            # each column takes the type of highest precedence of its branches, lengths and scales widened
            left = [_union_col(a, b) for a, b in zip(left, right, strict=True)]
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
                new = exp.column(c.name, s.alias or None, quoted=True)
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


def _union_col(a: OutCol, b: OutCol) -> OutCol:
    """One column of a set operation: storage forms stay as they are when both branches share one."""
    if a.is_raw or b.is_raw:
        same = a.is_raw and b.is_raw and a.type is not None and b.type is not None and a.type.name == b.type.name
        return OutCol(a.name, union_type([a.type, b.type]), a.nullable or b.nullable, raw=True) if same else a
    return OutCol(a.name, union_type([a.type, b.type]) or a.type, a.nullable or b.nullable, raw=False)


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
