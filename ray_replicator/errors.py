"""What to do about the errors users meet most: which kind of failure a driver error is (from its SQLSTATE or
SQL Server error number, not from the step that met it), and the hint appended to the one-line message."""

from __future__ import annotations

import re
from typing import Literal

FailureKind = Literal["auth", "permission", "connection"]

AUTH_HINT = "check the user and password (URL, password_env or password_file)"

_PG_AUTH = {"28P01", "28000"}
"""invalid_password, invalid_authorization_specification (no pg_hba entry, role cannot log in)."""
_PG_PERMISSION = {"42501"}
"""insufficient_privilege."""
_MSSQL_AUTH = {18456, 18452, 18486, 18487, 18488}
"""Login failed; untrusted domain; account locked; password expired; password must change."""
_MSSQL_PERMISSION = {229, 230, 262, 297, 300, 1088, 2760, 15247}
"""Permission denied on an object, a column, CREATE in a database; no permission for the action or schema."""
_MSSQL_AUTH_TEXT = re.compile(r"Login failed for user|\b18456\b")
_MSSQL_PERMISSION_TEXT = re.compile(r"permission was denied|permission denied|does not have permission", re.I)


class OnDenied(str):
    """A step's hint that holds only when the server refused for lack of a privilege ("needs CREATE ..."):
    given to any other failure of that step (a wrong password, a lost connection) it would send the user astray."""


def failure_kind(exc: BaseException) -> FailureKind | None:
    """auth, permission or connection, from the driver's own code; None for anything else."""
    state = getattr(exc, "sqlstate", None)
    if isinstance(state, str):
        if state in _PG_AUTH:
            return "auth"
        if state in _PG_PERMISSION:
            return "permission"
        if state.startswith("08") or state in ("57P01", "57P02", "57P03"):
            return "connection"
        return None
    number = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None  # pymssql: (number, message)
    if number in _MSSQL_AUTH:
        return "auth"
    if number in _MSSQL_PERMISSION:
        return "permission"
    text = " ".join(str(a) for a in exc.args)
    if _MSSQL_AUTH_TEXT.search(text):  # mssql-python keeps only ODBC's SQLSTATE and the server's text
        return "auth"
    if _MSSQL_PERMISSION_TEXT.search(text):
        return "permission"
    if isinstance(exc, OSError | ConnectionError | TimeoutError):
        return "connection"
    return None


def hint_for(exc: BaseException, hint: str) -> str:
    """The hint a step's failure deserves: the credentials for a refused login, nothing step-specific for a lost
    connection (with_hint adds host and port advice), an OnDenied hint only for a refused privilege."""
    kind = failure_kind(exc)
    if kind == "auth":
        return AUTH_HINT
    if kind == "connection":
        return ""
    if isinstance(hint, OnDenied) and kind != "permission":
        return ""
    return hint


_HINTS: list[tuple[str, str]] = [
    (r"password authentication failed|authentication failed|Login failed", AUTH_HINT),
    (
        r"Name or service not known|nodename nor servname|getaddrinfo|Temporary failure in name resolution",
        "check the host name in the URL",
    ),
    (
        r"Connection refused|connect call failed|could not connect",
        "check that the server runs and listens on that host and port",
    ),
    (r'database "[^"]*" does not exist|Cannot open database', "create the database or fix its name in the URL"),
    (
        r"permission denied for (table|schema|relation|sequence)|The SELECT permission was denied",
        "grant the user SELECT (source) or ownership (target), or leave the table out with --exclude",
    ),
    (
        r"duplicate key value|Violation of PRIMARY KEY|Cannot insert duplicate key",
        "the target's key rejects rows "
        "the source holds twice: drop or change that key on the target, or clean the source",
    ),
    (
        r"out of range|Arithmetic overflow",
        "the target column's type is too small for a source value: widen it or "
        "use existing = drop so ray-replicator creates it",
    ),
    (r"timeout|timed out", "the server did not answer in time: check the network and the server's load"),
]


def with_hint(message: str) -> str:
    """The message plus '; <what to do>' when a known cause matches and the message has no advice yet."""
    if "; " in message and any(w in message.rsplit("; ", 1)[-1] for w in ("use ", "set ", "run ", "check ", "fix ")):
        return message
    for pattern, hint in _HINTS:
        if re.search(pattern, message, re.IGNORECASE):
            return f"{message}; {hint}"
    return message
