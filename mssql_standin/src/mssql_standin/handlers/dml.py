"""INSERT (with a fast path for literal VALUES), UPDATE and DELETE."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
from sqlglot import exp
from sqlglot.tokens import TokenType

from .. import ddl, variant
from ..results import Result, RowCount, SqlServerError
from ..session import Stored, fetch_first, storage_arrow_type
from ..sqlexpr import Context, Source, duck_sql, type_of
from ..sqltext import Statement, parse_statement, syntax_error, unsupported
from ..syscatalog import Column, Table, quote
from ..translate import Translator
from ..types import (
    SqlType,
    scalar_to_storage,
    type_from_arrow,
)
from .assign import Assignments
from .insert_text import NOT_LITERAL, fast_literal, strip_insert_hints
from .joined import bind_joined, target_parts, without_first_from
from .output import DmlClauses, split_clauses

#: the rows an UPDATE ... FROM changes: target rowid and new values (registered while the statement runs)
_JOINED = "__ss_joined_rows"


class DmlStatements(Assignments):
    """INSERT, UPDATE, DELETE."""

    def _insert(self, st: Statement) -> Iterator[Result]:
        clauses = split_clauses(strip_insert_hints(st))
        if clauses.output is None and clauses.top is None:
            n = self._insert_rows(clauses.statement, None)
            self.rowcount = n
            yield RowCount(n, "INSERT")
            return
        if clauses.percent:
            raise unsupported("INSERT TOP ... PERCENT")
        c = ddl.Cursor(clauses.statement.text, clauses.statement.tokens)
        c.expect("INSERT")
        c.accept("INTO")
        t = self._table(c.qualified())
        if t.view and clauses.output is not None:
            raise unsupported("OUTPUT on a view")
        limit = self._top_count(clauses, "")
        try:
            with self._own_transaction():
                before = self._last_rowid(t) if clauses.output is not None else -1
                n = self._insert_rows(clauses.statement, limit)
                results: list[Result] = [RowCount(n, "INSERT")]
                if clauses.output is not None:
                    inserted = self._rows_of(t, f"rowid > {before}")
                    results = list(self._output(clauses.output, t, "INSERT", n, inserted, None))
        finally:
            self._release_rows()
        self.rowcount = n
        yield from results

    def _insert_rows(self, st: Statement, limit: int | None) -> int:
        """The rows of an INSERT (at most `limit`, for TOP) written; their count."""
        fast = self._fast_insert_values(st) if limit is None else None
        if fast is not None:
            return fast
        tree = parse_statement(st.text, st.tokens)
        if not isinstance(tree, exp.Insert):
            raise syntax_error("INSERT")
        target = tree.this
        cols_given: list[str] | None = None
        if isinstance(target, exp.Schema):
            cols_given = [i.name for i in target.expressions]
            target = target.this
        if not isinstance(target, exp.Table):
            raise syntax_error("INSERT")
        t = self._table(
            [p.name for p in (target.args.get("catalog"), target.args.get("db")) if p is not None] + [target.name]
        )
        names = cols_given or [
            c.name for c in t.columns if c.computed is None and not c.is_rowversion and c.identity is None
        ]
        if cols_given is None and self.state.identity_insert == t.object_id:
            raise SqlServerError(
                8101,
                f"An explicit value for the identity column in table '{t.two_part}' can only be specified "
                "when a "
                "column list is used and IDENTITY_INSERT is ON.",
            )
        src = tree.expression
        if src is None and tree.args.get("default"):
            n = self.insert_arrow(t, [], [], rows=1)
        elif isinstance(src, exp.Values):
            if limit is not None:
                src.set("expressions", src.expressions[:limit])
            n = self._insert_values(t, names, src)
        elif isinstance(src, (exp.Select, exp.SetOperation, exp.Subquery)):
            n = self._insert_query(t, names, src, limit)
        else:
            raise unsupported("this INSERT form")
        return n

    def _insert_query(self, t: Table, names: list[str], src: exp.Expression, limit: int | None) -> int:
        """INSERT INTO t (names) <query>: the query's rows (at most `limit`) converted to the columns' types."""
        sql, cols, _ = self._translate_query(src)
        if len(cols) != len(names):
            raise SqlServerError(
                121 if len(cols) > len(names) else 120,
                "The select list for the INSERT statement contains "
                + ("more" if len(cols) > len(names) else "fewer")
                + " items than the insert list. The number of SELECT values must match the number of "
                "INSERT columns.",
                state=1,
                severity=15,
            )
        tbl = self._arrow(sql)
        if limit is not None:
            tbl = tbl.slice(0, limit)
        arrays = []
        for i, c in enumerate(cols):
            ty = c.type or type_from_arrow(tbl.schema.field(i).type)
            arr = self._to_result(tbl.column(i).combine_chunks(), ty)
            target_col = t.col(names[i])
            if target_col is not None and target_col.type.name == "sql_variant" and c.type is not None:
                arr = variant.typed_array(arr, c.type)  # each value keeps its source type as base type
            arrays.append(arr)
        return self.insert_arrow(t, names, arrays, rows=tbl.num_rows)

    def _fast_insert_values(self, st: Statement) -> int | None:
        """INSERT ... VALUES of plain literals (what bulk-ish clients send, 1000 rows at a time) read straight
        from the tokens; None sends the statement down the general path."""
        c = ddl.Cursor(st.text, st.tokens)
        c.expect("INSERT")
        c.accept("INTO")
        try:
            parts = c.qualified()
        except SqlServerError:
            return None
        names: list[str] | None = None
        if c.kind() == TokenType.L_PAREN:
            c.next()
            names = []
            while c.kind() != TokenType.R_PAREN:
                if c.kind() == TokenType.COMMA:
                    c.next()
                    continue
                if c.kind() not in (TokenType.VAR, TokenType.IDENTIFIER) and not c.peek().isidentifier():
                    return None
                names.append(c.next().text)
            c.next()
        if c.peek() != "VALUES":
            return None
        c.next()
        t = self._table(parts)
        if t.view:
            return None
        if names is None:
            if self.state.identity_insert == t.object_id:
                return None
            names = [x.name for x in t.columns if x.computed is None and not x.is_rowversion and x.identity is None]
        types = [t.column(n).type for n in names]
        if any(ty.name == "sql_variant" for ty in types):  # the general path knows each literal's type: its base type
            return None
        cols: list[list[object]] = [[] for _ in names]
        toks = c.toks
        i = c.i
        n = len(toks)
        while i < n:
            if toks[i].token_type != TokenType.L_PAREN:
                return None
            i += 1
            k = 0
            while True:
                if k >= len(names):
                    return None
                v, i = fast_literal(toks, i, types[k])
                if v is NOT_LITERAL:
                    return None
                cols[k].append(v)
                k += 1
                if i < n and toks[i].token_type == TokenType.COMMA:
                    i += 1
                    continue
                if i < n and toks[i].token_type == TokenType.R_PAREN and k == len(names):
                    i += 1
                    break
                return None
            if i < n:
                if toks[i].token_type != TokenType.COMMA:
                    return None
                i += 1
        arrays = []
        for k, ty in enumerate(types):
            vals = [scalar_to_storage(v, ty, self.state.dateformat) for v in cols[k]]
            arrays.append(pa.array(vals, storage_arrow_type(ty)))
        return self.insert_arrow(t, names, arrays, rows=len(cols[0]) if cols else 0, storage=True)

    def _insert_values(self, t: Table, names: list[str], values: exp.Values) -> int:
        rows = values.expressions
        ctx = self._context()
        tr = Translator(ctx)
        width = len(names)
        cols: list[list[object]] = [[] for _ in range(width)]
        col_types: list[SqlType] = []
        for nm in names:
            c = t.col(nm)
            if c is None:
                raise SqlServerError(207, f"Invalid column name '{nm}'.")
            col_types.append(c.type)
        defaults_mask: list[list[bool]] = [[] for _ in range(width)]
        for row in rows:
            exprs = row.expressions if isinstance(row, exp.Tuple) else [row]
            if len(exprs) != width:
                raise SqlServerError(
                    109 if len(exprs) < width else 110,
                    "There are more columns in the INSERT statement than values specified in the VALUES "
                    "clause. The "
                    "number of values in the VALUES clause must match the number of columns specified in the "
                    "INSERT "
                    "statement."
                    if len(exprs) < width
                    else "There are fewer columns in the INSERT statement than values specified in the "
                    "VALUES clause. "
                    "The number of values in the VALUES clause must match the number of columns specified in "
                    "the "
                    "INSERT statement.",
                    severity=15,
                )
            for k, e in enumerate(exprs):
                if (
                    isinstance(e, exp.Var)
                    and e.name.upper() == "DEFAULT"
                    or isinstance(e, exp.Column)
                    and e.name.upper() == "DEFAULT"
                    and not e.table
                ):
                    cols[k].append(None)
                    defaults_mask[k].append(True)
                    continue
                defaults_mask[k].append(False)
                node = tr._rw(e, [], None)
                nt = type_of(node)
                if node.meta and "ss_const" in node.meta and not node.meta.get("ss_raw"):
                    cols[k].append(node.meta["ss_const"])
                elif "ss_storage" in (node.meta or {}) and nt is not None and nt == col_types[k]:
                    cols[k].append(Stored(node.meta["ss_storage"]))
                else:
                    tr.ctx.views.clear()
                    val = self._scalar_node(node, ctx)
                    cols[k].append(val)
                if col_types[k].name == "sql_variant" and nt is not None:  # the value's type is its base type
                    v = cols[k][-1]
                    cols[k][-1] = variant.Typed(nt, v.value, True) if isinstance(v, Stored) else variant.Typed(nt, v)
        arrays = []
        for k, ty in enumerate(col_types):
            vals = [
                scalar_to_storage(v, ty, self.state.dateformat) if not isinstance(v, Stored) else v.value
                for v in cols[k]
            ]
            arrays.append(pa.array(vals, storage_arrow_type(ty)))
        default_rows = [m for m in defaults_mask]
        return self.insert_arrow(t, names, arrays, rows=len(rows), storage=True, default_rows=default_rows)

    def _dml_target(
        self, st: Statement, statement: type[exp.Expression], refused: tuple[str, ...], construct: str
    ) -> tuple[exp.Expression, Table, exp.Table, Context, Translator, Source]:
        """UPDATE/DELETE parsed, its `refused` clauses refused as `construct`, its target table resolved and bound
        as the statement's scope: (tree, table, target node, context, translator, scope)."""
        tree = parse_statement(st.text, st.tokens)
        if not isinstance(tree, statement):
            raise syntax_error(statement.__name__.upper())
        if any(tree.args.get(k) for k in refused):
            raise unsupported(construct)
        target = tree.this
        if not isinstance(target, exp.Table):
            raise syntax_error(tree.key.upper())
        parts = [p.name for p in (target.args.get("catalog"), target.args.get("db")) if p is not None] + [target.name]
        t = self._table(parts)
        ctx = self._context()
        tr = Translator(ctx)
        return tree, t, target, ctx, tr, tr.bind_table(target)

    def _update(self, st: Statement) -> Iterator[Result]:
        clauses = split_clauses(st)
        tree = parse_statement(clauses.statement.text, clauses.statement.tokens)
        from_ = tree.args.get("from_") or tree.args.get("from")
        if isinstance(tree, exp.Update) and isinstance(tree.this, exp.Table) and from_ is not None:
            yield from self._update_joined(clauses, tree, from_.this)
            return
        tree, t, target, ctx, tr, src = self._dml_target(
            clauses.statement, exp.Update, ("from", "from_", "returning"), "UPDATE ... FROM"
        )
        target.set("alias", None)
        sets = [(c, self._assign_expr(t, c, tr._rw(val, [[src]], None))) for c, val in self._set_list(t, tree)]
        where = tree.args.get("where")
        if where is not None:
            tr._rewrite_tree(where.this, [[src]], [src])
        self._register_views(ctx)
        where_sql = f" WHERE {duck_sql(where.this)}" if where is not None else ""
        yield from self._apply_update(clauses, t, src.alias, sets, where_sql)

    def _update_joined(self, clauses: DmlClauses, tree: exp.Update, first: exp.Expression) -> Iterator[Result]:
        """UPDATE target SET ... FROM sources [WHERE]: the new values computed once per target row over the
        joined FROM clause, registered as rows keyed by rowid, then assigned."""
        t = self._table(target_parts(tree.this, first))
        columns = self._set_list(t, tree)
        ctx = self._context()
        tr = Translator(ctx)
        where = tree.args.get("where")
        joined = bind_joined(tr, tree.this, first, where.this if where else None, [v for _, v in columns])
        values = [self._assign_expr(t, c, v) for (c, _), v in zip(columns, joined.select.expressions, strict=True)]
        self._register_views(ctx)
        rows = self._arrow(joined.sql([(v, f"__ss_v{i}") for i, v in enumerate(values)]))
        self._close_reader()
        self.cur.register(_JOINED, rows)
        alias = quote(joined.alias)
        sets = [
            (c, f"(SELECT __ss_v{i} FROM {_JOINED} WHERE __ss_rid = {alias}.rowid)") for i, (c, _) in enumerate(columns)
        ]
        try:
            yield from self._apply_update(
                clauses, t, joined.alias, sets, f" WHERE rowid IN (SELECT __ss_rid FROM {_JOINED})"
            )
        finally:
            self.cur.unregister(_JOINED)

    def _set_list(self, t: Table, tree: exp.Expression) -> list[tuple[Column, exp.Expression]]:
        """The SET list's columns (207, 8102, 271, 272 refused as SQL Server refuses them) and their values."""
        out = []
        for e in tree.expressions:
            if not isinstance(e, exp.EQ) or not isinstance(e.this, exp.Column):
                raise syntax_error("SET")
            c = t.col(e.this.name)
            if c is None:
                raise SqlServerError(207, f"Invalid column name '{e.this.name}'.")
            if c.identity is not None:
                raise SqlServerError(8102, f"Cannot update identity column '{c.name}'.")
            if c.computed is not None:
                raise SqlServerError(
                    271,
                    f'The column "{c.name}" cannot be modified because it is either a computed '
                    "column or is the result of a UNION operator.",
                )
            if c.is_rowversion:
                raise SqlServerError(272, "Cannot update a timestamp column.")
            out.append((c, e.expression))
        return out

    def _apply_update(
        self, clauses: DmlClauses, t: Table, alias_name: str, sets: list[tuple[Column, str]], where_sql: str
    ) -> Iterator[Result]:
        """UPDATE t SET each column to its DuckDB expression (a new rowversion too) where where_sql holds."""
        sql, key_table = self._update_sql(t, alias_name, sets)
        if clauses.output is None and clauses.top is None:
            n = self._guarded(sql + where_sql, key_table)
            self.rowcount = n
            yield RowCount(n, "UPDATE")
            return
        yield from self._changed_rows(clauses, t, alias_name, where_sql, sql, key_table)

    def _changed_rows(
        self, clauses: DmlClauses, t: Table, alias: str, where_sql: str, change: str, key_table: Table | None
    ) -> Iterator[Result]:
        """UPDATE/DELETE (`change`, without its WHERE) of the rows TOP chooses, with OUTPUT's rows."""
        if t.view and clauses.output is not None:
            raise unsupported("OUTPUT on a view")
        statement = "UPDATE" if change.startswith("UPDATE") else "DELETE"
        try:
            limit = self._top_count(clauses, f"SELECT count(*) FROM {t.physical} AS {quote(alias)}{where_sql}")
            self._choose_rows(t, alias, where_sql, limit)
            before = self._rows_of(t, self.chosen()) if clauses.output is not None else None
            n = self._guarded(f"{change} WHERE {self.chosen()}", key_table)
            results: list[Result] = [RowCount(n, statement)]
            if clauses.output is not None:
                after = self._rows_of(t, self.chosen()) if statement == "UPDATE" else None
                results = list(self._output(clauses.output, t, statement, n, after, before))
        finally:
            self._release_rows()
        self.rowcount = n
        yield from results

    def _delete(self, st: Statement) -> Iterator[Result]:
        clauses = split_clauses(st)
        clauses.statement = without_first_from(clauses.statement)
        tree = parse_statement(clauses.statement.text, clauses.statement.tokens)
        named = tree.args.get("tables") if isinstance(tree, exp.Delete) else None
        if named and len(named) == 1 and isinstance(named[0], exp.Table) and not tree.args.get("using"):
            yield from self._delete_joined(clauses, tree, named[0])
            return
        tree, t, _target, ctx, tr, src = self._dml_target(
            clauses.statement, exp.Delete, ("using", "returning", "tables"), "DELETE ... FROM join"
        )
        where = tree.args.get("where")
        if where is not None:
            tr._rewrite_tree(where.this, [[src]], [src])
        self._register_views(ctx)
        where_sql = f" WHERE {duck_sql(where.this)}" if where is not None else ""
        if clauses.output is not None or clauses.top is not None:
            change = f"DELETE FROM {t.physical} AS {quote(src.alias)}"
            yield from self._changed_rows(clauses, t, src.alias, where_sql, change, None)
            return
        r = fetch_first(self._duck(f"DELETE FROM {t.physical} AS {quote(src.alias)}{where_sql}"))
        n = int(r[0]) if r else 0  # type: ignore[call-overload]
        self.rowcount = n
        yield RowCount(n, "DELETE")

    def _delete_joined(self, clauses: DmlClauses, tree: exp.Expression, target: exp.Table) -> Iterator[Result]:
        """DELETE target FROM sources [WHERE]: the target rows the joined FROM clause reaches, by rowid."""
        t = self._table(target_parts(target, tree.this))
        ctx = self._context()
        tr = Translator(ctx)
        where = tree.args.get("where")
        joined = bind_joined(tr, target, tree.this, where.this if where else None, [exp.Literal.number(1)])
        self._register_views(ctx)
        where_sql = f" WHERE rowid IN (SELECT __ss_rid FROM ({joined.sql([])}) AS __ss_d)"
        change = f"DELETE FROM {t.physical} AS {quote(joined.alias)}"
        if clauses.output is not None or clauses.top is not None:
            yield from self._changed_rows(clauses, t, joined.alias, where_sql, change, None)
            return
        r = fetch_first(self._duck(change + where_sql))
        n = int(r[0]) if r else 0  # type: ignore[call-overload]
        self.rowcount = n
        yield RowCount(n, "DELETE")
