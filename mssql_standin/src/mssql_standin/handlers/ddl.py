"""CREATE TABLE/VIEW/INDEX and ALTER TABLE, with their constraints and computed columns."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import duckdb
from sqlglot import exp
from sqlglot.tokens import TokenType

from .. import ddl
from ..results import Done, Result, SqlServerError
from ..rows import RowWriter
from ..session import RAW_TYPES, fetch_first
from ..sqlexpr import OutCol, Source, duck_sql, type_of
from ..sqltext import SPECIAL_STORAGE, Statement, parse_statement, syntax_error, tokenize, unsupported
from ..syscatalog import Catalog, Check, Column, ForeignKey, Index, Table, quote
from ..translate import Translator
from ..types import SqlType, display_value, duck_type, make_type, type_from_arrow
from .types import AliasTypeStatements


class DdlStatements(RowWriter, AliasTypeStatements):
    """CREATE, ALTER TABLE."""

    def _create(self, st: Statement) -> Iterator[Result]:
        w = st.words + ["", "", ""]
        if w[1] == "TABLE":
            yield from self._create_table(ddl.parse_create_table(st.text, st.tokens))
        elif w[1] == "SCHEMA":
            name = st.tokens[2].text
            cat = self._ddl()
            if cat.schema_name(name) is not None:
                raise SqlServerError(2714, f"There is already an object named '{name}' in the database.")
            self._duck(f"CREATE SCHEMA {quote(name)}")
            cat.schemas[name] = max(cat.schemas.values()) + 1 if max(cat.schemas.values()) >= 5 else 5
            self._ddl_done(schemas=[name])
            yield Done("CREATE SCHEMA")
        elif w[1] == "VIEW":
            yield from self._create_view(st)
        elif w[1] == "TYPE":
            yield from self._create_type(st)
        elif "INDEX" in w[1:4]:
            yield from self._create_index(ddl.parse_create_index(st.text, st.tokens))
        else:
            raise unsupported("CREATE " + w[1])

    def _new_object(self, parts: list[str]) -> tuple[Catalog, str, str]:
        """The DDL catalog, schema and name of a table or view to create: the schema must exist (2760), the
        name be free (2714)."""
        cat = self._ddl()
        schema = cat.existing_schema(parts[-2] if len(parts) >= 2 else "dbo")
        name = parts[-1]
        if cat.table(schema, name) is not None:
            raise SqlServerError(2714, f"There is already an object named '{name}' in the database.")
        return cat, schema, name

    def _create_table(self, ct: ddl.CreateTable) -> Iterator[Result]:
        parts = ct.name
        if parts[-1].startswith("#"):
            raise unsupported("temporary table " + parts[-1])
        cat, schema, name = self._new_object(parts)
        oid = self.engine.new_id()
        cols: list[Column] = []
        columns = [self._with_alias_type(cd, i) for i, cd in enumerate(ct.columns, 1)]
        for i, cd in enumerate(columns, 1):
            if any(c.name.lower() == cd.name.lower() for c in cols):
                raise SqlServerError(
                    2705,
                    f"Column names in each table must be unique. Column name '{cd.name}' in table '{name}' "
                    "is specified more than once.",
                )
            if cd.identity is not None:
                if (
                    cd.type is None
                    or cd.type.name not in ("int", "bigint", "smallint", "tinyint", "decimal", "numeric")
                    or (cd.type.name in ("decimal", "numeric") and cd.type.scale)
                ):
                    raise SqlServerError(
                        2749,
                        f"Identity column '{cd.name}' must be of data type int, bigint, smallint, tinyint, "
                        "or decimal or numeric with a scale of 0, and constrained to be nonnullable.",
                    )
                if any(c.identity for c in cols):
                    raise SqlServerError(
                        2744,
                        f"Multiple identity columns specified for table '{name}'. Only one identity column "
                        "per table is allowed.",
                    )
            ty = cd.type or make_type("int", [])
            nullable = (
                cd.nullable if cd.nullable is not None else not (cd.identity is not None or ty.name == "timestamp")
            )
            col = Column(cd.name, ty, nullable, cd.identity, column_id=i, rowguidcol=cd.rowguidcol)
            if cd.default is not None:
                col.default = ddl.normalize_default(cd.default)
                col.default_name = cd.default_name or f"DF__{name[:9]}__{cd.name[:5]}__{oid + i:08X}"
                col.default_id = self.engine.new_id()
            cols.append(col)
        t = Table(
            oid,
            schema,
            name,
            cols,
            create_date=dt.datetime.now().replace(microsecond=0),
            data_compression=ct.data_compression,
        )
        for c, cd in zip(cols, columns, strict=True):
            if cd.computed is not None:
                self._computed(t, c, cd.computed)
        self._add_constraints(t, ct.constraints, creating=True)
        defs = []
        for c in cols:
            if c.computed is not None:
                continue
            defs.append(f"{quote(c.name)} {duck_type(c.type)}" + ("" if c.nullable else " NOT NULL"))
        for c in cols:
            if c.computed is not None:
                ctype = c.type
                defs.append(f"{quote(c.name)} {duck_type(ctype)} GENERATED ALWAYS AS ({c.computed_sql}) VIRTUAL")
        for con in ct.constraints:
            if con.kind == "CHECK":
                defs.append(self._check(t, con))
        self._duck(f"CREATE TABLE {t.physical} ({', '.join(defs)})")
        cat.add(t)
        if t.identity is not None and t.identity.identity is not None:
            with self.engine.lock:
                self.engine.identity[oid] = t.identity.identity[0]
                self.engine.ident_used[oid] = False
        self._ddl_done([(schema.lower(), name.lower())])
        yield Done("CREATE TABLE")

    def _create_view(self, st: Statement) -> Iterator[Result]:
        """CREATE VIEW v AS SELECT ...: a DuckDB view over the translated query; a plain projection of one
        table is also an insert target (BULK INSERT into a view that leaves out computed columns)."""
        c = ddl.Cursor(st.text, st.tokens)
        c.expect("CREATE")
        c.expect("VIEW")
        parts = c.qualified()
        if c.kind() == TokenType.L_PAREN:
            raise unsupported("CREATE VIEW with a column list")
        c.expect("AS")
        if c.at_end():
            raise syntax_error("AS")
        body = st.text[c.toks[c.i].start - c.base :]
        body_toks = tokenize(body)
        tree = parse_statement(body, body_toks)
        ctx = self._context()
        tr = Translator(ctx)
        cols = tr.query(tree, [])
        if ctx.views:
            raise unsupported("a view over the system catalog")
        cat, schema, name = self._new_object(parts)
        if any(not col.name for col in cols):
            k = next(i for i, col in enumerate(cols, 1) if not col.name)
            raise SqlServerError(
                4511, f"Create View or Function failed because no column name was specified for column {k}."
            )
        view = Table(self.engine.new_id(), schema, name, [], create_date=dt.datetime.now().replace(microsecond=0))
        for col in cols:
            if col.type is not None and col.type.name in SPECIAL_STORAGE and not col.is_raw:
                raise unsupported(f"a view column computing a {col.type.name} value ({col.name})")
        for i, col in enumerate(cols, 1):
            view.columns.append(Column(col.name, col.type or make_type("int", []), col.nullable, None, column_id=i))
        base = self._view_base(tree)
        if base is not None:
            bt, mapping = base
            view.view_base = (bt.schema, bt.name)
            view.view_map = mapping
            for vc in view.columns:
                src = bt.col(mapping[vc.name.lower()])
                if src is not None:
                    vc.identity = src.identity
        view.view = True
        self._duck(f"CREATE VIEW {view.physical} AS {duck_sql(tree)}")
        cat.add(view)
        self._ddl_done([(schema.lower(), name.lower())])
        yield Done("CREATE VIEW")

    def _view_base(self, tree: exp.Expression) -> tuple[Table, dict[str, str]] | None:
        """The base table and column mapping of a view that is a plain projection of one table."""
        if not isinstance(tree, exp.Select):
            return None
        from_ = tree.args.get("from_") or tree.args.get("from")
        if from_ is None or tree.args.get("joins") or tree.args.get("where") or tree.args.get("group"):
            return None
        src = from_.this
        if not isinstance(src, exp.Table):
            return None
        bt = self.catalog.table(src.args["db"].name if src.args.get("db") else "dbo", src.name)
        if bt is None or bt.view:
            return None
        mapping: dict[str, str] = {}
        for e in tree.expressions:
            inner = e.this if isinstance(e, exp.Alias) else e
            if not isinstance(inner, exp.Column):
                return None
            mapping[(e.alias if isinstance(e, exp.Alias) else inner.name).lower()] = inner.name
        return bt, mapping

    def _row_expression(self, text: str, columns: list[Column], construct: str) -> tuple[exp.Expression, Translator]:
        """`text` translated over `columns` of one row in storage form (a computed column, a CHECK), with bare
        column names; the catalog views are refused as `construct`."""
        tree = parse_statement("SELECT " + text, tokenize("SELECT " + text))
        ctx = self._context()
        tr = Translator(ctx)
        src = Source("__ss_self", [OutCol(x.name, x.type, x.nullable) for x in columns])
        assert isinstance(tree, exp.Select)
        node = tr._rw(tree.expressions[0], [[src]], None)
        if ctx.views:
            raise unsupported(construct)
        for col in node.find_all(exp.Column):
            col.set("table", None)
        return node, tr

    def _computed(self, t: Table, c: Column, text: str) -> None:
        """Translate a computed column's expression over the storage columns; its type is the result's."""
        others = [x for x in t.columns if x.computed is None and x is not c]
        node, tr = self._row_expression(text, others, "computed column reading the catalog")
        ty = type_of(node)
        if node.meta.get("ss_raw") and ty is not None:
            node = tr._native(node)
        sql = duck_sql(node)
        if ty is None or ty.name in RAW_TYPES:
            probe_cols = (
                ", ".join(
                    f"CAST(NULL AS {duck_type(x.type)}) AS {quote(x.name)}"
                    for x in t.columns
                    if x.computed is None and x is not c
                )
                or "1 AS __ss_one"
            )
            try:
                tbl = self.cur.sql(f"SELECT {sql} FROM (SELECT {probe_cols}) LIMIT 0").to_arrow_table()
            except duckdb.Error as e:
                raise SqlServerError(
                    4936,
                    f"Computed column '{c.name}' in table '{t.name}' cannot be translated: {str(e).splitlines()[0]}",
                ) from e
            ty = type_from_arrow(tbl.schema.field(0).type)
            if ty.name == "nvarchar":
                ty = SqlType("varchar", -1) if "nvarchar" not in text.lower() and "N'" not in text else ty
        c.type = ty
        c.computed = ddl.sql_server_definition(text)
        c.computed_sql = sql
        c.nullable = True

    def _add_column(self, t: Table, cd: ddl.ColDef) -> None:
        """ALTER TABLE ADD column: existing rows get NULL, or the DEFAULT when the column is NOT NULL."""
        cd = self._with_alias_type(cd, len(t.columns) + 1)
        if t.col(cd.name) is not None:
            raise SqlServerError(
                2705,
                f"Column names in each table must be unique. Column name '{cd.name}' in table '{t.name}' is "
                "specified more than once.",
            )
        if cd.computed is not None or cd.identity is not None or cd.type is None:
            raise unsupported("ALTER TABLE ADD of a computed or identity column")
        nullable = cd.nullable if cd.nullable is not None else cd.type.name != "timestamp"
        col = Column(cd.name, cd.type, nullable, None, column_id=max(c.column_id for c in t.columns) + 1)
        if cd.default is not None:
            col.default = ddl.normalize_default(cd.default)
            col.default_name = cd.default_name or f"DF__{t.name[:9]}__{cd.name[:5]}__{self.engine.new_id():08X}"
            col.default_id = self.engine.new_id()
        rows = self._count(t)
        if not nullable and rows and col.default is None:
            raise SqlServerError(
                4901,
                "ALTER TABLE only allows columns to be added that can contain nulls, or have a DEFAULT "
                "definition specified, or the column being added is an identity or timestamp column, or "
                "alternatively if none of the previous conditions are satisfied the table must be empty to "
                f"allow addition of this column. Column '{cd.name}' cannot be added to non-empty table "
                f"'{t.name}' because it does not satisfy these conditions.",
            )
        self._duck(f"ALTER TABLE {t.physical} ADD COLUMN {quote(col.name)} {duck_type(col.type)}")
        t.columns.append(col)
        if rows and not nullable and col.default is not None:
            value = self._default_values(col, 1, self._context())[0].as_py()
            from ..sqlexpr import storage_literal

            self._duck(f"UPDATE {t.physical} SET {quote(col.name)} = {duck_sql(storage_literal(value, col.type))}")

    def _check(self, t: Table, cd: ddl.ConstraintDef) -> str:
        """A CHECK constraint, enforced by DuckDB over the storage columns (violations become error 547)."""
        stored = [x for x in t.columns if x.computed is None]
        node, _tr = self._row_expression(cd.check, stored, "CHECK constraint reading the catalog")
        name = cd.name or f"CK__{t.name[:9]}__{self.engine.new_id():08X}"
        column = t.col(cd.columns[0][0]) if cd.columns else None
        t.checks.append(
            Check(
                name,
                self.engine.new_id(),
                ddl.sql_server_definition(cd.check),
                column.column_id if column else 0,
            )
        )
        return f"CONSTRAINT {quote(name)} CHECK ({duck_sql(node)})"

    def _add_constraints(self, t: Table, cons: list[ddl.ConstraintDef], creating: bool) -> None:
        for cd in cons:
            if cd.kind == "CHECK":
                if not creating:
                    raise unsupported("ALTER TABLE ADD CHECK constraint")
                continue
            for cname, _d in cd.columns:
                if t.col(cname) is None:
                    raise SqlServerError(1911, f"Column name '{cname}' does not exist in the target table or view.")
            if cd.kind in ("PK", "UQ"):
                if cd.kind == "PK" and t.pk is not None:
                    raise SqlServerError(1779, f"Table '{t.name}' already has a primary key defined on it.")
                name = cd.name or f"{cd.kind}__{t.name[:8]}__{self.engine.new_id():016X}"
                if self._name_taken(name):
                    raise SqlServerError(2714, f"There is already an object named '{name}' in the database.")
                clustered = (
                    cd.clustered
                    if cd.clustered is not None
                    else (cd.kind == "PK" and not any(i.clustered for i in t.indexes))
                )
                if clustered and any(i.clustered for i in t.indexes):
                    raise SqlServerError(
                        1902,
                        f"Cannot create more than one clustered index on table '{t.two_part}'. Drop the "
                        "existing clustered index before creating another.",
                    )
                if cd.kind == "PK":
                    for cname, _d in cd.columns:
                        col = t.col(cname)
                        assert col is not None
                        if col.nullable and not creating:
                            raise SqlServerError(
                                8111,
                                f"Cannot define PRIMARY KEY constraint on nullable column in table '{t.name}'.",
                            )
                        col.nullable = False
                iid = 1 if clustered else max([i.index_id for i in t.indexes] + [1]) + 1
                cols = [(t.column(c).name, d) for c, d in cd.columns]
                t.indexes.append(Index(name, iid, cd.kind, True, clustered, cols, object_id=self.engine.new_id()))
            elif cd.kind == "FK":
                ref_parts = cd.ref
                ref_schema = ref_parts[-2] if len(ref_parts) >= 2 else "dbo"
                cat = self._ddl()
                ref = (
                    cat.table(ref_schema, ref_parts[-1])
                    if not (ref_parts[-1].lower() == t.name.lower() and ref_schema.lower() == t.schema.lower())
                    else t
                )
                if ref is None:
                    raise SqlServerError(
                        1767, f"Foreign key '{cd.name}' references invalid table '{'.'.join(ref_parts)}'."
                    )
                ref_cols = cd.ref_columns or [k for k, _ in (ref.pk.columns if ref.pk else [])]
                for rc in ref_cols:
                    if ref.col(rc) is None:
                        raise SqlServerError(
                            1770,
                            f"Foreign key '{cd.name}' references invalid column '{rc}' in referenced table "
                            f"'{ref.name}'.",
                        )
                if len(ref_cols) != len(cd.columns):
                    raise SqlServerError(
                        8140,
                        "More than one key specified in column level FOREIGN KEY constraint, table '" + t.name + "'.",
                    )
                name = cd.name or f"FK__{t.name[:8]}__{self.engine.new_id():016X}"
                t.fks.append(
                    ForeignKey(
                        name,
                        self.engine.new_id(),
                        [t.column(c).name for c, _ in cd.columns],
                        ref.schema,
                        ref.name,
                        [ref.column(c).name for c in ref_cols],
                        cd.on_delete,
                        cd.on_update,
                    )
                )

    def _name_taken(self, name: str) -> bool:
        return any(o[1].lower() == name.lower() for o in self.catalog.objects())

    def _create_index(self, ci: ddl.CreateIndex) -> Iterator[Result]:
        cat = self._ddl()
        t = self._table(ci.table)
        t = cat.table(t.schema, t.name)  # type: ignore[assignment]
        assert t is not None
        if any(i.name.lower() == ci.name.lower() for i in t.indexes):
            raise SqlServerError(
                1913,
                f"The operation failed because an index or statistics with name '{ci.name}' already exists "
                f"on table '{t.two_part}'.",
            )
        for cname, _d in ci.columns:
            if t.col(cname) is None:
                raise SqlServerError(1911, f"Column name '{cname}' does not exist in the target table or view.")
        for cname in ci.include:
            if t.col(cname) is None:
                raise SqlServerError(1911, f"Column name '{cname}' does not exist in the target table or view.")
        if ci.clustered and any(i.clustered for i in t.indexes):
            raise SqlServerError(
                1902,
                f"Cannot create more than one clustered index on table '{t.two_part}'. Drop the existing "
                "clustered index before creating another.",
            )
        iid = 1 if ci.clustered else max([i.index_id for i in t.indexes] + [1]) + 1
        idx = Index(
            ci.name,
            iid,
            "IX",
            ci.unique,
            ci.clustered,
            [(t.column(c).name, d) for c, d in ci.columns],
            [t.column(c).name for c in ci.include],
            ddl.normalize_filter(ci.filter) if ci.filter else None,
        )
        if ci.unique:
            if ci.filter:
                raise unsupported("filtered UNIQUE index")
            cols = ", ".join(quote(t.column(k).name) for k, _ in ci.columns)
            dup = fetch_first(self._duck(f"SELECT {cols} FROM {t.physical} GROUP BY ALL HAVING count(*) > 1 LIMIT 1"))
            if dup is not None:
                shown = ", ".join(display_value(v, t.column(k).type) for v, (k, _) in zip(dup, ci.columns, strict=True))
                raise SqlServerError(
                    1505,
                    "The CREATE UNIQUE INDEX statement terminated because a duplicate key was found for the "
                    f"object name '{t.two_part}' and the index name '{ci.name}'. The duplicate key value "
                    f"is ({shown}).",
                )
        t.indexes.append(idx)
        self._ddl_done([(t.schema.lower(), t.name.lower())])
        yield Done("CREATE INDEX")

    def _alter(self, st: Statement) -> Iterator[Result]:
        a = ddl.parse_alter_table(st.text, st.tokens)
        cat = self._ddl()
        t0 = self._table(a.table)
        t = cat.table(t0.schema, t0.name)
        assert t is not None
        if a.drop_constraint:
            name = a.drop_constraint.lower()
            before = len(t.indexes) + len(t.fks)
            t.indexes = [i for i in t.indexes if not (i.kind in ("PK", "UQ") and i.name.lower() == name)]
            t.fks = [f for f in t.fks if f.name.lower() != name]
            for c in t.columns:
                if c.default_name and c.default_name.lower() == name:
                    c.default = c.default_name = None
                    c.default_id = 0
                    before += 1
            if before == len(t.indexes) + len(t.fks):
                raise SqlServerError(3728, f"'{a.drop_constraint}' is not a constraint.")
        elif a.drop_column:
            raise unsupported("ALTER TABLE DROP COLUMN")
        elif a.check_toggle:
            pass
        else:
            for newcol in a.columns:
                self._add_column(t, newcol)
            for dname, expr, cname in a.defaults:
                col = t.column(cname)
                if col.default is not None:
                    msg = "Column already has a DEFAULT bound to it. Could not create constraint or index."
                    raise SqlServerError(1781, msg)
                col.default = ddl.normalize_default(expr)
                col.default_name = dname or f"DF__{t.name[:9]}__{col.name[:5]}__{self.engine.new_id():08X}"
                col.default_id = self.engine.new_id()
            for cd in a.constraints:
                if cd.kind in ("PK", "UQ"):
                    keys = [k for k, _ in cd.columns]
                    for k in keys:
                        if t.col(k) is None:
                            raise SqlServerError(1911, f"Column name '{k}' does not exist in the target table or view.")
                    cols = ", ".join(quote(t.column(k).name) for k in keys)
                    if cd.kind == "PK":
                        nulls = fetch_first(
                            self._duck(
                                f"SELECT count(*) FROM {t.physical} WHERE "
                                + " OR ".join(f"{quote(t.column(k).name)} IS NULL" for k in keys)
                            )
                        )
                        if nulls and nulls[0]:
                            raise SqlServerError(
                                8111,
                                f"Cannot define PRIMARY KEY constraint on nullable column in table '{t.name}'.",
                            )
                    dup = fetch_first(
                        self._duck(f"SELECT {cols} FROM {t.physical} GROUP BY ALL HAVING count(*) > 1 LIMIT 1")
                    )
                    if dup is not None:
                        shown = ", ".join(display_value(v, t.column(k).type) for v, k in zip(dup, keys, strict=True))
                        raise SqlServerError(
                            1505,
                            "The CREATE UNIQUE INDEX statement terminated because a duplicate key was found "
                            f"for the object name '{t.two_part}' and the index name '{cd.name}'. The "
                            f"duplicate key value is ({shown}).",
                        )
            self._add_constraints(t, a.constraints, creating=False)
        self._ddl_done([(t.schema.lower(), t.name.lower())])
        yield Done("ALTER TABLE")
