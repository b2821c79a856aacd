"""SQL text for PostgreSQL: quoted names and the names PostgreSQL keeps."""

from __future__ import annotations

_MAX_IDENTIFIER_BYTES = 63


def quote_ident(name: str) -> str:
    """Always quote: spaces, quotes, unicode, reserved words and mixed case all survive."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """For DDL only (enum labels); row values always travel as parameters."""
    return "'" + value.replace("'", "''") + "'"


def qualified(schema: str, name: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def pg_identifier(name: str) -> str:
    """What PostgreSQL keeps of a name: at most 63 bytes of UTF-8, cut on a character boundary."""
    raw = name.encode()
    if len(raw) <= _MAX_IDENTIFIER_BYTES:
        return name
    return raw[:_MAX_IDENTIFIER_BYTES].decode(errors="ignore")
