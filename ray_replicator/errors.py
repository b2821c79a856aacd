"""What to do about the errors users meet most, appended to the one-line message when the engine gave no hint."""

from __future__ import annotations

import re

_HINTS: list[tuple[str, str]] = [
    (
        r"password authentication failed|authentication failed|Login failed",
        "check the user and password (URL, password_env or password_file)",
    ),
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
        r"permission denied for (table|schema|relation|sequence)",
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
