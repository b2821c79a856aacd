"""SQL Server source and target.

URL: ``mssql://user:password@host:port/database?option=value&...``. Options (default first):

- ``encrypt=no|yes|strict``: ``no`` encrypts the login only (the whole session if the server forces it), as SQL
  Server does; ``yes`` encrypts the whole session; ``strict`` is TDS 8.0 (TLS before the first TDS packet, SQL
  Server 2022+; needs ``reader=mssql-python`` or pymssql's FreeTDS 1.5). With ``yes`` and ``strict`` the server's
  certificate is verified: ``ca_file=/path/ca.pem`` names the CA (bundle) that signed it (otherwise the system's
  trust store), ``hostname_in_certificate=name`` the name to expect when the URL's host is not in the
  certificate (mssql-python), and ``trust_server_certificate=yes`` skips verification (not with ``strict``).
- ``reader=mssql-python|pymssql``: mssql-python fetches Arrow record batches in C (``cursor.arrow_batch``); pymssql
  builds columns from ``fetchmany`` tuples with one ``zip`` and one ``pa.array`` per column. Both are exact;
  mssql-python was 2-4x faster on the stand-in (StackOverflow-shaped, 180k rows: Votes 0.56-1.27 M rows/s against
  0.13-0.18 M, Posts 15-23k rows/s against 7-16k; ``RR_MSSQL_SPEED=1 pytest -s tests/engines/test_mssql_speed.py``),
  so it is the default. pymssql negotiates FreeTDS's packet size; mssql-python asks for 16000 (see _PACKET_SIZE).
- ``writer=bulkcopy|bulk-insert|insert``: ``bulkcopy`` streams Arrow batches through mssql-python's TDS bulk
  load (``cursor.bulkcopy_arrow``, KEEP_IDENTITY, KEEP_NULLS, TABLOCK); ``bulk-insert`` writes RFC 4180 CSV files
  into ``bulk_dir`` (a local path) and runs ``BULK INSERT ... FROM '<server_bulk_dir>/file'`` (the same directory
  as the server sees it; FORMAT='CSV', CODEPAGE='65001', KEEPIDENTITY, KEEPNULLS, TABLOCK), removing each file
  after its load; ``insert`` sends 1000-row ``INSERT ... VALUES`` statements under ``SET IDENTITY_INSERT ON``.
  pymssql's ``bulk_copy`` is not offered: it sends '' as NULL and trims trailing spaces. Measured on the stand-in
  (same run): bulkcopy 127k rows/s (Votes) and 20k rows/s (Posts), bulk-insert 13k / 6.4k, insert 11k / 0.8k, so
  bulkcopy is the default; tables with datetimeoffset (text in Arrow, which the bulk copy's Arrow writer refuses)
  are written with INSERT. Exactly-once is delete-then-load: a range is deleted before loading only when the
  ledger shows an earlier attempt, so a first attempt pays nothing (no staging copy, no switch).
- ``isolation=read-committed|snapshot|nolock``: ``snapshot`` reads each range from one consistent version (the
  database needs ALLOW_SNAPSHOT_ISOLATION ON; ranges are separate statements, so the copy is consistent per
  range, not across ranges); ``nolock`` (READ UNCOMMITTED) can read uncommitted rows and read a row twice or
  not at all while pages split: use it only on a database nobody writes to.
- ``hundred_ns=refuse|round|keep``: datetime2(7), time(7) and datetimeoffset(7) hold 100 ns digits that Arrow
  microsecond types and PostgreSQL cannot. ``refuse`` stops with the table, column, key and value when such a
  digit is not zero; ``round`` lets SQL Server round those columns to microseconds (a value that would round
  past 9999-12-31 is still refused); ``keep`` keeps them (timestamp('ns') between 1677 and 2262, time64('ns'),
  datetimeoffset text with 7 digits) for SQL Server targets.
- ``nul=refuse|keep|strip|replace``: U+0000 inside text, which PostgreSQL cannot store. ``refuse`` stops naming
  table, column and key; ``keep`` passes it (SQL Server targets); ``strip`` removes it; ``replace`` puts U+FFFD.
- ``connect_timeout=<seconds>`` (default: the ``connect_timeout_s`` setting, 30): how long a connection attempt
  (TCP, TLS, login) may take, with both drivers (pymssql ``login_timeout``, mssql-python's login timeout).
- ``sql_variant=refuse|text``: sql_variant columns lose their base type in Arrow; ``text`` copies
  ``CAST(value AS nvarchar(max))`` (lossy: documented in docs/type-mapping.md), ``refuse`` stops at the catalog.

Control work (catalog, boundaries, counts, DDL, the ledger) runs on one connection of the reader's driver for a
source and of mssql-python for a target. Range bounds become typed T-SQL literals (``CAST(N'...' AS type)``), so
the server compares them with the column's own type and collation; no parameter typing by the driver can change
the order. Every driver error becomes a one-line EngineError without the password.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import decimal
import hashlib
import logging
import math
import os
import re
import ssl
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import chain
from typing import Any, Self
from urllib.parse import parse_qsl, unquote, urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ray_replicator.catalog import Catalog, Column, ForeignKey, Identity, Index, Key, Table, chosen_by
from ray_replicator.engines.base import (
    Capabilities,
    ConnectTimeoutError,
    Endpoint,
    EngineError,
    KeyRange,
    LedgerStore,
    RangeWrite,
    Source,
    Target,
    TransientEngineError,
    UsageError,
    WriteOptions,
    connect_timeout_of,
    is_transient,
)
from ray_replicator.engines.mssql_types import (
    CLR_TYPES,
    MSSQL,
    Declared,
    arrow_type,
    base_name,
    logical_type,
    mssql_type,
    native_type,
    scale_of,
)
from ray_replicator.errors import OnDenied, hint_for
from ray_replicator.redact import scrub, url_problem

log = logging.getLogger(__name__)

READ_POLICIES = ("hundred_ns", "nul", "sql_variant")
"""URL options that decide how values are read; verify reads a SQL Server target with the source's."""

CAPABILITIES = Capabilities(
    name=MSSQL,
    default_port=1433,
    title="SQL Server",
    refills_ranges_by_predicate=True,
    read_policies=READ_POLICIES,
    transient_errors=(
        # 1205 deadlock victim; FreeTDS (pymssql): 20003 timed out, 20004/20006 read/write failed, 20017 unexpected
        # EOF, 20047 the handle died with its socket, 20009 the server is unavailable (refused while it restarts);
        # ODBC (mssql-python): 08S01/08S02 the link is gone
        r"\b1205\b|deadlock victim|\b2000[36]\b|\b20017\b|DBPROCESS is dead|unexpected EOF from the server|"
        r"Unexpected EOF|(read from|write to) the server failed|Unable to connect: Adaptive Server is unavailable|"
        r"\b08S0[12]\b|communication link failure"
    ),
)

LEDGER_SCHEMA = "_ray_replicator"
_SYSTEM_SCHEMAS = ("sys", "INFORMATION_SCHEMA", "guest", LEDGER_SCHEMA)
_READERS = ("mssql-python", "pymssql")
_WRITERS = ("bulkcopy", "bulk-insert", "insert")
_ISOLATION = {"read-committed": "READ COMMITTED", "snapshot": "SNAPSHOT", "nolock": "READ UNCOMMITTED"}
_HUNDRED_NS = ("refuse", "round", "keep")
_NUL = ("refuse", "keep", "strip", "replace")
_VARIANT = ("refuse", "text")
# ODBC Driver 18.6 (mssql-python 1.16) refuses to encrypt a TDS packet above 16,359 bytes ("SSL Provider: Packet
# size too large for SSL Encrypt/Decrypt operations", measured), and a server may encrypt the whole session even
# with encrypt=no. 16,000 stays below that with margin; on plaintext sessions it reads as fast as 32,767.
_PACKET_SIZE = 16000
_INSERT_ROWS = 1000  # SQL Server's limit of rows in one VALUES list
_FK_ACTIONS = {"NO_ACTION": "NO ACTION", "CASCADE": "CASCADE", "SET_NULL": "SET NULL", "SET_DEFAULT": "SET DEFAULT"}
_SESSION_SQL = (
    "SET TEXTSIZE 2147483647; SET ANSI_NULLS ON; SET ANSI_WARNINGS ON; SET ANSI_PADDING ON; "
    "SET CONCAT_NULL_YIELDS_NULL ON; SET ARITHABORT ON; SET QUOTED_IDENTIFIER ON; SET DATEFORMAT ymd; "
    "SET NOCOUNT ON; SET XACT_ABORT ON"
)
_NS_MIN = dt.datetime(1677, 9, 22)
_NS_MAX = dt.datetime(2262, 4, 11)


# ---------------------------------------------------------------------------------------------------------
# URL, quoting, literals, predicates
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MssqlUrl:
    """A parsed mssql:// URL; the password is only ever handed to drivers."""

    host: str
    port: int
    user: str
    password: str
    database: str
    encrypt: str = "no"
    trust: bool = True
    ca_file: str | None = None
    hostname_in_certificate: str | None = None
    reader: str = "mssql-python"
    writer: str = "bulkcopy"
    bulk_dir: str | None = None
    server_bulk_dir: str | None = None
    isolation: str = "read-committed"
    hundred_ns: str = "refuse"
    nul: str = "refuse"
    sql_variant: str = "refuse"
    connect_timeout: float = 30.0
    """Seconds a connection attempt may take (option connect_timeout; the pipeline sets connect_timeout_s)."""

    @property
    def display(self) -> str:
        return f"mssql://{self.user}@{self.host}:{self.port}/{self.database}"


def _choice(opts: dict[str, str], name: str, allowed: Sequence[str], default: str) -> str:
    value = opts.pop(name, default).lower()
    if value not in allowed:
        raise UsageError(f"mssql URL option {name}={value!r} is not one of {', '.join(allowed)}")
    return value


def _yes(opts: dict[str, str], name: str, default: bool) -> bool:
    value = opts.pop(name, "yes" if default else "no").lower()
    if value not in ("yes", "no", "true", "false", "1", "0", "strict", "optional", "mandatory"):
        raise UsageError(f"mssql URL option {name}={value!r}: use yes or no")
    return value in ("yes", "true", "1", "strict", "mandatory")


_ENCRYPT = {
    "no": "no", "false": "no", "0": "no", "optional": "no",
    "yes": "yes", "true": "yes", "1": "yes", "mandatory": "yes",
    "strict": "strict",
}  # fmt: skip


def _tls_options(opts: dict[str, str]) -> tuple[str, bool, str | None, str | None]:
    """encrypt, trust, ca_file, hostname_in_certificate: verification is on whenever the session is encrypted
    on our request, unless trust_server_certificate=yes says otherwise."""
    raw = opts.pop("encrypt", "no").lower()
    if raw not in _ENCRYPT:
        raise UsageError(f"mssql URL option encrypt={raw!r} is not one of no, yes, strict")
    encrypt = _ENCRYPT[raw]
    ca_file = opts.pop("ca_file", None) or None
    hostname = opts.pop("hostname_in_certificate", None) or None
    # A ca_file asks for verification even with encrypt=no (it applies when the server forces encryption).
    trust = _yes(opts, "trust_server_certificate", encrypt == "no" and ca_file is None)
    if ca_file is not None:
        if not os.path.isfile(ca_file):
            raise UsageError(f"mssql URL option ca_file={ca_file!r}: no such file (give the PEM file of the CA)")
        if trust:
            raise UsageError("mssql URL options ca_file= and trust_server_certificate=yes contradict: drop one")
    if encrypt == "strict" and trust:
        raise UsageError(
            "encrypt=strict always verifies the server certificate (TDS 8.0): give ca_file=/path/ca.pem "
            "instead of trust_server_certificate=yes"
        )
    return encrypt, trust, ca_file, hostname


