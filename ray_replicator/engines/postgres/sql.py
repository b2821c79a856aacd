"""SQL text for PostgreSQL: quoted names and the names PostgreSQL keeps."""

from __future__ import annotations

from ray_replicator.engines.postgres.names import pg_name


def quote_ident(name: str) -> str:
    """Always quote: spaces, quotes, unicode, reserved words and mixed case all survive; a name longer than
    PostgreSQL keeps gets its mapped name (names.pg_name), wherever the engine names it."""
    return '"' + pg_name(name).replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """For DDL only (enum labels); row values always travel as parameters."""
    return "'" + value.replace("'", "''") + "'"


def qualified(schema: str, name: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(name)}"
