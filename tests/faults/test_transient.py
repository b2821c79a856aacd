"""Which errors retry a range: lost connections as each real driver words them do, data and usage errors do not
(a retry of those would only repeat the failure three times). Each engine declares its drivers' words
(Capabilities.transient_errors); the operating system's are common to all."""

from __future__ import annotations

import pytest

from ray_replicator.engines import capabilities
from ray_replicator.engines.base import is_transient

SEEN_LOST = [
    # pymssql (FreeTDS) after the stand-in's connection was reset mid-result (fault 4)
    ("mssql", "DB-Lib error message 20047, severity 9: DBPROCESS is dead or not enabled"),
    ("mssql", "DB-Lib error message 20017, severity 9: Unexpected EOF from the server (127.0.0.1:1433)"),
    ("mssql", "DB-Lib error message 20004, severity 9: Read from the server failed (127.0.0.1:1433)"),
    # mssql-python (ODBC 18) in the same case
    ("mssql", "Driver Error: Communication link failure; DDBC Error: [Microsoft]TCP Provider: Error code 0x68"),
    ("mssql", "[08S01] [Microsoft][ODBC Driver 18 for SQL Server]Communication link failure"),
    # PostgreSQL restarting under a copy (fault 3)
    ("postgres", "terminating connection due to administrator command"),
    ("postgres", "server closed the connection unexpectedly"),
    ("postgres", "the database system is starting up"),
    # asyncpg when the restart came inside a COPY (fault 3, 2026-11-27: the run failed and needed --resume)
    ("postgres", 'cannot switch to state 12; protocol is in the "failed" state'),
    # a server restarting or out of reach for a while (finalize, foreign keys, verify ride it out, issue 13)
    ("postgres", "the database system is not yet accepting connections"),
    ("postgres", "[Errno 111] Connect call failed ('127.0.0.1', 48027)"),
    (
        "mssql",
        "DB-Lib error message 20009, severity 9: Unable to connect: Adaptive Server is unavailable or does not exist",
    ),
]
OS_LOST = ["[Errno 113] No route to host", "[Errno 104] Connection reset by peer", "[Errno 111] Connection refused"]
NOT_LOST = [
    'duplicate key value violates unique constraint "Posts_pkey"',
    "Invalid column name 'Bodyy'.",
    "value too long for type character varying(40)",
    "DB-Lib error message 20018, severity 16: General SQL Server error: Check messages from the SQL Server",
    'connection to server at "127.0.0.1", port 5432 failed: FATAL:  password authentication failed for user "u"',
]
BOTH = (capabilities("postgres"), capabilities("mssql"))


@pytest.mark.parametrize(("engine", "message"), SEEN_LOST)
def test_lost_connections_are_retried_by_the_engine_whose_driver_says_so(engine: str, message: str) -> None:
    assert is_transient(RuntimeError(message), (capabilities(engine),))
    assert not is_transient(RuntimeError(message))  # no engine given: only the operating system's words count


@pytest.mark.parametrize("message", OS_LOST)
def test_the_operating_systems_lost_connections_are_retried_whatever_the_engine(message: str) -> None:
    assert is_transient(RuntimeError(message))


@pytest.mark.parametrize("message", NOT_LOST)
def test_data_errors_are_not_retried(message: str) -> None:
    assert not is_transient(RuntimeError(message), BOTH)


def test_a_connection_error_is_retried_whatever_it_says() -> None:
    assert is_transient(ConnectionResetError("gone"))
    assert is_transient(TimeoutError("slow"))