def parse_url(url: str) -> MssqlUrl:
    """Parse and validate an mssql:// URL; unknown options are refused so a typo is never silently ignored."""
    try:
        parts = urlsplit(url)
        port = parts.port or 1433
    except ValueError:  # its text would quote the URL, and a misread port may be a piece of the password
        raise UsageError(f"the SQL Server URL {url_problem(url) or 'cannot be parsed'}") from None
    if parts.scheme.split("+")[0] not in ("mssql", "sqlserver"):
        raise UsageError("not a SQL Server URL (expected mssql://user:password@host:port/database)")
    database = unquote(parts.path.lstrip("/")) or "master"
    opts = {k.lower(): v for k, v in parse_qsl(parts.query, keep_blank_values=True)}
    password = unquote(parts.password or "") or opts.pop("password", "")
    if "connect_timeout" in opts:
        connect_timeout = connect_timeout_of(f"connect_timeout={opts.pop('connect_timeout')}", 0.0)
    else:
        from ray_replicator.config import CONNECT_TIMEOUT_S  # a pipeline URL names it: workers skip pydantic

        connect_timeout = CONNECT_TIMEOUT_S
    encrypt, trust, ca_file, hostname = _tls_options(opts)
    out = MssqlUrl(
        host=parts.hostname or "127.0.0.1",
        port=port,
        user=unquote(parts.username or ""),
        password=password,
        database=database,
        encrypt=encrypt,
        trust=trust,
        ca_file=ca_file,
        hostname_in_certificate=hostname,
        reader=_choice(opts, "reader", _READERS, "mssql-python"),
        writer=_choice(opts, "writer", _WRITERS, "bulkcopy"),
        bulk_dir=opts.pop("bulk_dir", None),
        server_bulk_dir=opts.pop("server_bulk_dir", None),
        isolation=_choice(opts, "isolation", tuple(_ISOLATION), "read-committed"),
        hundred_ns=_choice(opts, "hundred_ns", _HUNDRED_NS, "refuse"),
        nul=_choice(opts, "nul", _NUL, "refuse"),
        sql_variant=_choice(opts, "sql_variant", _VARIANT, "refuse"),
        connect_timeout=connect_timeout,
    )
    opts.pop("password", None)
    if opts:
        raise UsageError(f"unknown mssql URL option(s) {', '.join(sorted(opts))}")
    if out.writer == "bulk-insert" and not out.bulk_dir:
        raise UsageError(
            "writer=bulk-insert needs bulk_dir=/local/path (and server_bulk_dir if the server sees it elsewhere)"
        )
    return out


# FreeTDS 20003 "Adaptive Server connection timed out"; ODBC HYT00 "Login timeout expired" and, for a server that
# accepts but never answers, "TCP Provider: Timeout error [258]".
_LOGIN_TIMEOUT = re.compile(
    r"\b20003\b|connection timed out|Login timeout expired|HYT00|TCP Provider: Timeout error", re.IGNORECASE
)


def quote_ident(name: str) -> str:
    """[name] with ] doubled: spaces, dots, quotes, unicode and reserved words all survive."""
    return "[" + name.replace("]", "]]") + "]"


def qualified(schema: str, name: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def n_literal(text: str) -> str:
    """An N'...' literal; U+0000 is spliced in with NCHAR(0) because a literal cannot hold it."""
    parts = text.replace("'", "''").split("\x00")
    return " + NCHAR(0) + ".join(f"N'{p}'" for p in parts) if len(parts) > 1 else f"N'{parts[0]}'"


def _iso(value: dt.datetime | dt.date | dt.time) -> str:
    return value.isoformat()


def sql_literal(value: Any, native: str) -> str:
    """A T-SQL expression of type `native` for a Python value (range bounds, which come from the server)."""
    if value is None:
        return f"CAST(NULL AS {native})"
    base = base_name(native)
    if isinstance(value, bool):
        text = "1" if value else "0"
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise EngineError(f"float value {value!r} has no SQL Server form")
        text = repr(value)
    elif isinstance(value, decimal.Decimal):
        text = format(value, "f")
    elif isinstance(value, bytes | bytearray | memoryview):
        text = "0x" + bytes(value).hex() if value else "CAST('' AS varbinary(1))"
    elif isinstance(value, uuid.UUID):
        text = f"'{value}'"
    elif isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            return f"CAST('{value.isoformat(sep=' ')}' AS {native})"
        text = f"CAST('{value.replace(tzinfo=None).isoformat(timespec='microseconds')}' AS datetime2(7))"
    elif isinstance(value, dt.date | dt.time):
        text = f"'{_iso(value)}'"
    elif isinstance(value, str):
        text = n_literal(value)
    else:
        raise EngineError(f"cannot write {type(value).__name__} value {value!r} as a {native} literal")
    if base in ("int", "bigint", "smallint", "tinyint", "bit") and not isinstance(value, str):
        return text
    return f"CAST({text} AS {native})"


def range_predicate(table: Table, rng: KeyRange) -> str:
    """The rows of `rng` as T-SQL. SQL Server has no row comparison, so (a, b) >= (x, y) is expanded to
    (a > x OR (a = x AND b >= y)); NULL keys belong to the "null" range only."""
    if rng.kind == "full":
        return "1 = 1"
    if rng.kind == "physical":
        raise UsageError(f"{table.qualified}: SQL Server ranges are by key; physical range {rng.range_id} unsupported")
    cols = rng.columns or table.split_key
    if not cols:
        raise UsageError(f"{table.qualified}: range {rng.range_id} has kind {rng.kind!r} but no key columns")
    idents = [quote_ident(c) for c in cols]
    if rng.kind == "null":
        return "(" + " OR ".join(f"{i} IS NULL" for i in idents) + ")"
    types = [table.column(c).native_type for c in cols]
    parts: list[str] = []
    for bound, lower in ((rng.lower, True), (rng.upper, False)):
        if bound is None:
            continue
        if len(bound) != len(cols):
            raise UsageError(f"{table.qualified}: range {rng.range_id} bound {bound!r} does not match key {cols}")
        lits = [sql_literal(v, t) for v, t in zip(bound, types, strict=True)]
        ors = []
        for i in range(len(cols)):
            eq = [f"{idents[j]} = {lits[j]}" for j in range(i)]
            last = i == len(cols) - 1
            op = (">=" if last else ">") if lower else ("<" if last else "<")
            ors.append("(" + " AND ".join([*eq, f"{idents[i]} {op} {lits[i]}"]) + ")")
        parts.append("(" + " OR ".join(ors) + ")")
    parts += [f"{quote_ident(c)} IS NOT NULL" for c in cols if table.column(c).nullable]
    return " AND ".join(parts) if parts else "1 = 1"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# ---------------------------------------------------------------------------------------------------------
# Connections
# ---------------------------------------------------------------------------------------------------------


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
    parts.append(f"PacketSize={_PACKET_SIZE}")
    return ";".join(parts)


_BUNDLE_LOCK = threading.Lock()
_bundle: dict[str, Any] = {"path": None, "cas": []}


def _trust_ca_file(ca_file: str) -> None:
    """Make `ca_file` trusted by mssql-python's TLS (ODBC Driver 18 and, for bulk copy, mssql-py-core).

    Neither takes a CA file per connection; both verify against OpenSSL's default trust file, which
    SSL_CERT_FILE names. One bundle per process holds that file's former content (the system store) plus every
    ca_file given, so a source and a target with different CAs both verify."""
    path = os.path.abspath(ca_file)
    with _BUNDLE_LOCK:
        if path in _bundle["cas"]:
            return
        if _bundle["path"] is None:
            base = os.environ.get("SSL_CERT_FILE") or ssl.get_default_verify_paths().cafile
            fd, bundle = tempfile.mkstemp(prefix="ray-replicator-ca-", suffix=".pem")
            with os.fdopen(fd, "wb") as out:
                if base and os.path.isfile(base):
                    with open(base, "rb") as f:
                        out.write(f.read().rstrip(b"\n") + b"\n")
            atexit.register(_remove_quietly, bundle)
            _bundle["path"] = bundle
        with open(path, "rb") as f, open(_bundle["path"], "ab") as out:
            out.write(f.read().rstrip(b"\n") + b"\n")
        _bundle["cas"].append(path)
        os.environ["SSL_CERT_FILE"] = _bundle["path"]


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)


def connect_mssql_python(u: MssqlUrl, autocommit: bool) -> Any:
    import mssql_python

    if not u.password:
        raise UsageError(f"{u.display}: mssql-python needs a password in the URL (it rejects an empty one)")
    if u.ca_file:
        _trust_ca_file(u.ca_file)
    # timeout= is ODBC's SQL_ATTR_LOGIN_TIMEOUT: it bounds the TCP connect, TLS handshake and login
    return mssql_python.connect(
        mssql_python_connection_string(u), autocommit=autocommit, timeout=max(1, math.ceil(u.connect_timeout))
    )


_FREETDS_LOCK = threading.Lock()
_freetds: dict[str, Any] = {"path": None, "sections": set()}


def _freetds_section(u: MssqlUrl) -> str:
    """A freetds.conf section for a verifying TLS connection: pymssql passes no CA file, certificate name or
    TDS 8.0 to FreeTDS, but FreeTDS reads them from the file FREETDSCONF names. One file per process, a section
    per endpoint, starting with the user's own file so its [global] settings still apply."""
    key = "|".join([u.host, str(u.port), u.encrypt, u.ca_file or "system", u.hostname_in_certificate or ""])
    name = "rr_" + hashlib.sha256(key.encode()).hexdigest()[:16]
    with _FREETDS_LOCK:
        if name in _freetds["sections"]:
            return name
        if _freetds["path"] is None:
            user_conf = os.environ.get("FREETDSCONF")
            fd, path = tempfile.mkstemp(prefix="ray-replicator-freetds-", suffix=".conf")
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                if user_conf and os.path.isfile(user_conf):
                    with open(user_conf, encoding="utf-8") as f:
                        out.write(f.read() + "\n")
            atexit.register(_remove_quietly, path)
            _freetds["path"] = path
        lines = [
            f"[{name}]",
            f"\thost = {u.host}",
            f"\tport = {u.port}",
            f"\tencryption = {'strict' if u.encrypt == 'strict' else 'require'}",
            f"\tca file = {os.path.abspath(u.ca_file) if u.ca_file else 'system'}",
            "\tcheck certificate hostname = yes",
        ]
        if u.hostname_in_certificate:
            lines.append(f"\tcertificate hostname = {u.hostname_in_certificate}")
        with open(_freetds["path"], "a", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")
        _freetds["sections"].add(name)
        os.environ["FREETDSCONF"] = _freetds["path"]
        return name


def connect_pymssql(u: MssqlUrl, autocommit: bool) -> Any:
    import pymssql

    server = u.host
    encryption: str | None = None
    if u.encrypt != "no" and u.trust:
        encryption = "require"
    elif u.encrypt != "no":
        server = _freetds_section(u)  # encryption, CA and names come from the section
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


class _Endpoint(Endpoint):
    """Shared by source and target: the parsed URL, error scrubbing, one control connection."""

    capabilities = CAPABILITIES
    control_driver = "mssql-python"

    def __init__(self, url: str) -> None:
        self.u = parse_url(url)
        self.display = self.u.display
        self._conn: Any = None

    # -- errors -------------------------------------------------------------------------------------------
    def _scrub(self, text: str) -> str:
        text = scrub(_one_line(text), [self.u.password])
        text = re.sub(r"DB-Lib error message \d+, severity \d+: General SQL Server error: Check messages.*$", "", text)
        return text.strip()

    def _error(self, what: str, exc: BaseException, hint: str = "") -> EngineError:
        if isinstance(exc, EngineError):
            return exc
        raw = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], bytes) else None
        text = raw.decode("utf-8", "replace") if raw is not None else str(exc) or type(exc).__name__
        msg = f"{what} on {self.display}: {self._scrub(text)}"
        if is_transient(RuntimeError(text), (CAPABILITIES,)):
            return TransientEngineError(msg + "; retried with a fresh connection")
        hint = hint_for(exc, hint)
        return EngineError(msg + (f"; {hint}" if hint else ""))

    # -- control connection -------------------------------------------------------------------------------
    def _connect(self, autocommit: bool) -> Any:
        try:
            if self.control_driver == "pymssql":
                conn = connect_pymssql(self.u, autocommit)
            else:
                conn = connect_mssql_python(self.u, autocommit)
            cur = conn.cursor()
            cur.execute(_SESSION_SQL)
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

    def _control(self) -> Any:
        if self._conn is None:
            self._conn = self._connect(autocommit=True)
        return self._conn

    def _rows(self, what: str, sql: str) -> list[tuple[Any, ...]]:
        try:
            cur = self._control().cursor()
            try:
                cur.execute(sql)
                return [tuple(r) for r in cur.fetchall()]
            finally:
                cur.close()
        except Exception as exc:
            raise self._error(what, exc) from None

    def _named_rows(self, what: str, sql: str) -> list[dict[str, Any]]:
        """Rows as dicts keyed by the result's column names."""
        try:
            cur = self._control().cursor()
            try:
                cur.execute(sql)
                names = [d[0] for d in cur.description]
                return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
            finally:
                cur.close()
        except Exception as exc:
            raise self._error(what, exc) from None

    def _value(self, what: str, sql: str) -> Any:
        rows = self._rows(what, sql)
        return rows[0][0] if rows else None

    def _exec(self, what: str, sql: str, hint: str = "") -> None:
        try:
            cur = self._control().cursor()
            try:
                cur.execute(sql)
            finally:
                cur.close()
        except Exception as exc:
            raise self._error(what, exc, hint) from None

    def count_range(self, table: Table, rng: KeyRange) -> int:
        sql = f"SELECT COUNT_BIG(*) FROM {qualified(table.schema, table.name)} WHERE {range_predicate(table, rng)}"
        return int(self._value(f"counting {table.qualified} range {rng.range_id}", sql) or 0)

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------------------
# Source: catalog
# ---------------------------------------------------------------------------------------------------------

