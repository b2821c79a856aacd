"""The seam between the TDS front end (server.py/wire.py) and the SQL engine (engine.py).

The engine runs T-SQL and yields these objects; the front end encodes them as TDS tokens.
Keeping them plain data lets each side be tested alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa


@dataclass(frozen=True)
class ColumnSpec:
    """A result or table column with its declared SQL Server type.

    type_name is the SQL Server type in lower case: int, bigint, smallint, tinyint, bit, float, real,
    decimal, numeric, money, smallmoney, char, varchar, nchar, nvarchar, binary, varbinary, date, time,
    datetime, smalldatetime, datetime2, datetimeoffset, uniqueidentifier, timestamp (rowversion), xml,
    text, ntext, image, sql_variant.
    length is in bytes as SQL Server declares it (nvarchar(40) -> 80); -1 means (max).
    """

    name: str
    type_name: str
    length: int = 0
    precision: int = 0
    scale: int = 0
    nullable: bool = True
    identity: bool = False
    computed: bool = False
    collation: str | None = None
    #: an alias type's user_type_id, sent in COLMETADATA's UserType field (the value is of the base type)
    user_type: int = 0


@dataclass
class ResultSet:
    """Rows to stream. Arrow value conventions per type_name (the wire encoder relies on them):

    int/bigint/smallint/tinyint/bit -> int64/int32/int16/uint8/bool; float -> float64; real -> float32;
    decimal/numeric/money/smallmoney -> decimal128(p, s); char/varchar/nchar/nvarchar/xml/text/ntext -> string
    (large_string allowed); binary/varbinary/timestamp/image -> binary; date -> date32; time -> int64 of
    100 ns units since midnight; datetime/smalldatetime -> timestamp('us') holding the exact value SQL Server
    would show after rounding to its grid; datetime2 -> int64 of 100 ns units since 0001-01-01;
    datetimeoffset -> struct<utc: int64 100 ns since 0001-01-01, offset_min: int16>;
    uniqueidentifier -> fixed_size_binary(16) in RFC 4122 (big-endian) byte order; sql_variant -> string (sent
    with base type nvarchar), or an integer/floating Arrow type (sent with base type int, bigint or float).
    """

    columns: list[ColumnSpec]
    batches: Iterator[pa.RecordBatch]
    #: the statement whose DONE follows the rows: "select", or "insert"/"update"/"delete" for an OUTPUT clause
    statement: str = "select"


@dataclass(frozen=True)
class RowCount:
    """A statement that changed or selected rows without returning them (DONE with DONE_COUNT)."""

    count: int
    statement: str = "select"


@dataclass(frozen=True)
class Done:
    """A statement with no row count (DDL, SET, USE)."""

    statement: str = ""


@dataclass(frozen=True)
class Info:
    """An INFO token (class <= 10), e.g. PRINT or 'Changed database context'."""

    number: int
    message: str
    state: int = 1
    severity: int = 0


@dataclass(frozen=True)
class EnvChange:
    """An environment change the front end must announce (database, transaction begin/commit/rollback)."""

    kind: str  # "database", "begin_tran", "commit_tran", "rollback_tran"
    new_value: str | bytes = ""
    old_value: str | bytes = ""


@dataclass(frozen=True)
class ReturnValue:
    """An RPC output parameter or return status."""

    name: str
    value: object
    column: ColumnSpec | None = None


class SqlServerError(Exception):
    """An error as SQL Server reports it: number, state, class (severity) and message text."""

    def __init__(self, number: int, message: str, state: int = 1, severity: int = 16, line: int = 1):
        super().__init__(message)
        self.number = number
        self.message = message
        self.state = state
        self.severity = severity
        self.line = line


@dataclass
class BulkLoadRequest:
    """What `INSERT BULK t (cols) WITH (hints)` asked for; the rows arrive next in a 0x07 packet."""

    table: str
    columns: list[ColumnSpec] = field(default_factory=list)
    keep_identity: bool = False
    tablock: bool = False
    check_constraints: bool = False
    keep_nulls: bool = False


Result = ResultSet | RowCount | Done | Info | EnvChange | ReturnValue
