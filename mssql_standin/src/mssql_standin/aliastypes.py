"""Alias types (CREATE TYPE [schema.]name FROM base_type [NULL | NOT NULL]): a schema-scoped name for a system type.

A column declared with an alias stores and sends values of the base type; the alias shows only in the catalog
(sys.types, sys.columns.user_type_id, TYPE_NAME) and in COLMETADATA's UserType field, as on SQL Server.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot.tokens import Token

from .ddl import Cursor
from .results import SqlServerError
from .sqltext import syntax_error, unsupported
from .types import SqlType

#: SQL Server numbers user types from 257 (256 is sysname)
FIRST_USER_TYPE_ID = 257
#: base types CREATE TYPE .. FROM does not take here (SQL Server lists no alias of rowversion, xml or a CLR type)
_NOT_A_BASE = {"timestamp", "xml", "geography", "geometry", "hierarchyid"}


@dataclass
class AliasType:
    schema: str
    name: str
    user_type_id: int
    base: SqlType
    nullable: bool = True

    @property
    def key(self) -> str:
        return alias_key(self.schema, self.name)

    @property
    def column_type(self) -> SqlType:
        """The type a column declared with the alias gets: the base type, marked with the alias's id."""
        b = self.base
        return SqlType(b.name, b.length, b.precision, b.scale, user_type=self.user_type_id)


def alias_key(schema: str, name: str) -> str:
    """The catalog's key of an alias type: names compare case-insensitively, as in the default collation."""
    return f"{schema.lower()}.{name.lower()}"


@dataclass
class CreateType:
    parts: list[str]
    base: SqlType
    nullable: bool


def parse_create_type(text: str, toks: list[Token]) -> CreateType:
    """CREATE TYPE [schema.]name FROM base_type [(n[, s])] [NULL | NOT NULL]; the table and CLR forms are refused."""
    c = Cursor(text, toks)
    c.expect("CREATE")
    c.expect("TYPE")
    parts = c.qualified()
    if len(parts) > 2:
        raise syntax_error(".")
    if c.accept("AS"):
        raise unsupported("CREATE TYPE .. AS TABLE")
    if c.accept("EXTERNAL"):
        raise unsupported("CREATE TYPE .. EXTERNAL NAME")
    c.expect("FROM")
    base = c.type()
    if base.name in _NOT_A_BASE:
        raise unsupported(f"CREATE TYPE .. FROM {base.name}")
    nullable = True
    if c.accept("NOT"):
        c.expect("NULL")
        nullable = False
    else:
        c.accept("NULL")
    c.accept(";")
    if not c.at_end():
        raise syntax_error(c.next().text)
    return CreateType(parts, base, nullable)


def type_exists_error(schema: str, name: str) -> SqlServerError:
    return SqlServerError(
        219, f"The type '{schema}.{name}' already exists, or you do not have permission to create it."
    )


def no_such_type_error(name: str) -> SqlServerError:
    return SqlServerError(
        218, f"Cannot find the type '{name}', because it does not exist or you do not have permission."
    )