_TABLES_SQL = """SELECT t.object_id, s.name AS schema_name, t.name AS table_name
FROM sys.tables t JOIN sys.schemas s ON s.schema_id = t.schema_id
WHERE t.is_ms_shipped = 0
ORDER BY s.name, t.name"""

_COLUMNS_SQL = """SELECT c.object_id, c.column_id, c.name, ty.name AS type_name, ty.is_user_defined,
       TYPE_NAME(ty.system_type_id) AS base_type,
       c.max_length, c.precision, c.scale, c.collation_name, c.is_nullable, c.is_identity, c.is_computed,
       cc.definition AS computed_definition, cc.is_persisted, dc.definition AS default_definition,
       CONVERT(decimal(38, 0), ic.seed_value) AS seed, CONVERT(decimal(38, 0), ic.increment_value) AS increment,
       CONVERT(decimal(38, 0), ic.last_value) AS last_value
FROM sys.columns c
JOIN sys.types ty ON ty.user_type_id = c.user_type_id
LEFT JOIN sys.computed_columns cc ON cc.object_id = c.object_id AND cc.column_id = c.column_id
LEFT JOIN sys.default_constraints dc ON dc.object_id = c.default_object_id
LEFT JOIN sys.identity_columns ic ON ic.object_id = c.object_id AND ic.column_id = c.column_id
WHERE c.object_id IN (SELECT object_id FROM sys.tables WHERE is_ms_shipped = 0)
ORDER BY c.object_id, c.column_id"""

# SELECT i.*: is_hypothetical (indexes the tuning advisor only imagined) is read when the server has it.
_INDEXES_SQL = """SELECT i.* FROM sys.indexes i WHERE i.index_id > 0
  AND i.object_id IN (SELECT object_id FROM sys.tables WHERE is_ms_shipped = 0)
ORDER BY i.object_id, i.index_id"""

_INDEX_COLUMNS_SQL = """SELECT ic.object_id, ic.index_id, c.name, ic.key_ordinal, ic.is_descending_key,
       ic.is_included_column,
       ic.index_column_id
FROM sys.index_columns ic
JOIN sys.columns c ON c.object_id = ic.object_id AND c.column_id = ic.column_id
WHERE ic.object_id IN (SELECT object_id FROM sys.tables WHERE is_ms_shipped = 0)
ORDER BY ic.object_id, ic.index_id, ic.is_included_column, ic.key_ordinal, ic.index_column_id"""

_FKS_SQL = """SELECT fk.object_id, fk.parent_object_id, fk.name, rs.name AS ref_schema, rt.name AS ref_table,
       fk.delete_referential_action_desc, fk.update_referential_action_desc
FROM sys.foreign_keys fk
JOIN sys.tables rt ON rt.object_id = fk.referenced_object_id
JOIN sys.schemas rs ON rs.schema_id = rt.schema_id
ORDER BY fk.parent_object_id, fk.name"""

_FK_COLUMNS_SQL = """SELECT fkc.constraint_object_id, fkc.constraint_column_id, pc.name AS column_name,
       rc.name AS ref_column
FROM sys.foreign_key_columns fkc
JOIN sys.columns pc ON pc.object_id = fkc.parent_object_id AND pc.column_id = fkc.parent_column_id
JOIN sys.columns rc ON rc.object_id = fkc.referenced_object_id AND rc.column_id = fkc.referenced_column_id
ORDER BY fkc.constraint_object_id, fkc.constraint_column_id"""

_ROWS_SQL = """SELECT p.object_id, SUM(p.rows) AS row_count, MAX(p.data_compression) AS data_compression
FROM sys.partitions p WHERE p.index_id IN (0, 1) GROUP BY p.object_id"""

_BYTES_SQL = """SELECT ps.object_id, SUM(ps.used_page_count) * 8192 AS bytes FROM sys.dm_db_partition_stats ps
GROUP BY ps.object_id"""


def _declared(r: dict[str, Any]) -> Declared:
    name = str(r["type_name"]).lower()
    if r["is_user_defined"] and name not in CLR_TYPES and r["base_type"] is not None:
        name = str(r["base_type"]).lower()  # alias types: the base type (the alias may not exist on the target)
    # A CLR user-defined type has no base type: its own name stays, and the unsupported_types setting decides.
    return Declared(name=name, max_length=int(r["max_length"]), precision=int(r["precision"]), scale=int(r["scale"]))


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


