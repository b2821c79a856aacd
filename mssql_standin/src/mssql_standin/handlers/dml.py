"""INSERT (with a fast path for literal VALUES), UPDATE and DELETE."""

from __future__ import annotations

import contextlib
import decimal
from collections.abc import Iterator

import duckdb
import pyarrow as pa
from sqlglot import exp
from sqlglot.tokens import Token, TokenType

from .. import ddl, variant
from ..results import Result, RowCount, SqlServerError
from ..rows import RowWriter
from ..session import Stored, fetch_first, sql_string, storage_arrow_type
from ..sqlexpr import Context, Source, duck_sql, type_of
from ..sqltext import Statement, parse_statement, read_type, syntax_error, unsupported
from ..syscatalog import Column, Table, quote
from ..translate import Translator
from ..types import (
    EXACT,
    TICKS_PER_DAY,
    SqlType,
    duck_type,
    out_of_range,
    scalar_to_storage,
    to_storage_array,
    type_from_arrow,
)


class DmlStatements(RowWriter):
    """INSERT, UPDATE, DELETE."""

    def _insert(self, st: Statement) -> Iterator[Result]:
        st = _strip_insert_hints(st)
        fast = self._fast_insert_values(st)
        if fast is not None:
            self.rowcount = fast
            yield RowCount(fast, "INSERT")
            return
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
        words = {t.text.upper() for t in st.tokens if t.token_type not in (TokenType.STRING, TokenType.NATIONAL_STRING)}
        if tree.args.get("returning") or "OUTPUT" in words:
            raise unsupported("OUTPUT clause")
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
            n = self._insert_values(t, names, src)
        elif isinstance(src, (exp.Select, exp.SetOperation, exp.Subquery)):
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
            arrays = []
            for i, c in enumerate(cols):
                ty = c.type or type_from_arrow(tbl.schema.field(i).type)
                arr = self._to_result(tbl.column(i).combine_chunks(), ty)
                target_col = t.col(names[i])
                if target_col is not None and target_col.type.name == "sql_variant" and c.type is not None:
                    arr = variant.typed_array(arr, c.type)  # each value keeps its source type as base type
                arrays.append(arr)
            n = self.insert_arrow(t, names, arrays, rows=tbl.num_rows)
        else:
            raise unsupported("this INSERT form")
        self.rowcount = n
        yield RowCount(n, "INSERT")

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
        tree, t, target, ctx, tr, src = self._dml_target(
            st, exp.Update, ("from", "from_", "returning"), "UPDATE ... FROM / OUTPUT"
        )
        target.set("alias", None)
        alias_name = src.alias
        scopes = [[src]]
        sets = []
        key_cols = {k.lower() for i in t.indexes if i.unique for k, _ in i.columns}
        touches_key = False
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
            touches_key = touches_key or c.name.lower() in key_cols
            val = tr._rw(e.expression, scopes, None)
            sets.append((c, self._assign_expr(t, c, val)))
        where = tree.args.get("where")
        if where is not None:
            tr._rewrite_tree(where.this, scopes, [src])
        self._register_views(ctx)
        rv = next((c for c in t.columns if c.is_rowversion), None)
        set_sql = ", ".join(f"{quote(c.name)} = {v}" for c, v in sets)
        if rv is not None:
            set_sql += f", {quote(rv.name)} = __ss_rv"
        where_sql = f" WHERE {duck_sql(where.this)}" if where is not None else ""
        sql = f"UPDATE {t.physical} AS {quote(alias_name)} SET {set_sql}{where_sql}"
        if rv is not None:
            with self.engine.lock:
                self.engine.dbts += 1
                stamp = self.engine.dbts
            sql = sql.replace("__ss_rv", f"unhex('{stamp.to_bytes(8, 'big').hex()}')")
        n = self._guarded(sql, t if touches_key else None)
        self.rowcount = n
        yield RowCount(n, "UPDATE")

    def _assign_expr(self, t: Table, c: Column, val: exp.Expression) -> str:
        """The DuckDB expression that stores val into column c (storage form, exact checks where possible)."""
        full = f"{self.database}.{t.two_part}"
        vt = type_of(val)
        if (
            val.meta
            and "ss_const" in val.meta
            and not (val.meta.get("ss_raw") and vt is not None and vt.name == c.type.name)
        ):
            v = val.meta["ss_const"]
            if isinstance(val, (exp.Literal, exp.Null, exp.Neg)) or val.meta.get("ss_raw") is not True:
                st = scalar_to_storage(v, c.type, self.state.dateformat)
                if st is not None and (c.type.is_string or c.type.name in ("binary", "varbinary")):
                    st = to_storage_array(pa.array([st], storage_arrow_type(c.type)), c.type, full, c.name)[0].as_py()
                from ..sqlexpr import storage_literal

                return storage_literal(st, c.type).sql("duckdb")
        if val.meta.get("ss_raw") and vt is not None and vt.name == c.type.name:
            unit = 10 ** (7 - c.type.scale)
            if vt.name == "datetime2" and vt.scale > c.type.scale:
                msg = "__ss_242: " + out_of_range("datetime2", "datetime2").message
                return f"__ss_round_dt2({duck_sql(val)}, {unit}, {sql_string(msg)})"
            if vt.name == "time" and vt.scale > c.type.scale:
                return f"__ss_round_ticks({duck_sql(val)}, {unit}) % {TICKS_PER_DAY}"
            if vt.name == "datetimeoffset" and vt.scale > c.type.scale:
                return f"__ss_dto_round({duck_sql(val)}, {unit})"
            return duck_sql(val)
        n = c.type.name
        native = val
        if val.meta.get("ss_raw"):
            native = Translator(self._context())._native(val)
        body = duck_sql(native)
        if n == "datetime2":
            src = vt.name if vt is not None else "varchar"
            msg = sql_string("__ss_242: " + out_of_range(src, "datetime2").message)
            return f"__ss_round_dt2(__ss_ts_dt2(CAST({body} AS TIMESTAMP)), {10 ** (7 - c.type.scale)}, {msg})"
        if n == "time":
            return f"__ss_round_ticks(__ss_t_time(CAST({body} AS TIME)), {10 ** (7 - c.type.scale)})"
        if n == "datetimeoffset":
            return f"__ss_tz_dto(CAST({body} AS TIMESTAMPTZ))"
        if n == "uniqueidentifier":
            return f"__ss_guid_key({body})"
        if n == "datetime":
            return f"__ss_dt_round(CAST({body} AS TIMESTAMP))"
        if n == "smalldatetime":
            return f"__ss_sdt_round(CAST({body} AS TIMESTAMP))"
        if c.type.is_string and c.type.length > 0:
            msg = f"__ss_trunc: String or binary data would be truncated in table '{full}', column '{c.name}'."
            return (
                f"(SELECT CASE WHEN length(__ss_v) > {c.type.length} THEN error({sql_string(msg)}) ELSE __ss_v "
                "END "
                f"FROM (SELECT CAST({body} AS VARCHAR) AS __ss_v))"
            )
        return f"CAST({body} AS {duck_type(c.type)})"

    def _guarded(self, sql: str, key_table: Table | None) -> int:
        """Run a DML statement; if it changed key columns, check uniqueness after it and undo a violation."""
        own_txn = key_table is not None and self.trancount == 0
        if own_txn:
            self._duck("BEGIN TRANSACTION")
        try:
            r = fetch_first(self._duck(sql))
        except SqlServerError:
            if own_txn:
                self.cur.execute("ROLLBACK")
            raise
        n = int(r[0]) if r else 0  # type: ignore[call-overload]
        if key_table is not None:
            for idx in key_table.indexes:
                if not idx.unique:
                    continue
                cols = ", ".join(quote(key_table.column(k).name) for k, _ in idx.columns)
                dup = fetch_first(
                    self.cur.execute(
                        f"SELECT {cols} FROM {key_table.physical} GROUP BY ALL HAVING count(*) > 1 LIMIT 1"
                    )
                )
                if dup is not None:
                    with contextlib.suppress(duckdb.Error):
                        self.cur.execute("ROLLBACK")
                    if not own_txn:
                        self.trancount = 0
                        self._discard_ddl()
                    self._raise_duplicate(key_table, idx, [k for k, _ in idx.columns], tuple(dup))
        if own_txn:
            self.cur.execute("COMMIT")
        return n

    def _delete(self, st: Statement) -> Iterator[Result]:
        tree, t, _target, ctx, tr, src = self._dml_target(
            st, exp.Delete, ("using", "returning", "tables"), "DELETE ... FROM join / OUTPUT"
        )
        where = tree.args.get("where")
        if where is not None:
            tr._rewrite_tree(where.this, [[src]], [src])
        self._register_views(ctx)
        where_sql = f" WHERE {duck_sql(where.this)}" if where is not None else ""
        top = tree.args.get("limit")
        if top is not None:
            raise unsupported("DELETE TOP")
        r = fetch_first(self._duck(f"DELETE FROM {t.physical} AS {quote(src.alias)}{where_sql}"))
        n = int(r[0]) if r else 0  # type: ignore[call-overload]
        self.rowcount = n
        yield RowCount(n, "DELETE")


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


def _strip_insert_hints(st: Statement) -> Statement:
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
