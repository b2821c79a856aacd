"""SQL Server source and target.

URL: ``mssql://user:password@host:port/database?option=value&...``. Every option and its default is a field of
config.MssqlUrl (url.py parses a URL into it); unknown options are refused. Options (default first):

- ``encrypt=no|yes|strict``: ``no`` encrypts the login only (the whole session if the server forces it), as SQL
  Server does; ``yes`` encrypts the whole session; ``strict`` is TDS 8.0 (TLS before the first TDS packet, SQL
  Server 2022+; needs ``reader=mssql-python`` or pymssql's FreeTDS 1.5). With ``yes`` and ``strict`` the server's
  certificate is verified: ``ca_file=/path/ca.pem`` names the CA (bundle) that signed it (otherwise the system's
  trust store), ``hostname_in_certificate=name`` the name to expect when the URL's host is not in the
  certificate (mssql-python), and ``trust_server_certificate=yes`` skips verification (not with ``strict``).
- ``reader=mssql-python|pymssql``: mssql-python fetches Arrow record batches in C (``cursor.arrow_batch``); pymssql
  builds columns from ``fetchmany`` tuples with one ``zip`` and one ``pa.array`` per column. Both are exact;
  mssql-python was 2-4x faster on the stand-in (StackOverflow-shaped, 180k rows: Votes 0.56-1.27 M rows/s against
  0.13-0.18 M, Posts 15-23k rows/s against 7-16k; ``RR_MSSQL_SPEED=1 pytest -s tests/engines/mssql/test_speed.py``),
  so it is the default. pymssql negotiates FreeTDS's packet size; mssql-python asks for config.MSSQL_PACKET_SIZE.
- ``writer=bulkcopy|bulk-insert|insert``: ``bulkcopy`` streams Arrow batches through mssql-python's TDS bulk
  load (``cursor.bulkcopy_arrow``, KEEP_IDENTITY, KEEP_NULLS, TABLOCK); ``bulk-insert`` writes RFC 4180 CSV files
  into ``bulk_dir`` (a local path) and runs ``BULK INSERT ... FROM '<server_bulk_dir>/file'`` (the same directory
  as the server sees it; FORMAT='CSV', CODEPAGE='65001', KEEPIDENTITY, KEEPNULLS, TABLOCK), removing each file
  after its load (a table with a varbinary-like column goes through the bulk copy instead: a CSV field cannot say
  "empty binary"; the run's warnings name it); ``insert`` sends 1000-row ``INSERT ... VALUES`` statements under
  ``SET IDENTITY_INSERT ON``.
  pymssql's ``bulk_copy`` is not offered: it sends '' as NULL and trims trailing spaces. Measured on the stand-in
  (same run): bulkcopy 127k rows/s (Votes) and 20k rows/s (Posts), bulk-insert 13k / 6.4k, insert 11k / 0.8k, so
  bulkcopy is the default; tables with datetimeoffset (text in Arrow, which the bulk copy's Arrow writer refuses)
  are written with INSERT. Exactly-once is delete-then-load: a range is deleted before loading only when the
  ledger shows an earlier attempt, so a first attempt pays nothing (no staging copy, no switch).
- ``isolation=read-committed|snapshot|nolock``: ``snapshot`` reads each range from one consistent version (the
  database needs ALLOW_SNAPSHOT_ISOLATION ON; ranges are separate statements, so the copy is consistent per
  range, not across ranges); ``nolock`` (READ UNCOMMITTED) can read uncommitted rows and read a row twice or
  not at all while pages split: use it only on a database nobody writes to.
- ``hundred_ns=auto|refuse|round|keep``: datetime2(7), time(7) and datetimeoffset(7) hold 100 ns digits that
  Arrow microsecond types and PostgreSQL cannot. ``auto`` (the default) is ``keep`` for a target that holds them
  (``Capabilities.carries.hundred_ns``: SQL Server) and ``refuse`` otherwise (``MssqlSource.url_for_target``).
  ``refuse`` stops with the table, column, key and value when such a digit is not zero; ``round`` lets SQL
  Server round those columns to microseconds (a value that would round past 9999-12-31 is still refused);
  ``keep`` keeps them over the whole range 0001..9999 (temporal.py: datetime2 as int64 100 ns ticks,
  time64('ns'), datetimeoffset text with 7 digits) for SQL Server targets.
- ``nul=refuse|keep|strip|replace``: U+0000 inside text, which PostgreSQL cannot store. ``refuse`` stops naming
  table, column and key; ``keep`` passes it (SQL Server targets); ``strip`` removes it; ``replace`` puts U+FFFD.
- ``connect_timeout=<seconds>`` (default: the ``connect_timeout_s`` setting, 30): how long a connection attempt
  (TCP, TLS, login) may take, with both drivers (pymssql ``login_timeout``, mssql-python's login timeout).
- ``sql_variant=refuse|text|keep``: sql_variant columns lose their base type in Arrow; ``text`` copies each value's
  exact text (its base type's exact CONVERT style, variant.VARIANT_STYLES) into ``nvarchar(max)`` (SQL Server
  targets) or ``text`` (PostgreSQL), with every writer (a ``type text`` schema change: docs/type-mapping.md);
  ``keep`` (SQL Server targets) copies each value with its base type into ``sql_variant``, written by INSERT;
  ``refuse`` stops at the catalog (only tables the filters leave are read).
- A policy the target cannot hold (``hundred_ns=keep``, ``nul=keep`` or ``sql_variant=keep`` into PostgreSQL,
  ``nul=keep`` with the target's ``writer=bulk-insert``) is refused at plan time (preflight.POLICY_RULES,
  Capabilities.carries/writers).

The package, by responsibility: url (the URL), connect and tls (connections, errors), catalog, read and values (the
source), ddl, target, write_bulk, write_files, write_insert and ledger (the target), sql (T-SQL text), types,
temporal (date and time values over their whole range), variant (sql_variant values as exact text, and back).
"""

from __future__ import annotations

from ray_replicator.config import MssqlUrl
from ray_replicator.engines.base import TransientEngineError
from ray_replicator.engines.mssql.catalog import LEDGER_SCHEMA
from ray_replicator.engines.mssql.connect import CAPABILITIES, connect_mssql_python, mssql_python_connection_string
from ray_replicator.engines.mssql.ledger import MssqlLedger
from ray_replicator.engines.mssql.read import MssqlSource
from ray_replicator.engines.mssql.sql import n_literal, qualified, quote_ident, range_predicate, sql_literal
from ray_replicator.engines.mssql.target import MssqlTarget
from ray_replicator.engines.mssql.url import parse_url

SOURCE = MssqlSource
TARGET = MssqlTarget

__all__ = [
    "CAPABILITIES",
    "LEDGER_SCHEMA",
    "SOURCE",
    "TARGET",
    "MssqlLedger",
    "MssqlSource",
    "MssqlTarget",
    "MssqlUrl",
    "TransientEngineError",
    "connect_mssql_python",
    "mssql_python_connection_string",
    "n_literal",
    "parse_url",
    "qualified",
    "quote_ident",
    "range_predicate",
    "sql_literal",
]