class MssqlSource(_Endpoint, Source):
    """Reads a SQL Server database: catalog, boundaries computed by the server, Arrow batches per range."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.control_driver = self.u.reader

    def _dicts(self, what: str, sql: str, names: Sequence[str]) -> list[dict[str, Any]]:
        return [dict(zip(names, r, strict=True)) for r in self._rows(what, sql)]

    def _tables(self) -> list[tuple[int, str, str]]:
        return [
            (int(oid), str(schema), str(name))
            for oid, schema, name in self._rows("listing tables", _TABLES_SQL)
            if schema not in _SYSTEM_SCHEMAS
        ]

    def table_names(self) -> tuple[str, list[tuple[str, str]]]:
        """The database's name and its tables' (schema, name), from sys.tables alone: enough to apply --tables and
        --exclude before any table's columns are read."""
        database = str(self._value("reading the database name", "SELECT DB_NAME()"))
        return database, [(schema, name) for _oid, schema, name in self._tables()]

    def catalog(self, include: list[str], exclude: list[str]) -> Catalog:
        """Details of the tables that include (all when empty) and exclude leave; the column, index and key rows of
        any other table are never turned into a Table (a sql_variant column there refuses nothing)."""
        database = str(self._value("reading the database name", "SELECT DB_NAME()"))
        collation = self._value(
            "reading the collation", "SELECT CAST(DATABASEPROPERTYEX(DB_NAME(), 'Collation') AS nvarchar(128))"
        )
        tables_raw = [t for t in self._tables() if chosen_by(t[1], t[2], include, exclude)]
        if include and not tables_raw:
            raise UsageError(f"no table on {self.display} matches include patterns {include}")
        by_id: dict[int, Table] = {}
        for oid, schema, name in tables_raw:
            by_id[int(oid)] = Table(schema=str(schema), name=str(name), columns=[])
        col_names = [
            "object_id",
            "column_id",
            "name",
            "type_name",
            "is_user_defined",
            "base_type",
            "max_length",
            "precision",
            "scale",
            "collation",
            "is_nullable",
            "is_identity",
            "is_computed",
            "computed_definition",
            "is_persisted",
            "default_definition",
            "seed",
            "increment",
            "last_value",
        ]
        for r in self._dicts("reading columns", _COLUMNS_SQL, col_names):
            t = by_id.get(int(r["object_id"]))
            if t is not None:
                t.columns.append(self._column(t, r))
        self._keys_and_indexes(by_id)
        self._foreign_keys(by_id)
        partitions = self._rows("reading row estimates", _ROWS_SQL)
        rows = {int(o): int(n or 0) for o, n, _ in partitions}
        # ROW, PAGE or columnstore compression on the heap or clustered index: the user chose small over fast.
        compressed = {int(o): int(c or 0) > 0 for o, _, c in partitions}
        try:
            sizes = {int(o): int(b or 0) for o, b in self._rows("reading table sizes", _BYTES_SQL)}
        except EngineError:  # needs VIEW DATABASE STATE; estimate from row counts and declared widths
            sizes = {}
        for oid, t in by_id.items():
            t.row_estimate = rows.get(oid, 0)
            t.large_values_compressed = compressed.get(oid)
            t.byte_estimate = sizes.get(oid) or t.row_estimate * self._row_width(t)
        return Catalog(engine=MSSQL, database=database, tables=list(by_id.values()), collation=collation)

    @staticmethod
    def _row_width(t: Table) -> int:
        width = 0
        for c in t.columns:
            length = c.logical.length
            width += 8 if length is None and c.logical.kind not in ("string", "binary") else min(length or 1000, 1000)
        return max(width, 1)

    def _column(self, t: Table, r: dict[str, Any]) -> Column:
        d = _declared(r)
        native = native_type(d)
        if d.name == "sql_variant" and self.u.sql_variant == "refuse":
            raise EngineError(
                f"{t.qualified}.{r['name']} is sql_variant, whose values lose their base type in a copy; "
                "add sql_variant=text to the source URL to copy them as text, or exclude the table"
            )
        identity = None
        if r["is_identity"]:
            identity = Identity(
                seed=int(r["seed"] if r["seed"] is not None else 1),
                increment=int(r["increment"] if r["increment"] is not None else 1),
                current=_int_or_none(r["last_value"]),
            )
        computed = None
        if r["is_computed"]:
            computed = str(r["computed_definition"]) + (" PERSISTED" if r["is_persisted"] else "")
        return Column(
            name=str(r["name"]),
            native_type=native,
            logical=logical_type(d),
            nullable=bool(r["is_nullable"]),
            default=r["default_definition"],
            identity=identity,
            computed=computed,
            collation=r["collation"],
        )

    def _keys_and_indexes(self, by_id: dict[int, Table]) -> None:
        indexes = [ix for ix in self._named_rows("reading indexes", _INDEXES_SQL) if not ix.get("is_hypothetical")]
        cols: dict[tuple[int, int], list[tuple[str, bool, bool]]] = {}
        for oid, iid, cname, _ko, desc, included, _icid in self._rows("reading index columns", _INDEX_COLUMNS_SQL):
            cols.setdefault((int(oid), int(iid)), []).append((str(cname), bool(desc), bool(included)))
        for ix in indexes:
            t = by_id.get(int(ix["object_id"]))
            if t is None:
                continue
            entries = cols.get((int(ix["object_id"]), int(ix["index_id"])), [])
            key_cols = tuple(c for c, _d, inc in entries if not inc)
            kind = str(ix["type_desc"]).upper()
            if ix["is_primary_key"]:
                t.primary_key = Key(str(ix["name"]), key_cols, primary=True)
                if kind != "CLUSTERED":  # a nonclustered primary key is remembered as such for SQL Server targets
                    t.indexes.append(Index(str(ix["name"]), key_cols, unique=True, method="PK NONCLUSTERED"))
            elif ix["is_unique_constraint"]:
                t.unique_keys.append(Key(str(ix["name"]), key_cols))
            elif kind in ("CLUSTERED", "NONCLUSTERED"):
                t.indexes.append(
                    Index(
                        name=str(ix["name"]),
                        columns=key_cols,
                        unique=bool(ix["is_unique"]),
                        include=tuple(c for c, _d, inc in entries if inc),
                        where=ix.get("filter_definition"),
                        descending=tuple(d for _c, d, inc in entries if not inc),
                        method=kind,
                    )
                )
            else:
                log.warning("index %s on %s is %s; not copied", ix["name"], t.qualified, kind.lower())

    def _foreign_keys(self, by_id: dict[int, Table]) -> None:
        cols: dict[int, list[tuple[str, str]]] = {}
        for fid, _n, cname, rname in self._rows("reading foreign key columns", _FK_COLUMNS_SQL):
            cols.setdefault(int(fid), []).append((str(cname), str(rname)))
        for fid, parent, name, ref_schema, ref_table, on_delete, on_update in self._rows(
            "reading foreign keys", _FKS_SQL
        ):
            t = by_id.get(int(parent))
            if t is None:
                continue
            pairs = cols.get(int(fid), [])
            t.foreign_keys.append(
                ForeignKey(
                    name=str(name),
                    columns=tuple(p[0] for p in pairs),
                    ref_schema=str(ref_schema),
                    ref_table=str(ref_table),
                    ref_columns=tuple(p[1] for p in pairs),
                    on_delete=_FK_ACTIONS.get(str(on_delete), "NO ACTION"),
                    on_update=_FK_ACTIONS.get(str(on_update), "NO ACTION"),
                )
            )

    # -- planning -----------------------------------------------------------------------------------------
    def split_boundaries(self, table: Table, parts: int) -> list[tuple[Any, ...]]:
        """The first key of each NTILE(parts) tile after the first, ordered by the server in the key columns' own
        types and collations (uniqueidentifier order, case-insensitive strings ...): never sorted in Python."""
        keys = table.split_key
        if parts < 2 or not keys:
            return []
        idents = ", ".join(quote_ident(k) for k in keys)
        not_null = " AND ".join(f"{quote_ident(k)} IS NOT NULL" for k in keys)
        sql = (
            f"SELECT {idents} FROM (SELECT {idents}, ROW_NUMBER() OVER (PARTITION BY rr_tile ORDER BY {idents}) "
            f"AS rr_rn, rr_tile FROM (SELECT {idents}, NTILE({int(parts)}) OVER (ORDER BY {idents}) AS rr_tile "
            f"FROM {qualified(table.schema, table.name)} WHERE {not_null}) AS tiles) AS firsts "
            f"WHERE rr_rn = 1 AND rr_tile > 1 ORDER BY {idents}"
        )
        rows = self._rows(f"splitting {table.qualified}", sql)
        out: list[tuple[Any, ...]] = []
        for r in rows:
            if not out or out[-1] != r:
                out.append(tuple(r))
        return out

    def range_boundaries(self, table: Table, rng: KeyRange, parts: int) -> list[tuple[Any, ...]]:
        """split_boundaries within key range `rng`: verify bisects a mismatched range with these cuts."""
        keys = rng.columns or table.split_key
        if parts < 2 or not keys or rng.kind != "key":
            return []
        idents = ", ".join(quote_ident(k) for k in keys)
        not_null = " AND ".join(f"{quote_ident(k)} IS NOT NULL" for k in keys)
        sql = (
            f"SELECT {idents} FROM (SELECT {idents}, ROW_NUMBER() OVER (PARTITION BY rr_tile ORDER BY {idents}) "
            f"AS rr_rn, rr_tile FROM (SELECT {idents}, NTILE({int(parts)}) OVER (ORDER BY {idents}) AS rr_tile "
            f"FROM {qualified(table.schema, table.name)} WHERE {range_predicate(table, rng)} AND {not_null}) "
            f"AS tiles) AS firsts WHERE rr_rn = 1 AND rr_tile > 1 ORDER BY {idents}"
        )
        out: list[tuple[Any, ...]] = []
        for r in self._rows(f"splitting {table.qualified} range {rng.range_id}", sql):
            if not out or out[-1] != tuple(r):
                out.append(tuple(r))
        return out

    def has_null_keys(self, table: Table) -> bool:
        nullable = [k for k in table.split_key if table.column(k).nullable]
        if not nullable:
            return False
        cond = " OR ".join(f"{quote_ident(k)} IS NULL" for k in nullable)
        sql = f"SELECT TOP (1) 1 FROM {qualified(table.schema, table.name)} WHERE {cond}"
        return bool(self._rows(f"checking NULL keys of {table.qualified}", sql))

    def physical_pages(self, table: Table) -> int:
        """0: a heap is copied as one range (SQL Server has no stable, cheap physical range predicate)."""
        return 0

    # -- reading ------------------------------------------------------------------------------------------
    def _select_expr(self, col: Column) -> str:
        """How a column is selected so the driver hands over exact values."""
        ident = quote_ident(col.name)
        n = base_name(col.native_type)
        scale = scale_of(col.native_type) if n in ("datetime2", "time", "datetimeoffset") else 0
        rounding = self.u.hundred_ns == "round" and scale == 7
        if n in ("char", "varchar", "text"):
            # decoded by the server with the column collation's code page, not by the client library
            length = col.logical.length
            target = "nvarchar(max)" if length is None or length > 4000 else f"nvarchar({length})"
            return f"CAST({ident} AS {target}) AS {ident}"
        if n == "ntext":
            return f"CAST({ident} AS nvarchar(max)) AS {ident}"
        if n == "image" or n in CLR_TYPES:
            return f"CAST({ident} AS varbinary(max)) AS {ident}"
        if n in ("xml", "sql_variant"):
            return f"CAST({ident} AS nvarchar(max)) AS {ident}"
        if n == "datetimeoffset":
            source = f"CAST({ident} AS datetimeoffset(6))" if rounding else ident
            return f"CAST({source} AS varchar(34)) AS {ident}"
        if n == "datetime2" and scale == 7:
            if rounding:
                return f"CAST({ident} AS datetime2(6)) AS {ident}"
            return f"CAST({ident} AS varchar(27)) AS {ident}"
        if n == "time" and scale == 7:
            if rounding:
                return f"CAST({ident} AS time(6)) AS {ident}"
            return f"CAST({ident} AS varchar(16)) AS {ident}"
        return ident

    def read_range(self, table: Table, rng: KeyRange, batch_rows: int, batch_bytes: int) -> Iterator[pa.RecordBatch]:
        cols = table.copy_columns
        sql = (
            f"SELECT {', '.join(self._select_expr(c) for c in cols)} FROM {qualified(table.schema, table.name)}"
            f"{' WITH (NOLOCK)' if self.u.isolation == 'nolock' else ''} WHERE {range_predicate(table, rng)}"
        )
        what = f"reading {table.qualified} range {rng.range_id}"
        conv = _Converter(table, cols, self.u)
        conn = self._reader_conn()
        cur = conn.cursor()
        try:
            cur.execute(sql)
            raw = self._arrow_batches(cur, batch_rows, batch_bytes) if self.u.reader == "mssql-python" else None
            if raw is None:
                raw = self._tuple_batches(cur, cols, batch_rows, batch_bytes)
            for batch in raw:
                fixed = conv.convert(batch)
                yield from _cap(fixed, batch_rows, batch_bytes)
        except EngineError:
            raise
        except Exception as exc:
            raise self._error(what, exc) from None
        finally:
            with contextlib.suppress(Exception):
                cur.close()

    def _reader_conn(self) -> Any:
        conn = self._control()
        if not getattr(self, "_isolation_set", False):
            self._exec("setting the isolation level", f"SET TRANSACTION ISOLATION LEVEL {_ISOLATION[self.u.isolation]}")
            self._isolation_set = True
        return conn

    @staticmethod
    def _arrow_batches(cur: Any, batch_rows: int, batch_bytes: int) -> Iterator[pa.RecordBatch]:
        n = min(batch_rows, 8192)
        while True:
            batch = cur.arrow_batch(n)
            if batch.num_rows == 0:
                return
            yield batch
            n = _next_size(batch, batch_rows, batch_bytes)

    @staticmethod
    def _tuple_batches(cur: Any, cols: list[Column], batch_rows: int, batch_bytes: int) -> Iterator[pa.RecordBatch]:
        names = [c.name for c in cols]
        n = min(batch_rows, 4096)
        while True:
            rows = cur.fetchmany(n)
            if not rows:
                return
            columns = list(zip(*rows, strict=True))
            arrays = [pa.array(_pyvalues(c, v), type=_py_arrow_type(c)) for c, v in zip(cols, columns, strict=True)]
            batch = pa.RecordBatch.from_arrays(arrays, names=names)
            yield batch
            n = _next_size(batch, batch_rows, batch_bytes)


def _next_size(batch: pa.RecordBatch, batch_rows: int, batch_bytes: int) -> int:
    """Rows to ask for next so that a batch stays under batch_bytes, from the last batch's bytes per row."""
    per_row = max(batch.nbytes / max(batch.num_rows, 1), 1.0)
    return max(1, min(batch_rows, int(batch_bytes / per_row)))


def _cap(batch: pa.RecordBatch, batch_rows: int, batch_bytes: int) -> Iterator[pa.RecordBatch]:
    if batch.num_rows <= batch_rows and batch.nbytes <= batch_bytes:
        yield batch
        return
    step = max(1, min(batch_rows, int(batch_bytes / max(batch.nbytes / max(batch.num_rows, 1), 1.0))))
    for start in range(0, batch.num_rows, step):
        yield batch.slice(start, step)


def _has_nul(arr: pa.Array) -> bool:
    """Whether any value holds U+0000: one scan of the bytes the values span (a per-value substring search
    cost a quarter of the reader's CPU on text-heavy tables)."""
    _, offsets_buf, data = arr.buffers()
    if data is None or len(arr) == 0:
        return False
    offsets = np.frombuffer(offsets_buf, np.int64 if pa.types.is_large_string(arr.type) else np.int32)
    start, end = int(offsets[arr.offset]), int(offsets[arr.offset + len(arr)])
    return end > start and bool(np.frombuffer(data, np.uint8)[start:end].min() == 0)


def _py_arrow_type(col: Column) -> pa.DataType | None:
    """The Arrow type pymssql's Python values are first put into (the converter then makes them exact)."""
    n = base_name(col.native_type)
    if n == "uniqueidentifier":
        return pa.binary(16)
    if n in ("datetime2", "time", "datetimeoffset") and scale_of(col.native_type) == 7:
        return None  # text or a rounded value, depending on hundred_ns
    if n == "datetimeoffset":
        return pa.string()
    if n in ("datetime", "smalldatetime"):
        return pa.timestamp("us")
    return arrow_type(col)


