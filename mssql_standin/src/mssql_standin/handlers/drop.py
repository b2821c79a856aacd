"""DROP (TABLE, VIEW, INDEX, SCHEMA, TYPE) and TRUNCATE TABLE."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from sqlglot.tokens import TokenType

from .. import ddl
from ..results import Done, Result, SqlServerError
from ..sqltext import Statement, unsupported
from ..syscatalog import Table, quote
from .types import AliasTypeStatements


class DropStatements(AliasTypeStatements):
    """DROP, TRUNCATE."""

    def _drop(self, st: Statement) -> Iterator[Result]:
        c = ddl.Cursor(st.text, st.tokens)
        c.expect("DROP")
        drops = {
            "TABLE": self._drop_tables,
            "VIEW": self._drop_view,
            "INDEX": self._drop_index,
            "SCHEMA": self._drop_schema,
            "TYPE": self._drop_type,
        }
        what = c.peek()
        if what not in drops:
            raise unsupported("DROP " + what)
        c.next()
        yield from drops[what](c)

    def _drop_tables(self, c: ddl.Cursor) -> Iterator[Result]:
        """DROP TABLE [IF EXISTS] name [, name ...]: refused (3726) while a foreign key references one."""
        if_exists = c.if_exists()
        cat = self._ddl()
        keys = []
        while True:
            parts = c.qualified()
            t = self._maybe_table(".".join(parts)) if len(parts) <= 2 else None
            t = cat.table(parts[-2], parts[-1]) if len(parts) >= 2 else cat.table("dbo", parts[-1])
            if t is not None and t.view:
                raise SqlServerError(
                    3705,
                    f"Cannot use DROP TABLE with '{t.name}' because '{t.name}' is a view. Use DROP VIEW.",
                )
            if t is None:
                if not if_exists:
                    raise SqlServerError(
                        3701,
                        f"Cannot drop the table '{'.'.join(parts)}', because it does not exist or you do "
                        "not have permission.",
                        severity=11,
                    )
            else:
                if _referenced(t, (other for other in cat.tables.values() if other is not t)):
                    raise SqlServerError(
                        3726,
                        f"Could not drop object '{t.two_part}' because it is referenced by a FOREIGN KEY constraint.",
                    )
                self._duck(f"DROP TABLE {t.physical}")
                cat.remove(t)
                keys.append((t.schema.lower(), t.name.lower()))
            if c.kind() == TokenType.COMMA:
                c.next()
                continue
            break
        self._ddl_done(keys)
        yield Done("DROP TABLE")

    def _drop_view(self, c: ddl.Cursor) -> Iterator[Result]:
        """DROP VIEW [IF EXISTS] name."""
        if_exists = c.if_exists()
        cat = self._ddl()
        parts = c.qualified()
        v = cat.table(parts[-2] if len(parts) >= 2 else "dbo", parts[-1])
        if v is None or not v.view:
            if not if_exists:
                raise SqlServerError(
                    3701,
                    f"Cannot drop the view '{'.'.join(parts)}', because it does not exist or you do not "
                    "have "
                    "permission.",
                    severity=11,
                )
        else:
            self._duck(f"DROP VIEW {v.physical}")
            cat.remove(v)
            self._ddl_done([(v.schema.lower(), v.name.lower())])
        yield Done("DROP VIEW")

    def _drop_index(self, c: ddl.Cursor) -> Iterator[Result]:
        """DROP INDEX name ON table."""
        cat = self._ddl()
        name = c.ident()
        c.expect("ON")
        parts = c.qualified()
        t0 = self._table(parts)
        t = cat.table(t0.schema, t0.name)
        assert t is not None
        idx = next((i for i in t.indexes if i.name.lower() == name.lower() and i.kind == "IX"), None)
        if idx is None:
            raise SqlServerError(
                3701,
                f"Cannot drop the index '{t.two_part}.{name}', because it does not exist or you do not "
                "have permission.",
                severity=11,
            )
        t.indexes.remove(idx)
        self._ddl_done([(t.schema.lower(), t.name.lower())])
        yield Done("DROP INDEX")

    def _drop_schema(self, c: ddl.Cursor) -> Iterator[Result]:
        """DROP SCHEMA name: refused (3729) while a table, view or alias type is in it."""
        name = c.ident()
        cat = self._ddl()
        s = cat.schema_name(name)
        if s is None:
            raise SqlServerError(
                3701,
                f"Cannot drop the schema '{name}', because it does not exist or you do not have permission.",
                severity=11,
            )
        if any(t.schema == s for t in cat.tables.values()) or any(a.schema == s for a in cat.aliases.values()):
            raise SqlServerError(3729, f"Cannot drop schema '{s}' because it is being referenced by object.")
        self._duck(f"DROP SCHEMA {quote(s)}")
        del cat.schemas[s]
        self._ddl_done(schemas=[s])
        yield Done("DROP SCHEMA")

    def _truncate(self, st: Statement) -> Iterator[Result]:
        c = ddl.Cursor(st.text, st.tokens)
        c.expect("TRUNCATE")
        c.expect("TABLE")
        t = self._table(c.qualified())
        if _referenced(t, self.catalog.tables.values()):
            raise SqlServerError(
                4712,
                f"Cannot truncate table '{t.two_part}' because it is being referenced by a FOREIGN KEY constraint.",
            )
        self._duck(f"DELETE FROM {t.physical}")
        if t.identity is not None and t.identity.identity is not None:
            with self.engine.lock:
                self.engine.identity[t.object_id] = t.identity.identity[0]
                self.engine.ident_used[t.object_id] = False
        yield Done("TRUNCATE TABLE")


def _referenced(t: Table, tables: Iterable[Table]) -> bool:
    """Whether a foreign key of one of `tables` references t."""
    return any(
        f.ref_schema.lower() == t.schema.lower() and f.ref_table.lower() == t.name.lower()
        for other in tables
        for f in other.fks
    )
