"""Connections to SQL Server through pymssql or mssql-python, and what source and target share: the parsed URL,
one control connection, and every driver error as a one-line EngineError without the password.

Control work (catalog, boundaries, counts, DDL, the ledger) runs on one connection of the reader's driver for a
source and of mssql-python for a target.
"""

from __future__ import annotations

import contextlib
import math
import re
from typing import Any

from ray_replicator.catalog import Table
from ray_replicator.config import MSSQL_PACKET_SIZE, MssqlUrl
from ray_replicator.engines.base import (
    Capabilities,
    Carries,
    ConnectTimeoutError,
    Endpoint,
    EngineError,
    KeyRange,
    UsageError,
    is_transient,
)
from ray_replicator.engines.mssql.sql import n_literal, one_line, qualified, quote_ident, range_predicate
from ray_replicator.engines.mssql.tls import freetds_section, trust_ca_file
from ray_replicator.engines.mssql.types import MSSQL
from ray_replicator.engines.mssql.url import parse_url
from ray_replicator.errors import OnDenied
from ray_replicator.redact import scrub

READ_POLICIES = ("hundred_ns", "nul", "sql_variant")
"""URL options that decide how values are read; verify reads a SQL Server target with the source's."""

CAPABILITIES = Capabilities(
    name=MSSQL,
    default_port=MssqlUrl.model_fields["port"].default,  # config.py holds the default
    title="SQL Server",
    refills_ranges_by_predicate=True,
    read_policies=READ_POLICIES,
    text_type="nvarchar(max)",
    writer_option="writer",
    # A BULK INSERT file (CSV) loads an empty field of a binary column as NULL and cannot hold U+0000 in text.
    writers=(
        ("bulkcopy", Carries()),
        ("bulk-insert", Carries(nul_in_text=False, empty_binary=False)),
        ("insert", Carries()),
    ),
    transient_errors=(
        # 1205 deadlock victim; FreeTDS (pymssql): 20003 timed out, 20004/20006 read/write failed, 20017 unexpected
        # EOF, 20047 the handle died with its socket, 20009 the server is unavailable (refused while it restarts);
        # ODBC (mssql-python): 08S01/08S02 the link is gone
        r"\b1205\b|deadlock victim|\b2000[36]\b|\b20017\b|DBPROCESS is dead|unexpected EOF from the server|"
        r"Unexpected EOF|(read from|write to) the server failed|Unable to connect: Adaptive Server is unavailable|"
        r"\b08S0[12]\b|communication link failure"
    ),
)

SESSION_SQL = (
    "SET TEXTSIZE 2147483647; SET ANSI_NULLS ON; SET ANSI_WARNINGS ON; SET ANSI_PADDING ON; "
    "SET CONCAT_NULL_YIELDS_NULL ON; SET ARITHABORT ON; SET QUOTED_IDENTIFIER ON; SET DATEFORMAT ymd; "
    "SET NOCOUNT ON; SET XACT_ABORT ON"
)
"""Every connection's session settings: whole large values, ISO dates, errors that end the transaction."""

# FreeTDS 20003 "Adaptive Server connection timed out"; ODBC HYT00 "Login timeout expired" and, for a server that
# accepts but never answers, "TCP Provider: Timeout error [258]".
_LOGIN_TIMEOUT = re.compile(
    r"\b20003\b|connection timed out|Login timeout expired|HYT00|TCP Provider: Timeout error", re.IGNORECASE
)


def _odbc_value(value: str) -> str:
    return "{" + value.replace("}", "}}") + "}"


def mssql_python_connection_string(u: MssqlUrl) -> str:
    parts = [
        f"Server={u.host},{u.port}",
        f"Database={_odbc_value(u.database)}",
        f"UID={_odbc_value(u.user)}",
        f"PWD={_odbc_value(u.password)}",
        f"Encrypt={u.encrypt}",
    ]
    if u.encrypt != "strict":  # strict always verifies; the driver ignores the keyword there
        parts.append(f"TrustServerCertificate={'yes' if u.trust else 'no'}")
    if u.hostname_in_certificate:
        parts.append(f"HostNameInCertificate={_odbc_value(u.hostname_in_certificate)}")
    parts.append(f"PacketSize={MSSQL_PACKET_SIZE}")
    return ";".join(parts)


def close_quietly(handle: Any) -> None:
    """Close a connection or cursor that is being given up (None: nothing to close); a failure to close it changes
    nothing for the caller."""
    if handle is not None:
        with contextlib.suppress(Exception):
            handle.close()


def connect_mssql_python(u: MssqlUrl, autocommit: bool) -> Any:
    import mssql_python

    if not u.password:
        raise UsageError(f"{u.display}: mssql-python needs a password in the URL (it rejects an empty one)")
    if u.ca_file:
        trust_ca_file(u.ca_file)
    # timeout= is ODBC's SQL_ATTR_LOGIN_TIMEOUT: it bounds the TCP connect, TLS handshake and login
    return mssql_python.connect(
        mssql_python_connection_string(u), autocommit=autocommit, timeout=max(1, math.ceil(u.connect_timeout))
    )


def connect_pymssql(u: MssqlUrl, autocommit: bool) -> Any:
    import pymssql

    server = u.host
    encryption: str | None = None
    if u.encrypt != "no" and u.trust:
        encryption = "require"
    elif u.encrypt != "no":
        server = freetds_section(u)  # encryption, CA and names come from the section
    return pymssql.connect(
        server=server,
        port=str(u.port),
        user=u.user,
        password=u.password,
        database=u.database,
        autocommit=autocommit,
        tds_version="7.4",
        charset="UTF-8",
        login_timeout=max(1, math.ceil(u.connect_timeout)),
        encryption=encryption,
    )