def _pyvalues(col: Column, values: Sequence[Any]) -> Sequence[Any]:
    if base_name(col.native_type) == "uniqueidentifier":
        return [
            None if v is None else (v.bytes if isinstance(v, uuid.UUID) else uuid.UUID(str(v)).bytes) for v in values
        ]
    return values


# ---------------------------------------------------------------------------------------------------------
# Exact Arrow values from whatever a driver produced
# ---------------------------------------------------------------------------------------------------------


class _Converter:
    """Turns a driver's batch into the exact Arrow types of mssql_types.arrow_type and applies the policies."""

    def __init__(self, table: Table, cols: list[Column], u: MssqlUrl) -> None:
        self.table = table
        self.cols = cols
        self.u = u
        self.types = [arrow_type(c, u.hundred_ns) for c in cols]
        self.key = [c for c in table.split_key if any(x.name == c for x in cols)]

    def _where(self, batch: pa.RecordBatch, row: int) -> str:
        if not self.key:
            return f"row {row + 1} of its batch (the table has no key)"
        vals = ", ".join(f"{k}={batch.column(batch.schema.get_field_index(k))[row].as_py()!r}" for k in self.key)
        return f"key {vals}"

    def _fail(self, batch: pa.RecordBatch, col: Column, row: int, value: Any, why: str) -> EngineError:
        return EngineError(f"{self.table.qualified}.{col.name} at {self._where(batch, row)}: value {value!r} {why}")

    def convert(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        arrays = []
        for i, (col, want) in enumerate(zip(self.cols, self.types, strict=True)):
            arr = batch.column(i)
            arr = self._one(batch, col, want, arr)
            arrays.append(arr)
        return pa.RecordBatch.from_arrays(
            arrays, schema=pa.schema([pa.field(c.name, t) for c, t in zip(self.cols, self.types, strict=True)])
        )

    def _one(self, batch: pa.RecordBatch, col: Column, want: pa.DataType, arr: pa.Array) -> pa.Array:
        n = base_name(col.native_type)
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if n == "uniqueidentifier":
            return self._uuid(arr)
        if pa.types.is_string(want) or pa.types.is_large_string(want):
            if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
                arr = arr.cast(pa.large_string())
            arr = self._text(batch, col, arr)
            if n == "datetimeoffset":
                arr = self._offset_text(batch, col, arr)
            return arr.cast(want)
        if n in ("datetime2", "time") and (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            return self._seven(batch, col, want, arr)
        if n == "datetime" or n == "smalldatetime":
            return self._ms(batch, col, want, arr)
        if arr.type != want:
            try:
                return arr.cast(want, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise EngineError(
                    f"{self.table.qualified}.{col.name}: driver type {arr.type} does not convert exactly to {want}: "
                    f"{_one_line(str(exc))}"
                ) from None
        return arr

    @staticmethod
    def _uuid(arr: pa.Array) -> pa.Array:
        if pa.types.is_fixed_size_binary(arr.type) or pa.types.is_binary(arr.type):
            storage = arr.cast(pa.binary(16))
        else:  # mssql-python hands uniqueidentifier over as text
            text = arr.cast(pa.string())
            hexed = pc.replace_substring(text, "-", "")
            storage = pa.array([None if h is None else bytes.fromhex(h) for h in hexed.to_pylist()], type=pa.binary(16))
        return pa.ExtensionArray.from_storage(pa.uuid(), storage)

    def _text(self, batch: pa.RecordBatch, col: Column, arr: pa.Array) -> pa.Array:
        if self.u.nul == "keep" or col.logical.kind not in ("string", "xml", "other") or not _has_nul(arr):
            return arr
        has = pc.match_substring(arr, "\x00")
        if self.u.nul == "strip":
            return pc.replace_substring(arr, "\x00", "")
        if self.u.nul == "replace":
            return pc.replace_substring(arr, "\x00", "\ufffd")
        row = int(pc.index(has, True).as_py())
        raise self._fail(
            batch,
            col,
            row,
            arr[row].as_py(),
            "contains NUL (U+0000), which PostgreSQL text cannot hold; add nul=keep (SQL Server targets), "
            "nul=strip or nul=replace (U+FFFD) to the source URL, or clean the value at the source",
        )

    def _offset_text(self, batch: pa.RecordBatch, col: Column, arr: pa.Array) -> pa.Array:
        """datetimeoffset text 'YYYY-MM-DD hh:mm:ss[.fffffff] +hh:mm': check the 100 ns digit."""
        if self.u.hundred_ns != "refuse" or scale_of(col.native_type) < 7:
            return arr
        bad = pc.match_substring_regex(arr, r"\.\d{6}[1-9] ")
        if pc.any(bad).as_py():
            row = int(pc.index(bad, True).as_py())
            raise self._fail(batch, col, row, arr[row].as_py(), _SEVEN_WHY)
        return pc.replace_substring_regex(arr, r"(\.\d{6})0 ", r"\1 ")

    def _seven(self, batch: pa.RecordBatch, col: Column, want: pa.DataType, arr: pa.Array) -> pa.Array:
        """datetime2(7)/time(7) as SQL Server's text: exact 100 ns units, parsed without Python per value."""
        text = arr.cast(pa.string())
        is_time = base_name(col.native_type) == "time"
        whole_len = 8 if is_time else 19
        whole = pc.utf8_slice_codeunits(text, 0, whole_len)
        frac = pc.utf8_rpad(pc.utf8_slice_codeunits(text, whole_len + 1, whole_len + 8), 7, "0")
        units = pc.cast(frac, pa.int64())  # 100 ns units within the second
        if self.u.hundred_ns == "refuse":
            bad = pc.not_equal(_mod(units, 10), 0)
            if pc.any(bad).as_py():
                row = int(pc.index(bad, True).as_py())
                raise self._fail(batch, col, row, text[row].as_py(), _SEVEN_WHY)
        if is_time:
            parts = pc.split_pattern(whole, ":")
            secs = pc.add(
                pc.add(
                    pc.multiply(pc.cast(pc.list_element(parts, 0), pa.int64()), 3600),
                    pc.multiply(pc.cast(pc.list_element(parts, 1), pa.int64()), 60),
                ),
                pc.cast(pc.list_element(parts, 2), pa.int64()),
            )
        else:
            secs = pc.cast(pc.strptime(whole, format="%Y-%m-%d %H:%M:%S", unit="s"), pa.int64())
        if _unit(want) == "ns":
            if not is_time:
                out = pc.or_(
                    pc.less(whole, _NS_MIN.isoformat(sep=" ")), pc.greater_equal(whole, _NS_MAX.isoformat(sep=" "))
                )
                if pc.any(out).as_py():
                    row = int(pc.index(out, True).as_py())
                    raise self._fail(
                        batch,
                        col,
                        row,
                        text[row].as_py(),
                        "is outside 1677..2262, where hundred_ns=keep cannot hold it",
                    )
            return pc.add(pc.multiply(secs, 1_000_000_000), pc.multiply(units, 100)).cast(want)
        return pc.add(pc.multiply(secs, 1_000_000), pc.divide(units, 10)).cast(want)

    def _ms(self, batch: pa.RecordBatch, col: Column, want: pa.DataType, arr: pa.Array) -> pa.Array:
        """datetime is shown to the millisecond (1/300 s ticks rounded); anything finer is a driver surprise."""
        try:
            return arr.cast(pa.timestamp("us")).cast(want, safe=True)
        except pa.ArrowInvalid:
            us = arr.cast(pa.timestamp("us")).cast(pa.int64())
            step = 1000 if want == pa.timestamp("ms") else 1_000_000
            bad = pc.not_equal(pc.subtract(us, pc.multiply(pc.divide(us, step), step)), 0)
            row = int(pc.index(bad, True).as_py())
            raise self._fail(batch, col, row, arr[row].as_py(), f"is finer than {col.native_type} allows") from None


_SEVEN_WHY = (
    "has a non-zero 100 ns digit, which Arrow microseconds and PostgreSQL cannot hold; add hundred_ns=round "
    "(round to microseconds) or hundred_ns=keep (SQL Server targets) to the source URL"
)


# ---------------------------------------------------------------------------------------------------------
# Target
# ---------------------------------------------------------------------------------------------------------

_LEDGER_TABLES = {
    "runs": (
        "run_id nvarchar(64) NOT NULL PRIMARY KEY, plan_hash nvarchar(64) NULL, schema_hash nvarchar(64) NULL, "
        "state nvarchar(32) NOT NULL, started_at datetime2(6) NOT NULL, finished_at datetime2(6) NULL"
    ),
    "ranges": (
        "run_id nvarchar(64) NOT NULL, range_id nvarchar(400) NOT NULL, schema_name nvarchar(128) NULL, "
        "table_name nvarchar(128) NULL, kind nvarchar(16) NULL, state nvarchar(16) NOT NULL, rows bigint NULL, "
        "bytes bigint NULL, seconds float NULL, node nvarchar(128) NULL, error nvarchar(max) NULL, "
        "updated_at datetime2(6) NOT NULL, CONSTRAINT PK_rr_ranges PRIMARY KEY (run_id, range_id)"
    ),
    "plans": (
        "run_id nvarchar(64) NOT NULL, part int NOT NULL, plan_text nvarchar(max) NOT NULL, "
        "saved_at datetime2(6) NOT NULL, CONSTRAINT PK_rr_plans PRIMARY KEY (run_id, part)"
    ),
}
_RUNS = qualified(LEDGER_SCHEMA, "runs")
_RANGES = qualified(LEDGER_SCHEMA, "ranges")
_PLANS = qualified(LEDGER_SCHEMA, "plans")
_PLAN_PART_CHARS = 200_000
"""A plan is stored in parts of this many characters so no single T-SQL literal grows with the plan."""


def _now() -> str:
    return "SYSUTCDATETIME()"


class MssqlTarget(_Endpoint, Target):
    """Writes into SQL Server: DDL with exact types, three write strategies, keys after load, the ledger."""

    control_driver = "mssql-python"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._tx: Any = None
        self._identity_checked: set[str] = set()
        self._typed: dict[tuple[str, str, tuple[tuple[str, str], ...]], Table] = {}

    # -- transactions -------------------------------------------------------------------------------------
    def _txconn(self) -> Any:
        """A second connection with autocommit off, for writes that commit with their ledger mark."""
        if self._tx is None:
            self._tx = self._connect(autocommit=False)
        return self._tx

    def close(self) -> None:
        if self._tx is not None:
            with contextlib.suppress(Exception):
                self._tx.close()
            self._tx = None
        super().close()

    # -- prepare ------------------------------------------------------------------------------------------
    def prepare(self, catalog: Catalog, source_engine: str, options: WriteOptions) -> None:
        self._ensure_ledger()
        for schema in sorted({t.schema for t in catalog.tables}):
            self._ensure_schema(schema)
        for table in catalog.tables:
            self._prepare_table(table, source_engine, options)

    def _ensure_schema(self, schema: str) -> None:
        exists = self._value(f"checking schema {schema}", f"SELECT SCHEMA_ID({n_literal(schema)})")
        if exists is None:
            self._exec(
                f"creating schema {schema}",
                f"CREATE SCHEMA {quote_ident(schema)}",
                OnDenied("the user needs CREATE SCHEMA"),
            )

    def _table_exists(self, schema: str, name: str) -> bool:
        sql = (
            "SELECT COUNT(*) FROM sys.tables t JOIN sys.schemas s ON s.schema_id = t.schema_id "
            f"WHERE s.name = {n_literal(schema)} AND t.name = {n_literal(name)}"
        )
        return bool(self._value(f"checking table {schema}.{name}", sql))

    def column_ddl(self, col: Column, source_engine: str, keyed: bool = False) -> str:
        """keyed: the column is in a key or index, where SQL Server refuses (max) types; unbounded text from
        another engine becomes nvarchar(450) there (900 key bytes), and a longer value fails loudly on load."""
        same = source_engine == MSSQL
        ident = quote_ident(col.name)
        if col.computed is not None and same:
            return f"{ident} AS {col.computed}"
        typ = mssql_type(col, source_engine)
        if keyed and not same and typ == "nvarchar(max)" and col.logical.kind == "string":
            typ = "nvarchar(450)"
        parts = [ident, typ]
        if same and col.collation and col.logical.kind == "string":
            parts.append(f"COLLATE {col.collation}")
        if col.identity is not None and base_name(mssql_type(col, source_engine)) in (
            "int",
            "bigint",
            "smallint",
            "tinyint",
            "decimal",
            "numeric",
        ):
            parts.append(f"IDENTITY({int(col.identity.seed)}, {int(col.identity.increment)})")
        elif same and col.default is not None:
            parts.append(f"DEFAULT {col.default}")
        parts.append("NULL" if col.nullable else "NOT NULL")
        return " ".join(parts)

    def _prepare_table(self, table: Table, source_engine: str, options: WriteOptions) -> None:
        rel = qualified(table.schema, table.name)
        keys = ([table.primary_key] if table.primary_key else []) + list(table.unique_keys)
        keyed = {c for k in keys for c in k.columns} | {c for ix in table.indexes for c in ix.columns}
        cols = []
        for c in table.columns:
            if c.computed is not None and source_engine != MSSQL:
                log.warning("computed column %s.%s is %s SQL; not created", table.qualified, c.name, source_engine)
                continue
            cols.append(self.column_ddl(c, source_engine, keyed=c.name in keyed))
        if self._table_exists(table.schema, table.name):
            if options.existing == "fail":
                raise UsageError(
                    f"target table {table.qualified} already exists; set existing to truncate or drop, or drop it"
                )
            if options.existing == "truncate":
                self._exec(f"truncating {table.qualified}", f"DELETE FROM {rel}")
                return
            self._exec(f"dropping {table.qualified}", f"DROP TABLE {rel}")
        self._exec(
            f"creating table {table.qualified}",
            f"CREATE TABLE {rel} ({', '.join(cols)})",
            "check that every type and collation exists on the target",
        )
        if options.keys_before_load:
            self._add_keys(table)

    # -- writes -------------------------------------------------------------------------------------------
    def write_range(
        self, table: Table, rng: KeyRange, batches: Iterable[pa.RecordBatch], options: WriteOptions
    ) -> RangeWrite:
        """Exactly once: the range is deleted before loading whenever an earlier attempt may have written it.

        insert and bulk-insert load inside one transaction with the ledger's done mark; bulkcopy runs on the
        driver's own connection, so it marks the range 'copying' first and a retry deletes what it left.
        """
        started = time.monotonic()
        what = f"writing {table.qualified} range {rng.range_id}"
        state = self._claim(rng, options.run_id, what)
        if state in ("done", "verified"):
            got = self.ledger_ranges(options.run_id).get(rng.range_id, {})
            return RangeWrite(rows=int(got.get("rows") or 0), bytes=int(got.get("bytes") or 0), fresh=False)
        counter = _Counter()
        counted = counter.wrap(iter(batches))
        try:
            if self._writer_for(table) == "bulkcopy":
                self._mark(options.run_id, rng.range_id, "copying", what)
                if state != "planned":
                    self._exec(what, self._clear_sql(table, rng))
                sums = _IdentitySums(table)
                self._bulkcopy(table, sums.wrap(counted), what)
                self._check_identity_kept(table, rng, sums, what)
                self._done(options.run_id, rng, counter, time.monotonic() - started, what)
            else:
                conn = self._txconn()
                cur = conn.cursor()
                try:
                    cur.execute(
                        f"SELECT state FROM {_RANGES} WITH (UPDLOCK, HOLDLOCK) "
                        f"WHERE run_id = {n_literal(options.run_id)} "
                        f"AND range_id = {n_literal(rng.range_id)}"
                    )
                    cur.fetchall()
                    if state != "planned":
                        cur.execute(self._clear_sql(table, rng))
                    if self._writer_for(table) == "insert":
                        self._insert(cur, table, counted)
                    else:
                        self._bulk_insert(cur, table, rng, counted)
                    cur.execute(self._done_sql(options.run_id, rng, counter, time.monotonic() - started))
                    conn.commit()
                except BaseException:
                    with contextlib.suppress(Exception):
                        conn.rollback()
                    raise
                finally:
                    with contextlib.suppress(Exception):
                        cur.close()
        except EngineError:
            raise
        except Exception as exc:
            self._tx = None
            raise self._error(what, exc, _write_hint(str(exc))) from None
        return RangeWrite(rows=counter.rows, bytes=counter.bytes)

    def _clear_sql(self, table: Table, rng: KeyRange) -> str:
        """Deletes what an earlier attempt at the range may have left. The planner gives a SQL Server target only
        ranges it can select again (plan_catalog): whole tables, and key ranges of keys ordered here as at the
        source. A physical range can only come from a plan stored by an older version, and SQL Server cannot tell
        its rows apart."""
        if rng.kind == "physical":
            raise UsageError(
                f"{table.qualified}: range {rng.range_id} was begun by an earlier attempt, and SQL Server cannot tell "
                "its rows from the other ranges' of a table without a key; run without --resume and with "
                "existing = drop"
            )
        return f"DELETE FROM {qualified(table.schema, table.name)} WHERE {self._predicate(table, rng)}"

    def _predicate(self, table: Table, rng: KeyRange) -> str:
        """The range's rows in this database: its bounds cast to the key columns' types as declared here. The
        catalog's native types are the source's (uuid, boolean, timestamp with time zone from PostgreSQL), which
        are no T-SQL type names."""
        if rng.kind != "key":
            return range_predicate(table, rng)
        return range_predicate(self._typed_here(table, rng.columns or table.split_key), rng)

    def _typed_here(self, table: Table, columns: tuple[str, ...]) -> Table:
        key = (table.schema, table.name, tuple((c.name, c.native_type) for c in table.columns))
        if key not in self._typed:
            names = ("name", "type_name", "is_user_defined", "base_type", "max_length", "precision", "scale")
            rows = self._rows(
                f"reading the column types of {table.qualified}",
                "SELECT c.name, ty.name, ty.is_user_defined, TYPE_NAME(ty.system_type_id), c.max_length, "
                "c.precision, c.scale FROM sys.columns c JOIN sys.types ty ON ty.user_type_id = c.user_type_id "
                f"WHERE c.object_id = OBJECT_ID({n_literal(qualified(table.schema, table.name))})",
            )
            here = {str(r[0]): native_type(_declared(dict(zip(names, r, strict=True)))) for r in rows}
            missing = [c for c in columns if c not in here]
            if missing:
                raise EngineError(f"target table {table.qualified} has no column {', '.join(missing)}")
            self._typed[key] = replace(
                table, columns=[replace(c, native_type=here.get(c.name, c.native_type)) for c in table.columns]
            )
        return self._typed[key]

    def count_range(self, table: Table, rng: KeyRange) -> int:
        sql = f"SELECT COUNT_BIG(*) FROM {qualified(table.schema, table.name)} WHERE {self._predicate(table, rng)}"
        return int(self._value(f"counting {table.qualified} range {rng.range_id}", sql) or 0)

    def _writer_for(self, table: Table) -> str:
        """The URL's writer, except that datetimeoffset from SQL Server travels as text (instant and offset),
        which the bulk copy's Arrow writer does not take: such tables go through INSERT, exactly."""
        if self.u.writer == "bulkcopy" and any(base_name(c.native_type) == "datetimeoffset" for c in table.columns):
            return "insert"
        return self.u.writer

    def _claim(self, rng: KeyRange, run_id: str, what: str) -> str:
        rows = self._rows(
            what,
            f"SELECT state FROM {_RANGES} WHERE run_id = {n_literal(run_id)} AND range_id = {n_literal(rng.range_id)}",
        )
        if rows:
            return str(rows[0][0])
        self._insert_ranges(run_id, [rng])
        return "planned"

    def _mark(self, run_id: str, range_id: str, state: str, what: str) -> None:
        self._exec(
            what,
            f"UPDATE {_RANGES} SET state = {n_literal(state)}, updated_at = {_now()} "
            f"WHERE run_id = {n_literal(run_id)} AND range_id = {n_literal(range_id)}",
        )

    def _done_sql(self, run_id: str, rng: KeyRange, counter: _Counter, seconds: float) -> str:
        return (
            f"UPDATE {_RANGES} SET state = N'done', rows = {counter.rows}, bytes = {counter.bytes}, "
            f"seconds = {seconds!r}, error = NULL, updated_at = {_now()} "
            f"WHERE run_id = {n_literal(run_id)} AND range_id = {n_literal(rng.range_id)}"
        )

    def _done(self, run_id: str, rng: KeyRange, counter: _Counter, seconds: float, what: str) -> None:
        self._exec(what, self._done_sql(run_id, rng, counter, seconds))

    def _target_columns(self, table: Table) -> list[Column]:
        return [c for c in table.columns if c.computed is None]

    def _has_identity(self, table: Table) -> bool:
        return self._value(
            f"checking identity of {table.qualified}",
            f"SELECT OBJECTPROPERTY(OBJECT_ID({n_literal(qualified(table.schema, table.name))}), 'TableHasIdentity')",
        ) in (1, True)

    def _check_identity_kept(self, table: Table, rng: KeyRange, sums: _IdentitySums, what: str) -> None:
        """Once per table and process: the identity values the bulk load sent are the ones stored. A client or
        server that renumbers them would otherwise pass a count check silently."""
        if sums.column is None or sums.rows == 0 or table.qualified in self._identity_checked:
            return
        col = quote_ident(sums.column)
        got = self._rows(
            what,
            f"SELECT COUNT_BIG(*), SUM(CAST({col} AS decimal(38, 0))) FROM {qualified(table.schema, table.name)} "
            f"WHERE {self._predicate(table, rng)}",
        )[0]
        if int(got[0] or 0) != sums.rows or int(got[1] or 0) != sums.total:
            raise EngineError(
                f"{table.qualified}.{sums.column}: the bulk load did not keep the identity values it was sent "
                f"({sums.rows} rows summing to {sums.total}, stored {got[0]} rows summing to {got[1]}); "
                "use writer=insert or writer=bulk-insert for this target"
            )
        self._identity_checked.add(table.qualified)

    # (a) TDS bulk load
    def _bulkcopy(self, table: Table, batches: Iterator[pa.RecordBatch], what: str) -> None:
        cols = self._target_columns(table)
        first = next(batches, None)
        if first is None:
            return
        wire = [_wire_type(c, first.schema.field(c.name).type) for c in cols]
        schema = pa.schema([pa.field(c.name, t) for c, t in zip(cols, wire, strict=True)])

        def fixed() -> Iterator[pa.RecordBatch]:
            for b in chain([first], batches):
                yield _to_wire(table, b, cols, schema)

        reader = pa.RecordBatchReader.from_batches(schema, fixed())
        conn = self._control()
        cur = conn.cursor()
        try:
            cur.bulkcopy_arrow(
                qualified(table.schema, table.name),
                reader,
                column_mappings=[c.name for c in cols],
                keep_identity=True,
                keep_nulls=True,
                table_lock=True,
                timeout=0,
            )
        finally:
            with contextlib.suppress(Exception):
                cur.close()

    # (b) BULK INSERT from CSV files
    def _bulk_insert(self, cur: Any, table: Table, rng: KeyRange, batches: Iterator[pa.RecordBatch]) -> None:
        import pyarrow.csv as pacsv

        cols = self._target_columns(table)
        assert self.u.bulk_dir is not None
        name = f"rr_{os.getpid()}_{uuid.uuid4().hex[:12]}.csv"
        local = os.path.join(self.u.bulk_dir, name)
        server = (self.u.server_bulk_dir or self.u.bulk_dir).rstrip("/\\") + "/" + name
        writer = None
        opts = pacsv.WriteOptions(include_header=False, quoting_style="all_valid", delimiter=",")
        try:
            with open(local, "wb") as fh:
                for b in batches:
                    text = _csv_batch(table, b, cols)
                    if writer is None:
                        writer = pacsv.CSVWriter(fh, text.schema, write_options=opts)
                    writer.write_batch(text)
                if writer is not None:
                    writer.close()
            if writer is None:
                return
            target = qualified(table.schema, table.name)
            if any(c.computed is not None for c in table.columns):
                target = self._load_view(cur, table, cols)
            cur.execute(
                f"BULK INSERT {target} FROM {n_literal(server)} WITH (FORMAT = 'CSV', CODEPAGE = '65001', "
                "FIELDQUOTE = '\"', FIELDTERMINATOR = ',', ROWTERMINATOR = '0x0a', KEEPIDENTITY, KEEPNULLS, TABLOCK)"
            )
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(local)

    def _load_view(self, cur: Any, table: Table, cols: list[Column]) -> str:
        """BULK INSERT maps fields to every column; a view without the computed columns takes the file."""
        name = f"load_{table.schema}_{table.name}"[:128]
        view = qualified(LEDGER_SCHEMA, name)
        cur.execute(
            "SELECT COUNT(*) FROM sys.views v JOIN sys.schemas s ON s.schema_id = v.schema_id "
            f"WHERE s.name = {n_literal(LEDGER_SCHEMA)} AND v.name = {n_literal(name)}"
        )
        if not cur.fetchall()[0][0]:
            names = ", ".join(quote_ident(c.name) for c in cols)
            cur.execute(f"CREATE VIEW {view} AS SELECT {names} FROM {qualified(table.schema, table.name)}")
        return view

    # (c) multi-row INSERT VALUES
    def _insert(self, cur: Any, table: Table, batches: Iterator[pa.RecordBatch]) -> None:
        cols = self._target_columns(table)
        rel = qualified(table.schema, table.name)
        names = ", ".join(quote_ident(c.name) for c in cols)
        identity = any(c.identity is not None for c in cols)
        if identity:
            cur.execute(f"SET IDENTITY_INSERT {rel} ON")
        try:
            for b in batches:
                rows = _value_rows(table, b, cols)
                for start in range(0, len(rows), _INSERT_ROWS):
                    chunk = rows[start : start + _INSERT_ROWS]
                    cur.execute(f"INSERT INTO {rel} ({names}) VALUES {', '.join(chunk)}")
        finally:
            if identity:
                cur.execute(f"SET IDENTITY_INSERT {rel} OFF")

    # -- finalize -----------------------------------------------------------------------------------------
    def _index_names(self, table: Table) -> set[str]:
        sql = (
            "SELECT i.name FROM sys.indexes i WHERE i.object_id = OBJECT_ID("
            f"{n_literal(qualified(table.schema, table.name))}) AND i.name IS NOT NULL"
        )
        return {str(r[0]) for r in self._rows(f"listing indexes of {table.qualified}", sql)}

    def _add_keys(self, table: Table) -> None:
        rel = qualified(table.schema, table.name)
        existing = self._index_names(table)
        clustered_elsewhere = any(ix.method == "CLUSTERED" for ix in table.indexes)
        pk_nonclustered = any(ix.method == "PK NONCLUSTERED" for ix in table.indexes)
        keys = ([table.primary_key] if table.primary_key else []) + list(table.unique_keys)
        for key in keys:
            if key.name in existing:
                continue
            cols = ", ".join(quote_ident(k) for k in key.columns)
            if key.primary:
                kind = "PRIMARY KEY " + ("NONCLUSTERED" if clustered_elsewhere or pk_nonclustered else "CLUSTERED")
            else:
                kind = "UNIQUE NONCLUSTERED"
            self._exec(
                f"adding key {key.name} to {table.qualified}",
                f"ALTER TABLE {rel} ADD CONSTRAINT {quote_ident(key.name)} {kind} ({cols})",
                "the copied rows break the key: compare source and target",
            )

    def finalize_table(self, table: Table, source_engine: str, options: WriteOptions) -> None:
        rel = qualified(table.schema, table.name)
        same = source_engine == MSSQL
        existing = self._index_names(table)
        for ix in sorted(table.indexes, key=lambda i: i.method != "CLUSTERED"):  # clustered first: no rebuilds
            if ix.method == "CLUSTERED" and ix.name not in existing:
                self._create_index(table, ix, same)
                existing.add(ix.name)
        self._add_keys(table)
        existing = self._index_names(table)
        for ix in table.indexes:
            if ix.name in existing or ix.method in ("CLUSTERED", "PK NONCLUSTERED"):
                continue
            self._create_index(table, ix, same)
        for col in table.columns:
            ident = col.identity
            if ident is None or ident.current is None:
                continue
            self._exec(
                f"continuing identity of {table.qualified}.{col.name}",
                f"DBCC CHECKIDENT ({n_literal(rel)}, RESEED, {int(ident.current)}) WITH NO_INFOMSGS",
            )

    def _create_index(self, table: Table, ix: Index, same: bool) -> None:
        if not ix.columns or any(not c for c in ix.columns):
            log.warning("index %s on %s has expressions; skipped", ix.name, table.qualified)
            return
        if ix.where and not same:
            log.warning("index %s on %s has a filter in another dialect; skipped", ix.name, table.qualified)
            return
        cols = ", ".join(
            quote_ident(c) + (" DESC" if i < len(ix.descending) and ix.descending[i] else "")
            for i, c in enumerate(ix.columns)
        )
        kind = "CLUSTERED" if ix.method == "CLUSTERED" else "NONCLUSTERED"
        rel = qualified(table.schema, table.name)
        sql = f"CREATE {'UNIQUE ' if ix.unique else ''}{kind} INDEX {quote_ident(ix.name)} ON {rel} ({cols})"
        if ix.include:
            sql += f" INCLUDE ({', '.join(quote_ident(c) for c in ix.include)})"
        if ix.where:
            sql += f" WHERE {ix.where}"
        self._exec(f"creating index {ix.name} on {table.qualified}", sql)

    def finalize(self, catalog: Catalog, source_engine: str, options: WriteOptions) -> None:
        copied = {(t.schema, t.name) for t in catalog.tables}
        for table in catalog.tables:
            existing = {
                str(r[0])
                for r in self._rows(
                    f"listing foreign keys of {table.qualified}",
                    "SELECT name FROM sys.foreign_keys WHERE parent_object_id = OBJECT_ID("
                    f"{n_literal(qualified(table.schema, table.name))})",
                )
            }
            for fk in table.foreign_keys:
                if (fk.ref_schema, fk.ref_table) not in copied:
                    log.warning("foreign key %s on %s references a table not copied; skipped", fk.name, table.qualified)
                    continue
                if fk.name in existing:
                    continue
                cols = ", ".join(quote_ident(c) for c in fk.columns)
                refs = ", ".join(quote_ident(c) for c in fk.ref_columns)
                self._exec(
                    f"adding foreign key {fk.name} to {table.qualified}",
                    f"ALTER TABLE {qualified(table.schema, table.name)} WITH CHECK "
                    f"ADD CONSTRAINT {quote_ident(fk.name)} "
                    f"FOREIGN KEY ({cols}) REFERENCES {qualified(fk.ref_schema, fk.ref_table)} ({refs}) "
                    f"ON DELETE {fk.on_delete} ON UPDATE {fk.on_update}",
                    "rows reference missing parents (the source may hold untrusted keys): fix or drop the key",
                )

    # -- ledger -------------------------------------------------------------------------------------------
    def _ensure_ledger(self) -> None:
        self._ensure_schema(LEDGER_SCHEMA)
        for name, cols in _LEDGER_TABLES.items():
            if not self._table_exists(LEDGER_SCHEMA, name):
                self._exec(
                    "creating the ledger",
                    f"CREATE TABLE {qualified(LEDGER_SCHEMA, name)} ({cols})",
                    OnDenied("the user needs CREATE TABLE"),
                )

    def _insert_ranges(self, run_id: str, ranges: list[KeyRange]) -> None:
        have = {
            str(r[0])
            for r in self._rows(
                "reading the ledger", f"SELECT range_id FROM {_RANGES} WHERE run_id = {n_literal(run_id)}"
            )
        }
        fresh = [r for r in ranges if r.range_id not in have]
        for start in range(0, len(fresh), _INSERT_ROWS):
            values = ", ".join(
                f"({n_literal(run_id)}, {n_literal(r.range_id)}, {n_literal(r.schema)}, {n_literal(r.table)}, "
                f"{n_literal(r.kind)}, N'planned', {_now()})"
                for r in fresh[start : start + _INSERT_ROWS]
            )
            self._exec(
                "recording ranges in the ledger",
                f"INSERT INTO {_RANGES} (run_id, range_id, schema_name, table_name, kind, state, updated_at) "
                f"VALUES {values}",
            )

    @property
    def ledger(self) -> LedgerStore:
        return _TargetLedger(self)

    def ledger_init(self, run_id: str, plan_hash: str, schema_hash: str, ranges: list[KeyRange]) -> None:
        self._ensure_ledger()
        exists = self._value("reading the ledger", f"SELECT COUNT(*) FROM {_RUNS} WHERE run_id = {n_literal(run_id)}")
        if exists:
            self._exec(
                "recording the run",
                f"UPDATE {_RUNS} SET state = N'running', finished_at = NULL WHERE run_id = {n_literal(run_id)}",
            )
        else:
            self._exec(
                "recording the run",
                f"INSERT INTO {_RUNS} (run_id, plan_hash, schema_hash, state, started_at) VALUES ({n_literal(run_id)}, "
                f"{n_literal(plan_hash)}, {n_literal(schema_hash)}, N'running', {_now()})",
            )
        self._insert_ranges(run_id, ranges)

    def _has_ledger(self) -> bool:
        """Readers (status, --resume) look without creating: a target no run has written to stays untouched."""
        return self._table_exists(LEDGER_SCHEMA, "runs") and self._table_exists(LEDGER_SCHEMA, "ranges")

    def ledger_runs(self) -> list[dict[str, Any]]:
        if not self._has_ledger():
            return []
        names = ("run_id", "plan_hash", "schema_hash", "state", "started_at", "finished_at")
        rows = self._rows(
            "reading the ledger", f"SELECT {', '.join(names)} FROM {_RUNS} ORDER BY started_at DESC, run_id"
        )
        return [dict(zip(names, r, strict=True)) for r in rows]

    def ledger_ranges(self, run_id: str) -> dict[str, dict[str, Any]]:
        if not self._has_ledger():
            return {}
        names = ("state", "rows", "bytes", "seconds", "node", "error")
        rows = self._rows(
            "reading the ledger",
            f"SELECT range_id, {', '.join(names)} FROM {_RANGES} WHERE run_id = {n_literal(run_id)}",
        )
        return {str(r[0]): dict(zip(names, r[1:], strict=True)) for r in rows}

    def ledger_mark(self, run_id: str, range_ids: list[str], state: str, **info: Any) -> None:
        allowed = {"rows", "bytes", "seconds", "node", "error"}
        unknown = set(info) - allowed
        if unknown:
            raise UsageError(f"unknown ledger fields {sorted(unknown)}; allowed: {sorted(allowed)}")
        sets = [f"state = {n_literal(state)}", f"updated_at = {_now()}"]
        for k, v in info.items():
            sets.append(f"{k} = {_plain_literal(v)}")
        for start in range(0, len(range_ids), 500):
            ids = ", ".join(n_literal(r) for r in range_ids[start : start + 500])
            self._exec(
                f"marking ranges {state} in the ledger",
                f"UPDATE {_RANGES} SET {', '.join(sets)} WHERE run_id = {n_literal(run_id)} AND range_id IN ({ids})",
            )

    def ledger_finish(self, run_id: str, state: str) -> None:
        self._exec(
            "finishing the run in the ledger",
            f"UPDATE {_RUNS} SET state = {n_literal(state)}, finished_at = {_now()} WHERE run_id = {n_literal(run_id)}",
        )

    def ledger_save_plan(self, run_id: str, plan_json: str) -> None:
        """Keep the run's plan (ledger.plan_document) so --resume copies exactly the ranges it planned."""
        self._ensure_ledger()
        what = f"saving the plan of run {run_id} in the ledger"
        self._exec(what, f"DELETE FROM {_PLANS} WHERE run_id = {n_literal(run_id)}")
        parts = [plan_json[i : i + _PLAN_PART_CHARS] for i in range(0, len(plan_json), _PLAN_PART_CHARS)] or [""]
        for index, text in enumerate(parts):
            self._exec(
                what,
                f"INSERT INTO {_PLANS} (run_id, part, plan_text, saved_at) "
                f"VALUES ({n_literal(run_id)}, {index}, {n_literal(text)}, {_now()})",
            )

    def ledger_load_plan(self, run_id: str) -> str | None:
        if not self._table_exists(LEDGER_SCHEMA, "plans"):
            return None
        rows = self._rows(
            f"reading the plan of run {run_id} from the ledger",
            f"SELECT plan_text FROM {_PLANS} WHERE run_id = {n_literal(run_id)} ORDER BY part",
        )
        return "".join(str(r[0]) for r in rows) if rows else None


def _plain_literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(value)
    return n_literal(str(value))


def _write_hint(text: str) -> str:
    if "2627" in text or "2601" in text or "duplicate key" in text.lower():
        return "a key value arrived twice: compare source and target keys"
    if "515" in text or "NULL into column" in text:
        return "a NULL arrived for a NOT NULL column"
    if "8152" in text or "2628" in text or "truncated" in text.lower():
        return "a value is longer than the target column allows"
    if "4861" in text or "4860" in text or "Cannot bulk load" in text:
        return "the server cannot open the CSV file: server_bulk_dir must be bulk_dir as the server sees it"
    return ""


class _IdentitySums:
    """Sums the identity column of the batches that pass through (Arrow compute, no per-row Python)."""

    def __init__(self, table: Table) -> None:
        self.column = next((c.name for c in table.copy_columns if c.identity is not None), None)
        self.rows = 0
        self.total = 0

    def wrap(self, it: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for b in it:
            if self.column is not None:
                arr = b.column(b.schema.get_field_index(self.column))
                self.rows += len(arr) - arr.null_count
                total = pc.sum(arr.cast(pa.decimal128(38, 0))).as_py()
                self.total += int(total or 0)
            yield b


class _Counter:
    """Counts rows and bytes of the batches that pass through."""

    def __init__(self) -> None:
        self.rows = 0
        self.bytes = 0

    def wrap(self, it: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for b in it:
            self.rows += b.num_rows
            self.bytes += b.nbytes
            yield b


# ---------------------------------------------------------------------------------------------------------
# Arrow → wire forms for the writers
# ---------------------------------------------------------------------------------------------------------


def _is_uuid(t: pa.DataType) -> bool:
    return getattr(t, "extension_name", None) == "arrow.uuid"


def _wire_type(col: Column, got: pa.DataType) -> pa.DataType:
    """The Arrow type mssql-python's bulk copy receives for a column (text where it cannot take the type)."""
    if _is_uuid(got):
        return pa.string()
    if pa.types.is_large_string(got):
        return pa.large_string()
    if pa.types.is_timestamp(got):  # the Arrow writer takes tz-aware timestamps for datetimeoffset (+00:00)
        return pa.timestamp("ns" if got.unit == "ns" else "us", got.tz)
    if pa.types.is_uint8(got):
        return pa.uint8()
    return got


def _to_wire(table: Table, batch: pa.RecordBatch, cols: list[Column], schema: pa.Schema) -> pa.RecordBatch:
    arrays = []
    for col, field in zip(cols, schema, strict=True):
        arr = batch.column(batch.schema.get_field_index(col.name))
        if arr.type != field.type:
            arr = _as_text(arr) if pa.types.is_string(field.type) else arr.cast(field.type)
        arrays.append(arr)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _as_text(arr: pa.Array) -> pa.Array:
    """SQL Server's input form of a value as text (uuid, 100 ns times, timestamps, booleans, binary hex)."""
    t = arr.type
    if _is_uuid(t):
        return pa.array([None if v is None else str(v) for v in arr.to_pylist()], type=pa.string())
    if pa.types.is_timestamp(t):
        if t.unit == "ns":
            ints = arr.cast(pa.int64())
            secs = pc.divide(pc.subtract(ints, _mod(ints, 1_000_000_000)), 1_000_000_000)
            whole = pc.strftime(secs.cast(pa.timestamp("s")), format="%Y-%m-%d %H:%M:%S")
            frac = pc.utf8_lpad(pc.cast(pc.divide(_mod(ints, 1_000_000_000), 100), pa.string()), 7, "0")
            return pc.binary_join_element_wise(whole, frac, pa.scalar("."))
        return pc.strftime(arr, format="%Y-%m-%d %H:%M:%S")  # %S carries the unit's fractional digits
    if pa.types.is_time64(t) and t.unit == "ns":
        ints = arr.cast(pa.int64())
        secs = pc.divide(pc.subtract(ints, _mod(ints, 1_000_000_000)), 1_000_000_000)
        whole = secs.cast(pa.int32()).cast(pa.time32("s")).cast(pa.string())
        frac = pc.utf8_lpad(pc.cast(pc.divide(_mod(ints, 1_000_000_000), 100), pa.string()), 7, "0")
        return pc.binary_join_element_wise(whole, frac, pa.scalar("."))
    if pa.types.is_time(t):
        return arr.cast(pa.string())
    if pa.types.is_boolean(t):
        return arr.cast(pa.uint8()).cast(pa.string())
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return pa.array([None if v is None else v.hex() for v in arr.to_pylist()], type=pa.large_string())
    if pa.types.is_floating(t):
        return (
            pa.array([None if v is None else repr(float(v)) for v in arr.to_pylist()], type=pa.string())
            if pa.types.is_float64(t)
            else arr.cast(pa.string())
        )
    return arr.cast(pa.large_string()) if not pa.types.is_string(t) else arr


def _mod(ints: pa.Array, m: int) -> pa.Array:
    """Non-negative remainder in integers (values before 1970 are negative)."""
    r = pc.subtract(ints, pc.multiply(pc.divide(ints, m), m))  # integer division truncates toward zero
    return pc.if_else(pc.less(r, 0), pc.add(r, m), r)


def _unit(t: pa.DataType) -> str | None:
    return getattr(t, "unit", None)


def _csv_batch(table: Table, batch: pa.RecordBatch, cols: list[Column]) -> pa.RecordBatch:
    arrays = []
    for col in cols:
        arr = batch.column(batch.schema.get_field_index(col.name))
        if (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)) and pc.any(
            pc.match_substring(arr, "\x00")
        ).as_py():
            raise EngineError(
                f"{table.qualified}.{col.name}: text with NUL (U+0000) cannot travel in a BULK INSERT file; "
                "use writer=bulkcopy or writer=insert"
            )
        text = _as_text(arr)
        arrays.append(text.cast(pa.large_string()))
    return pa.RecordBatch.from_arrays(arrays, names=[c.name for c in cols])


def _value_rows(table: Table, batch: pa.RecordBatch, cols: list[Column]) -> list[str]:
    """Each row as '(lit, lit, ...)' built column-wise: Arrow compute makes the literals, one join per row."""
    lits = []
    for col in cols:
        arr = batch.column(batch.schema.get_field_index(col.name))
        lits.append(_literals(arr))
    joined = pc.binary_join_element_wise(*lits, _ls(", ")) if len(lits) > 1 else lits[0]
    return ["(" + s + ")" for s in joined.to_pylist()]


def _ls(text: str) -> pa.Scalar:
    return pa.scalar(text, pa.large_string())


def _literals(arr: pa.Array) -> pa.Array:
    t = arr.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        quoted = pc.replace_substring(arr.cast(pa.large_string()), "'", "''")
        quoted = pc.replace_substring(quoted, "\x00", "' + NCHAR(0) + N'")
        lit = pc.binary_join_element_wise(_ls("N'"), quoted, _ls("'"), _ls(""))
    elif pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        hexed = _as_text(arr)
        lit = pc.binary_join_element_wise(_ls("0x"), hexed.cast(pa.large_string()), _ls(""))
        # `0x` alone is SQL Server's empty binary; the CAST says the same to parsers that miss that form
        lit = pc.if_else(pc.equal(lit, _ls("0x")), _ls("CAST('' AS varbinary(1))"), lit)
    elif pa.types.is_integer(t) or pa.types.is_decimal(t):
        lit = arr.cast(pa.large_string())
    elif pa.types.is_boolean(t):
        lit = arr.cast(pa.uint8()).cast(pa.large_string())
    else:
        text = _as_text(arr).cast(pa.large_string())
        lit = pc.binary_join_element_wise(_ls("'"), text, _ls("'"), _ls(""))
    return pc.fill_null(lit.cast(pa.large_string()), "NULL")


class _TargetLedger:
    """The ledger half of a SQL Server target, as the stages see it (LedgerStore)."""

    def __init__(self, target: MssqlTarget) -> None:
        self._t = target

    def init(self, run_id: str, plan_hash: str, schema_hash: str, ranges: list[KeyRange]) -> None:
        self._t.ledger_init(run_id, plan_hash, schema_hash, ranges)

    def runs(self) -> list[dict[str, Any]]:
        return self._t.ledger_runs()

    def ranges(self, run_id: str) -> dict[str, dict[str, Any]]:
        return self._t.ledger_ranges(run_id)

    def mark(self, run_id: str, range_ids: list[str], state: str, **info: Any) -> None:
        self._t.ledger_mark(run_id, range_ids, state, **info)

    def finish(self, run_id: str, state: str) -> None:
        self._t.ledger_finish(run_id, state)

    def save_plan(self, run_id: str, plan_json: str) -> None:
        self._t.ledger_save_plan(run_id, plan_json)

    def load_plan(self, run_id: str) -> str | None:
        return self._t.ledger_load_plan(run_id)

    def claim_copying(self, run_id: str, range_id: str, node: str) -> None:
        """SQL Server's ledger has no 'copying' state: a range is planned until its rows and mark commit."""


SOURCE = MssqlSource
TARGET = MssqlTarget

__all__ = [
    "CAPABILITIES",
    "LEDGER_SCHEMA",
    "MssqlSource",
    "TransientEngineError",
    "MssqlTarget",
    "MssqlUrl",
    "mssql_python_connection_string",
    "n_literal",
    "parse_url",
    "qualified",
    "quote_ident",
    "range_predicate",
    "sql_literal",
]
