"""CREATE TYPE .. FROM and DROP TYPE (alias types), and resolving a column declared with an alias type."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from .. import ddl
from ..aliastypes import AliasType, no_such_type_error, parse_create_type, type_exists_error
from ..results import Done, Result, SqlServerError
from ..session import SessionCore
from ..sqltext import Statement, read_type
from ..types import SqlType


class AliasTypeStatements(SessionCore):
    """Alias types live in the DDL catalog, so they commit and roll back with the transaction that made them."""

    def _create_type(self, st: Statement) -> Iterator[Result]:
        ct = parse_create_type(st.text, st.tokens)
        cat = self._ddl()
        schema = cat.existing_schema(ct.parts[-2] if len(ct.parts) == 2 else "dbo")
        if cat.alias([schema, ct.parts[-1]]) is not None:
            raise type_exists_error(schema, ct.parts[-1])
        alias = AliasType(schema, ct.parts[-1], cat.next_user_type_id(), ct.base, ct.nullable)
        cat.aliases[alias.key] = alias
        self._ddl_done(aliases=[alias.key])
        yield Done("CREATE TYPE")

    def _drop_type(self, c: ddl.Cursor) -> Iterator[Result]:
        """DROP TYPE [IF EXISTS] [schema.]name; refused (3732) while a table or view has a column of the type."""
        if_exists = c.if_exists()
        parts = c.qualified()
        cat = self._ddl()
        alias = cat.alias(parts)
        if alias is None:
            if not if_exists:
                raise no_such_type_error(".".join(parts))
            yield Done("DROP TYPE")
            return
        user = next(
            (t for t in cat.tables.values() if any(col.type.user_type == alias.user_type_id for col in t.columns)),
            None,
        )
        if user is not None:
            raise SqlServerError(
                3732,
                f"Cannot drop type '{alias.schema}.{alias.name}' because it is being referenced by object "
                f"'{user.name}'. There may be other objects that reference this type.",
            )
        del cat.aliases[alias.key]
        self._ddl_done(aliases=[alias.key])
        yield Done("DROP TYPE")

    def _alias_type(self, parts: list[str], ordinal: int) -> AliasType:
        """The alias type a declaration names, or SQL Server's error 2715."""
        alias = self.catalog.alias(parts)
        if alias is None:
            raise SqlServerError(
                2715, f"Column, parameter, or variable #{ordinal}: Cannot find data type {'.'.join(parts)}."
            )
        return alias

    def _declared_type(self, c: ddl.Cursor) -> SqlType:
        """The type at the cursor (DECLARE @v type): a system type, or an alias type's base type marked with it."""
        if read_type(c.toks, c.i)[1] is not None:
            return c.type()
        return self._alias_type(ddl.alias_name(c), 1).column_type

    def _with_alias_type(self, cd: ddl.ColDef, ordinal: int) -> ddl.ColDef:
        """A column declared with an alias type gets its base type, and its nullability unless it says NULL or
        NOT NULL itself."""
        if cd.alias is None:
            return cd
        alias = self._alias_type(cd.alias, ordinal)
        nullable = alias.nullable if cd.nullable is None else cd.nullable
        return dataclasses.replace(cd, type=alias.column_type, nullable=nullable, alias=None)