class MssqlEndpoint(Endpoint):
    """Shared by source and target: the parsed URL, error scrubbing, one control connection."""

    capabilities = CAPABILITIES
    control_driver = "mssql-python"

    def __init__(self, url: str) -> None:
        self.u = parse_url(url)
        self.display = self.u.display
        self._conn: Any = None

    # -- errors -------------------------------------------------------------------------------------------
    def _scrub(self, text: str) -> str:
        text = scrub(one_line(text), [self.u.password])
        text = re.sub(r"DB-Lib error message \d+, severity \d+: General SQL Server error: Check messages.*$", "", text)
        return text.strip()

    def _error(self, what: str, exc: BaseException, hint: str = "") -> EngineError:
        if isinstance(exc, EngineError):
            return exc
        raw = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], bytes) else None
        text = raw.decode("utf-8", "replace") if raw is not None else str(exc) or type(exc).__name__
        transient = is_transient(RuntimeError(text), (CAPABILITIES,))
        return self.driver_error(what, exc, self._scrub(text), hint, transient)

    # -- control connection -------------------------------------------------------------------------------
    def _connect(self, autocommit: bool) -> Any:
        try:
            if self.control_driver == "pymssql":
                conn = connect_pymssql(self.u, autocommit)
            else:
                conn = connect_mssql_python(self.u, autocommit)
            cur = conn.cursor()
            cur.execute(SESSION_SQL)
            cur.close()
            return conn
        except EngineError:
            raise
        except Exception as exc:
            if _LOGIN_TIMEOUT.search(str(exc)):
                raise ConnectTimeoutError(self.u.host, self.u.port, self.u.connect_timeout) from None
            if tls := self._tls_failure(exc):
                raise tls from None
            raise self._error("connecting", exc, "check host, port, user, password and encrypt=") from None

    def _tls_failure(self, exc: BaseException) -> EngineError | None:
        """A certificate that did not verify, as one line naming the server and the ways out; None if the
        failure is something else. FreeTDS reports every failed handshake as "connection failed", so with
        verification on its failure gets the same hint."""
        u = self.u
        text = self._scrub(str(exc))
        where = f"{u.host}:{u.port}"
        fix = (
            f"give the CA that signed it with ca_file=/path/ca.pem (and hostname_in_certificate=<name> if the "
            f"certificate does not name {u.host})"
            + ("" if u.encrypt == "strict" else ", or skip verification with trust_server_certificate=yes")
        )
        if m := re.search(r"certificate verify failed:?\s*([^\]]*)|Provided certificate doesn't match[^\]]*", text):
            reason = (m.group(1) or m.group(0)).strip()
            return EngineError(
                f"connecting to SQL Server {where}: its TLS certificate did not verify ({reason}); {fix}"
            )
        if self.control_driver == "pymssql" and u.encrypt != "no" and not u.trust and "20002" in text:
            return EngineError(
                f"connecting to SQL Server {where}: the TLS connection failed (FreeTDS does not say why; an "
                f"unverified certificate is the usual cause); {fix}"
            )
        if u.encrypt == "strict" and re.search(r"handshakes before login|0x2746|\b20002\b", text):
            return EngineError(
                f"connecting to SQL Server {where}: the TDS 8.0 (encrypt=strict) handshake failed ({text}); the "
                "server may not support strict encryption (SQL Server 2022 and later do): use encrypt=yes"
            )
        return None

    def control(self) -> Any:
        if self._conn is None:
            self._conn = self._connect(autocommit=True)
        return self._conn

    def query(self, what: str, sql: str) -> list[tuple[Any, ...]]:
        try:
            cur = self.control().cursor()
            try:
                cur.execute(sql)
                return [tuple(r) for r in cur.fetchall()]
            finally:
                cur.close()
        except Exception as exc:
            raise self._error(what, exc) from None

    def query_named(self, what: str, sql: str) -> list[dict[str, Any]]:
        """Rows as dicts keyed by the result's column names."""
        try:
            cur = self.control().cursor()
            try:
                cur.execute(sql)
                names = [d[0] for d in cur.description]
                return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
            finally:
                cur.close()
        except Exception as exc:
            raise self._error(what, exc) from None

    def query_value(self, what: str, sql: str) -> Any:
        rows = self.query(what, sql)
        return rows[0][0] if rows else None

    def execute(self, what: str, sql: str, hint: str = "") -> None:
        try:
            cur = self.control().cursor()
            try:
                cur.execute(sql)
            finally:
                cur.close()
        except Exception as exc:
            raise self._error(what, exc, hint) from None

    def ensure_schema(self, schema: str) -> None:
        exists = self.query_value(f"checking schema {schema}", f"SELECT SCHEMA_ID({n_literal(schema)})")
        if exists is None:
            self.execute(
                f"creating schema {schema}",
                f"CREATE SCHEMA {quote_ident(schema)}",
                OnDenied("the user needs CREATE SCHEMA"),
            )

    def table_exists(self, schema: str, name: str) -> bool:
        sql = (
            "SELECT COUNT(*) FROM sys.tables t JOIN sys.schemas s ON s.schema_id = t.schema_id "
            f"WHERE s.name = {n_literal(schema)} AND t.name = {n_literal(name)}"
        )
        return bool(self.query_value(f"checking table {schema}.{name}", sql))

    def count_range(self, table: Table, rng: KeyRange) -> int:
        sql = f"SELECT COUNT_BIG(*) FROM {qualified(table.schema, table.name)} WHERE {range_predicate(table, rng)}"
        return int(self.query_value(f"counting {table.qualified} range {rng.range_id}", sql) or 0)

    def close(self) -> None:
        close_quietly(self._conn)
        self._conn = None
