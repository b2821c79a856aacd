"""SQL Server data types: declared types, their DuckDB storage, and exact value conversions.

DuckDB cannot hold every SQL Server type as-is, so some are stored in the form the wire needs:

- time(n) and datetime2(n): BIGINT of 100 ns units (since midnight / since 0001-01-01), so 100 ns survive;
- datetimeoffset(n): STRUCT(utc BIGINT 100 ns since 0001-01-01, offset_min SMALLINT), so the offset survives;
- uniqueidentifier: 16-byte BLOB in SQL Server's *comparison* byte order (bytes 10-15 first), so DuckDB's
  byte-wise ORDER BY, MIN/MAX and range predicates give SQL Server's answers;
- datetime / smalldatetime: TIMESTAMP already rounded to SQL Server's grid (1/300 s, 1 minute);
- tinyint: UTINYINT; money: DECIMAL(19,4); smallmoney: DECIMAL(10,4); rowversion: 8-byte BLOB;
- sql_variant: BLOB holding the value with its base type (variant.py); geography, geometry, hierarchyid: BLOB
  of SQL Server's own serialization (clrtypes.py).

Conversions raise SqlServerError with SQL Server's numbers and texts (245, 2628, 8115, 220, 241, 242).
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import uuid
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .results import ColumnSpec, SqlServerError

TICKS_PER_SECOND = 10_000_000
TICKS_PER_DAY = 86_400 * TICKS_PER_SECOND
#: 100 ns units between 0001-01-01 and 1970-01-01.
EPOCH_TICKS = 719_162 * TICKS_PER_DAY
#: 100 ns units from 0001-01-01 to 10000-01-01: datetime2/datetimeoffset values stay below this
END_TICKS = 3_652_059 * TICKS_PER_DAY
_DATE0 = dt.date(1, 1, 1)
_DT1900 = dt.datetime(1900, 1, 1)
# decimal(38, s) needs 38 digits; Python's default context has 28 and would round or raise InvalidOperation.
EXACT = decimal.Context(prec=80, Emax=999_999, Emin=-999_999)

#: SQL Server compares uniqueidentifier values by these RFC-order bytes, most significant first
#: (memory order bytes 10-15, 8-9, 6-7, 4-5, 0-3 of the little-endian layout).
GUID_KEY_FROM_RFC = np.array([10, 11, 12, 13, 14, 15, 8, 9, 7, 6, 5, 4, 3, 2, 1, 0])
GUID_RFC_FROM_KEY = np.argsort(GUID_KEY_FROM_RFC)

_ALIASES = {
    "integer": "int",
    "rowversion": "timestamp",
    "double precision": "float",
    "character": "char",
    "character varying": "varchar",
    "national character varying": "nvarchar",
    "national char varying": "nvarchar",
    "national character": "nchar",
    "dec": "decimal",
}
KNOWN_TYPES = {
    "int",
    "bigint",
    "smallint",
    "tinyint",
    "bit",
    "float",
    "real",
    "decimal",
    "numeric",
    "money",
    "smallmoney",
    "char",
    "varchar",
    "nchar",
    "nvarchar",
    "binary",
    "varbinary",
    "date",
    "time",
    "datetime",
    "smalldatetime",
    "datetime2",
    "datetimeoffset",
    "uniqueidentifier",
    "timestamp",
    "xml",
    "text",
    "ntext",
    "image",
    "sysname",
    "sql_variant",
    "geography",
    "geometry",
    "hierarchyid",
}
#: SQL Server's CLR (assembly) types, held as their serialization
CLR_TYPES = {"geography", "geometry", "hierarchyid"}
STRING_TYPES = {"char", "varchar", "nchar", "nvarchar", "text", "ntext", "xml", "sysname"}
UNICODE_TYPES = {"nchar", "nvarchar", "ntext", "xml", "sysname"}
BINARY_TYPES = {"binary", "varbinary", "image", "timestamp", *CLR_TYPES}
INT_RANGES = {
    "tinyint": (0, 255),
    "smallint": (-(2**15), 2**15 - 1),
    "int": (-(2**31), 2**31 - 1),
    "bigint": (-(2**63), 2**63 - 1),
}
#: system_type_id and max_length/precision/scale as sys.types reports them.
TYPE_IDS = {
    "image": 34,
    "text": 35,
    "uniqueidentifier": 36,
    "date": 40,
    "time": 41,
    "datetime2": 42,
    "datetimeoffset": 43,
    "tinyint": 48,
    "smallint": 52,
    "int": 56,
    "smalldatetime": 58,
    "real": 59,
    "money": 60,
    "datetime": 61,
    "float": 62,
    "sql_variant": 98,
    "ntext": 99,
    "bit": 104,
    "decimal": 106,
    "numeric": 108,
    "smallmoney": 122,
    "bigint": 127,
    "varbinary": 165,
    "varchar": 167,
    "binary": 173,
    "char": 175,
    "timestamp": 189,
    "nvarchar": 231,
    "nchar": 239,
    "xml": 241,
    "sysname": 231,
    "hierarchyid": 240,
    "geometry": 240,
    "geography": 240,
}


@dataclass(frozen=True)
class SqlType:
    """A declared SQL Server type: length counts characters ((n)char/(n)varchar) or bytes; -1 = max."""

    name: str
    length: int = 0
    precision: int = 0
    scale: int = 0
    #: the user_type_id of the alias type (CREATE TYPE .. FROM) a column was declared with; 0 for a system type.
    #: Values behave as the base type, so it takes no part in comparing types.
    user_type: int = field(default=0, compare=False)

    def __str__(self) -> str:
        n = self.name
        if n in ("char", "varchar", "nchar", "nvarchar", "binary", "varbinary"):
            return f"{n}({'max' if self.length == -1 else self.length})"
        if n in ("decimal", "numeric"):
            return f"{n}({self.precision},{self.scale})"
        if n in ("time", "datetime2", "datetimeoffset"):
            return f"{n}({self.scale})"
        return n

    @property
    def max_length(self) -> int:
        """sys.columns.max_length: bytes, -1 for (max), 16 for text/ntext/image pointers."""
        n = self.name
        if n in ("char", "varchar", "binary", "varbinary"):
            return self.length
        if n in ("nchar", "nvarchar"):
            return -1 if self.length == -1 else self.length * 2
        if n == "xml" or n in ("geography", "geometry"):
            return -1
        if n == "hierarchyid":
            return 892
        if n in ("decimal", "numeric"):
            return decimal_storage(self.precision)
        return _FIXED_LENGTH.get(n, 0) if n not in ("time", "datetime2", "datetimeoffset") else _temporal_len(self)

    @property
    def is_string(self) -> bool:
        return self.name in STRING_TYPES

    @property
    def is_unicode(self) -> bool:
        return self.name in UNICODE_TYPES

    def column_spec(self, name: str, **kw: object) -> ColumnSpec:
        """The seam's ColumnSpec (length in bytes, as on the wire)."""
        n = "nvarchar" if self.name == "sysname" else self.name
        prec, scale = self.precision, self.scale
        if n in ("money", "smallmoney"):
            prec, scale = (19, 4) if n == "money" else (10, 4)
        elif n == "datetime":
            prec, scale = 23, 3
        elif n == "smalldatetime":
            prec, scale = 16, 0
        collation = "SQL_Latin1_General_CP1_CI_AS" if self.is_string and n != "xml" else None
        return ColumnSpec(
            name,
            n,
            self.max_length,
            prec,
            scale,
            collation=collation,
            user_type=self.user_type,
            **kw,  # type: ignore[arg-type]
        )


_FIXED_LENGTH = {
    "int": 4,
    "bigint": 8,
    "smallint": 2,
    "tinyint": 1,
    "bit": 1,
    "float": 8,
    "real": 4,
    "money": 8,
    "smallmoney": 4,
    "date": 3,
    "datetime": 8,
    "smalldatetime": 4,
    "uniqueidentifier": 16,
    "timestamp": 8,
    "text": 16,
    "ntext": 16,
    "image": 16,
    "sql_variant": 8016,
    "sysname": 256,
}


def _temporal_len(t: SqlType) -> int:
    base = 3 if t.scale <= 2 else 4 if t.scale <= 4 else 5
    return base + {"time": 0, "datetime2": 3, "datetimeoffset": 5}[t.name]


def decimal_storage(precision: int) -> int:
    return 5 if precision <= 9 else 9 if precision <= 19 else 13 if precision <= 28 else 17


_TYPE_RE = re.compile(r"^\s*([a-z_][a-z0-9_ ]*?)\s*(?:\(\s*([^)]*)\))?\s*$", re.I)


def parse_type(text: str) -> SqlType:
    """Parse 'nvarchar(40)', 'decimal(18, 2)', 'varchar(max)', '[int]' (SQL Server's defaults apply)."""
    text = text.replace("[", "").replace("]", "")
    m = _TYPE_RE.match(text)
    if not m:
        raise SqlServerError(2715, f"Column, parameter, or variable #1: Cannot find data type {text}.")
    name = re.sub(r"\s+", " ", m.group(1).lower())
    if name.startswith("sys.") or name.startswith("dbo."):
        name = name[4:]
    name = _ALIASES.get(name, name)
    if name not in KNOWN_TYPES:
        raise SqlServerError(2715, f"Column, parameter, or variable #1: Cannot find data type {m.group(1)}.")
    args = [a.strip().lower() for a in m.group(2).split(",")] if m.group(2) else []
    return make_type(name, args)


def make_type(name: str, args: list[str]) -> SqlType:
    """Build a SqlType from a name and its textual arguments, applying SQL Server's defaults."""
    if name in ("char", "varchar", "nchar", "nvarchar", "binary", "varbinary"):
        length = 1 if not args else (-1 if args[0] == "max" else int(args[0]))
        limit = 4000 if name.startswith("n") else 8000
        if length == 0 or length > limit:
            raise SqlServerError(
                131,
                f"The size ({length}) given to the type '{name}' exceeds the maximum allowed for any data "
                "type "
                f"({limit}).",
            )
        return SqlType(name, length)
    if name == "sysname":
        return SqlType("nvarchar", 128)
    if name in ("decimal", "numeric"):
        p = int(args[0]) if args else 18
        s = int(args[1]) if len(args) > 1 else 0
        if not 1 <= p <= 38 or s > p:
            raise SqlServerError(
                2750,
                f"Column or parameter #1: Specified column precision {p} is greater than the maximum precision of 38.",
            )
        return SqlType(name, 0, p, s)
    if name in ("time", "datetime2", "datetimeoffset"):
        s = int(args[0]) if args else 7
        if not 0 <= s <= 7:
            raise SqlServerError(1002, f"Specified scale {s} is invalid.")
        return SqlType(name, 0, {"time": 8, "datetime2": 19, "datetimeoffset": 26}[name] + (s + 1 if s else 0), s)
    if name == "float":
        if args and int(args[0]) <= 24:
            return SqlType("real", 0, 24)
        return SqlType("float", 0, 53)
    if name == "real":
        return SqlType("real", 0, 24)
    if name in ("text", "ntext", "image", "xml"):
        return SqlType(name, -1 if name == "xml" else 2**31 - 1)
    if name in CLR_TYPES:
        return SqlType(name, 892 if name == "hierarchyid" else -1)
    prec = {
        "int": 10,
        "bigint": 19,
        "smallint": 5,
        "tinyint": 3,
        "bit": 1,
        "date": 10,
        "money": 19,
        "smallmoney": 10,
        "datetime": 23,
        "smalldatetime": 16,
    }.get(name, 0)
    scale = {"money": 4, "smallmoney": 4, "datetime": 3}.get(name, 0)
    return SqlType(name, 0, prec, scale)


def from_column_spec(c: ColumnSpec) -> SqlType:
    """The declared type behind a seam ColumnSpec (its length is in bytes)."""
    n = c.type_name.lower()
    n = _ALIASES.get(n, n)
    if n in ("nchar", "nvarchar"):
        return SqlType(n, -1 if c.length in (-1, 0xFFFF) else max(1, c.length // 2))
    if n in ("char", "varchar", "binary", "varbinary"):
        return SqlType(n, -1 if c.length in (-1, 0xFFFF) else max(1, c.length))
    if n in ("decimal", "numeric"):
        return make_type(n, [str(c.precision or 18), str(c.scale)])
    if n in ("time", "datetime2", "datetimeoffset"):
        return make_type(n, [str(c.scale if c.scale is not None else 7)])
    return make_type(n, [])


def duck_type(t: SqlType) -> str:
    """The DuckDB column type that stores values of t (see the module docstring)."""
    n = t.name
    simple = {
        "int": "INTEGER",
        "bigint": "BIGINT",
        "smallint": "SMALLINT",
        "tinyint": "UTINYINT",
        "bit": "BOOLEAN",
        "float": "DOUBLE",
        "real": "FLOAT",
        "money": "DECIMAL(19,4)",
        "smallmoney": "DECIMAL(10,4)",
        "date": "DATE",
        "datetime": "TIMESTAMP",
        "smalldatetime": "TIMESTAMP",
        "time": "BIGINT",
        "datetime2": "BIGINT",
        "datetimeoffset": "STRUCT(utc BIGINT, offset_min SMALLINT)",
        "uniqueidentifier": "BLOB",
        "sql_variant": "BLOB",
    }
    if n in simple:
        return simple[n]
    if n in ("decimal", "numeric"):
        return f"DECIMAL({t.precision},{t.scale})"
    if n in BINARY_TYPES:
        return "BLOB"
    return "VARCHAR"


def arrow_type(t: SqlType) -> pa.DataType:
    """The Arrow type of t in ResultSet's conventions."""
    n = t.name
    if n in ("decimal", "numeric"):
        return pa.decimal128(t.precision, t.scale)
    if n == "sql_variant":
        return pa.large_binary()  # stored sql_variants (variant.py); plain binary would be varbinary values
    return {
        "int": pa.int32(),
        "bigint": pa.int64(),
        "smallint": pa.int16(),
        "tinyint": pa.uint8(),
        "bit": pa.bool_(),
        "float": pa.float64(),
        "real": pa.float32(),
        "money": pa.decimal128(19, 4),
        "smallmoney": pa.decimal128(10, 4),
        "date": pa.date32(),
        "time": pa.int64(),
        "datetime": pa.timestamp("us"),
        "smalldatetime": pa.timestamp("us"),
        "datetime2": pa.int64(),
        "datetimeoffset": pa.struct([("utc", pa.int64()), ("offset_min", pa.int16())]),
        "uniqueidentifier": pa.binary(16),
    }.get(n, pa.binary() if n in BINARY_TYPES else pa.string())


def type_from_arrow(at: pa.DataType) -> SqlType:
    """A SQL Server type for a computed expression, from the Arrow type DuckDB produced."""
    if pa.types.is_boolean(at):
        return SqlType("bit", 0, 1)
    if pa.types.is_uint8(at):
        return make_type("tinyint", [])
    if pa.types.is_int8(at) or pa.types.is_int16(at):
        return make_type("smallint", [])
    if pa.types.is_int32(at) or pa.types.is_uint16(at):
        return make_type("int", [])
    if pa.types.is_integer(at):
        return make_type("bigint", [])
    if pa.types.is_float32(at):
        return SqlType("real", 0, 24)
    if pa.types.is_floating(at):
        return SqlType("float", 0, 53)
    if pa.types.is_decimal(at):
        p = min(at.precision, 38)
        return SqlType("decimal", 0, p, min(at.scale, p))
    if pa.types.is_date(at):
        return make_type("date", [])
    if pa.types.is_timestamp(at):
        return make_type("datetimeoffset" if at.tz else "datetime2", ["7"])
    if pa.types.is_time(at):
        return make_type("time", ["7"])
    if pa.types.is_binary(at) or pa.types.is_large_binary(at) or pa.types.is_fixed_size_binary(at):
        return SqlType("varbinary", -1)
    if pa.types.is_null(at):
        return make_type("int", [])
    return SqlType("nvarchar", -1)


# ---------------------------------------------------------------------------------------------- scalars


def conversion_failed(value: object, t: SqlType, src: str = "varchar") -> SqlServerError:
    name = t.name
    if name in ("date", "time", "datetime2", "datetimeoffset", "datetime", "smalldatetime"):
        return SqlServerError(241, "Conversion failed when converting date and/or time from character string.")
    if name == "uniqueidentifier":
        return SqlServerError(8169, "Conversion failed when converting from a character string to uniqueidentifier.")
    if name in ("decimal", "numeric", "money", "smallmoney", "float", "real"):
        return SqlServerError(8114, f"Error converting data type {src} to {name}.")
    return SqlServerError(245, f"Conversion failed when converting the {src} value '{value}' to data type {name}.")


def overflow(t: SqlType, value: object) -> SqlServerError:
    if t.name in ("tinyint", "smallint"):
        return SqlServerError(220, f"Arithmetic overflow error for data type {t.name}, value = {value}.")
    target = "numeric" if t.name in ("decimal", "numeric") else t.name
    src = "numeric" if isinstance(value, decimal.Decimal) else "expression"
    return SqlServerError(8115, f"Arithmetic overflow error converting {src} to data type {target}.")


def truncated(table: str, column: str, value: object, t: SqlType) -> SqlServerError:
    shown = value[: t.length] if isinstance(value, str) else "0x" + bytes(value[: t.length]).hex().upper()  # type: ignore[index]
    return SqlServerError(
        2628,
        f"String or binary data would be truncated in table '{table}', column '{column}'. Truncated value: '{shown}'.",
    )


def out_of_range(src: str, target: str) -> SqlServerError:
    """Error 242: a conversion whose result is outside the target's range (SQL Server's wording)."""
    return SqlServerError(
        242, f"The conversion of a {src} data type to a {target} data type resulted in an out-of-range value."
    )


def round_half_away(d: decimal.Decimal, scale: int) -> decimal.Decimal:
    return d.quantize(decimal.Decimal(1).scaleb(-scale, EXACT), rounding=decimal.ROUND_HALF_UP, context=EXACT)


def datetime_round(us: np.ndarray) -> np.ndarray:
    """Microseconds since 1970 -> the value SQL Server's datetime shows (1/300 s grid, half up), in µs."""
    day = 86_400_000_000
    days = np.floor_divide(us, day)
    tod = us - days * day
    ticks = (tod * 3 + 5_000) // 10_000
    ms = (ticks * 20 + 3) // 6
    return days * day + ms * 1000


def smalldatetime_round(us: np.ndarray) -> np.ndarray:
    minute = 60_000_000
    ms_in_minute = (us % minute) // 1000
    base = us - us % minute
    return base + np.where(ms_in_minute >= 29_999, minute, 0)


def ticks_round(ticks: np.ndarray, scale: int) -> np.ndarray:
    """Round 100 ns ticks to a time/datetime2 scale, half up as SQL Server does."""
    if scale >= 7:
        return ticks
    unit = 10 ** (7 - scale)
    return ((ticks + unit // 2) // unit) * unit


_DATE_RE = re.compile(
    r"^\s*(\d{4})-?(\d{1,2})-?(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{0,9}))?)?\s*(AM|PM)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?\s*$",
    re.I,
)
_TIME_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{0,9}))?)?\s*(AM|PM)?\s*$", re.I)
_MDY_RE = re.compile(r"^\s*(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})(?:\s+(.*))?$")


def parse_datetime_text(s: str, dateformat: str = "mdy") -> tuple[int, int | None]:
    """A date/time string -> (ticks since 0001-01-01, offset minutes or None). Raises 241 when unreadable."""
    m = _DATE_RE.match(s)
    if not m:
        mm = _MDY_RE.match(s)
        if mm:
            a, b, y = int(mm.group(1)), int(mm.group(2)), int(mm.group(3))
            mo, d = (b, a) if dateformat.startswith("d") else (a, b)
            rest = mm.group(4) or ""
            base = _date_ticks(y, mo, d)
            if rest:
                tm = _TIME_RE.match(rest)
                if not tm:
                    raise SqlServerError(
                        241, "Conversion failed when converting date and/or time from character string."
                    )
                return base + _time_ticks(tm.group(1), tm.group(2), tm.group(3), tm.group(4), tm.group(5)), None
            return base, None
        tm = _TIME_RE.match(s)
        if tm:
            return _date_ticks(1900, 1, 1) + _time_ticks(
                tm.group(1), tm.group(2), tm.group(3), tm.group(4), tm.group(5)
            ), None
        raise SqlServerError(241, "Conversion failed when converting date and/or time from character string.")
    y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
    ticks = _date_ticks(y, mo, d)
    if m.group(4) is not None:
        ticks += _time_ticks(m.group(4), m.group(5), m.group(6), m.group(7), m.group(8))
    off: int | None = None
    if m.group(9):
        z = m.group(9).replace(":", "")
        off = 0 if z.upper() == "Z" else (1 if z[0] == "+" else -1) * (int(z[1:3]) * 60 + int(z[3:5]))
    return ticks, off


def _date_ticks(y: int, mo: int, d: int) -> int:
    try:
        return (dt.date(y, mo, d) - _DATE0).days * TICKS_PER_DAY
    except ValueError:
        raise SqlServerError(241, "Conversion failed when converting date and/or time from character string.") from None


def _time_ticks(h: str, mi: str, sec: str | None, frac: str | None, ampm: str | None) -> int:
    hh = int(h)
    if ampm:
        if hh > 12:
            raise SqlServerError(241, "Conversion failed when converting date and/or time from character string.")
        hh = hh % 12 + (12 if ampm.upper() == "PM" else 0)
    mm, ss = int(mi), int(sec or 0)
    if hh > 23 or mm > 59 or ss > 59:
        raise SqlServerError(241, "Conversion failed when converting date and/or time from character string.")
    f = (frac or "").ljust(7, "0")
    ticks = int(f[:7])
    if len(f) > 7 and f[7] >= "5":
        ticks += 1
    return (hh * 3600 + mm * 60 + ss) * TICKS_PER_SECOND + ticks


def ticks_from_datetime(v: dt.datetime | dt.date) -> int:
    if isinstance(v, dt.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(dt.UTC).replace(tzinfo=None)
        days = (v.date() - _DATE0).days
        return days * TICKS_PER_DAY + (v.hour * 3600 + v.minute * 60 + v.second) * TICKS_PER_SECOND + v.microsecond * 10
    return (v - _DATE0).days * TICKS_PER_DAY


def ticks_to_datetime(t: int) -> dt.datetime:
    return dt.datetime(1, 1, 1) + dt.timedelta(microseconds=t // 10)


def guid_key(u: uuid.UUID | bytes) -> bytes:
    """RFC-order GUID bytes -> the stored comparison key."""
    b = u.bytes if isinstance(u, uuid.UUID) else u
    return bytes(b[i] for i in GUID_KEY_FROM_RFC)


def guid_from_key(k: bytes) -> uuid.UUID:
    return uuid.UUID(bytes=bytes(k[i] for i in GUID_RFC_FROM_KEY))


def parse_guid(s: str) -> uuid.UUID:
    t = s.strip()
    if t.startswith("{") and t.endswith("}"):
        t = t[1:-1]
    if not re.fullmatch(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", t):
        raise SqlServerError(8169, "Conversion failed when converting from a character string to uniqueidentifier.")
    return uuid.UUID(t)


def utf16_len(s: str) -> int:
    return len(s) + sum(1 for ch in s if ord(ch) > 0xFFFF)


def to_cp1252(s: str) -> str:
    """What a varchar column under SQL_Latin1_General_CP1 keeps of s: unmappable characters become '?'."""
    if s.isascii():
        return s
    return s.encode("cp1252", errors="replace").decode("cp1252")


def scalar_to_storage(v: object, t: SqlType, dateformat: str = "mdy") -> object:
    """Convert one Python value (from a literal or a client) to its storage value for t. None stays None."""
    if v is None:
        return None
    n = t.name
    if n in INT_RANGES:
        iv = _to_int(v, t)
        lo, hi = INT_RANGES[n]
        if not lo <= iv <= hi:
            raise overflow(t, iv)
        return iv
    if n == "bit":
        if isinstance(v, str):
            sv = v.strip().lower()
            if sv in ("true", "false"):
                return sv == "true"
            v = _to_int(v, make_type("int", []))
        if isinstance(v, (bytes, bytearray)):
            v = int.from_bytes(v, "big")
        return bool(v)
    if n in ("float", "real"):
        if isinstance(v, str):
            try:
                return float(v)
            except ValueError:
                raise conversion_failed(v, t) from None
        if isinstance(v, (dt.date, bytes)):
            raise conversion_failed(v, t)
        return float(v)  # type: ignore[arg-type]
    if n in ("decimal", "numeric", "money", "smallmoney"):
        p, s = (19, 4) if n == "money" else (10, 4) if n == "smallmoney" else (t.precision, t.scale)
        try:
            d = decimal.Decimal(v.strip().replace("$", "") if isinstance(v, str) else v)  # type: ignore[arg-type]
        except (decimal.InvalidOperation, TypeError, ValueError):
            raise conversion_failed(v, t) from None
        if not d.is_finite():
            raise conversion_failed(v, t)
        if d != 0 and d.adjusted() >= p - s:  # before quantizing: 1e300 would not fit even the exact context
            raise overflow(t, d)
        q = round_half_away(d, s)
        if q.adjusted() >= p - s and q != 0:
            raise overflow(t, d)
        return q
    if n in STRING_TYPES:
        if isinstance(v, (bytes, bytearray)):
            sv = bytes(v).decode("utf-16-le" if t.is_unicode else "cp1252", errors="replace")
        elif isinstance(v, uuid.UUID):
            sv = str(v).upper()
        elif isinstance(v, bool):
            sv = "1" if v else "0"
        elif isinstance(v, dt.datetime):
            sv = v.isoformat(sep=" ")
        else:
            sv = str(v)
        return sv if t.is_unicode else to_cp1252(sv)
    if n == "sql_variant" or (n in CLR_TYPES and isinstance(v, str)):
        return _variant_or_clr_scalar(v, n, dateformat)
    if n in BINARY_TYPES:
        if isinstance(v, str):
            return v.encode("cp1252", errors="replace")
        if isinstance(v, int):
            return v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big", signed=True)
        if isinstance(v, uuid.UUID):
            return v.bytes_le
        if isinstance(v, (bytes, bytearray, memoryview)):
            return bytes(v)
        raise conversion_failed(v, t, type(v).__name__)
    if n == "uniqueidentifier":
        if isinstance(v, uuid.UUID):
            return guid_key(v)
        if isinstance(v, (bytes, bytearray)) and len(v) == 16:
            return guid_key(uuid.UUID(bytes_le=bytes(v)))
        if isinstance(v, str):
            return guid_key(parse_guid(v))
        raise conversion_failed(v, t)
    if n in ("date", "datetime", "smalldatetime", "datetime2", "datetimeoffset", "time"):
        return _temporal_scalar(v, t, dateformat)
    return str(v)


def _variant_or_clr_scalar(v: object, type_name: str, dateformat: str) -> object:
    """A value held as sql_variant (with its base type), or a string parsed as a CLR type (WKT, a path)."""
    from . import clrtypes, variant  # both build on this module

    if type_name == "sql_variant":
        return variant.from_value(v, dateformat)
    return clrtypes.from_text(str(v), type_name)


def _to_int(v: object, t: SqlType) -> int:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            raise overflow(t, v)
        return int(v)
    if isinstance(v, decimal.Decimal):
        return int(v)
    if isinstance(v, str):
        sv = v.strip()
        if re.fullmatch(r"[+-]?\d+", sv):
            return int(sv)
        raise SqlServerError(245, f"Conversion failed when converting the varchar value '{v}' to data type {t.name}.")
    raise conversion_failed(v, t)


def _temporal_scalar(v: object, t: SqlType, dateformat: str) -> object:
    n = t.name
    off: int | None = None
    if isinstance(v, str):
        ticks, off = parse_datetime_text(v, dateformat)
        # an offset is applied for datetimeoffset; other types drop it, as SQL Server does
        if off is not None and n == "datetimeoffset":
            ticks -= off * 60 * TICKS_PER_SECOND
    elif isinstance(v, dt.datetime):
        if v.tzinfo is not None and n == "datetimeoffset":
            offset = v.utcoffset()
            off = int(offset.total_seconds() // 60) if offset is not None else 0
            ticks = ticks_from_datetime(v)
        else:
            ticks = ticks_from_datetime(v.replace(tzinfo=None))
    elif isinstance(v, dt.date):
        ticks = ticks_from_datetime(v)
    elif isinstance(v, dt.time):
        ticks = (v.hour * 3600 + v.minute * 60 + v.second) * TICKS_PER_SECOND + v.microsecond * 10
        if n != "time":
            ticks += _date_ticks(1900, 1, 1)
    elif isinstance(v, (int, float, decimal.Decimal)) and n in ("datetime", "smalldatetime"):
        ticks = ticks_from_datetime(_DT1900) + int(EXACT.multiply(decimal.Decimal(v), TICKS_PER_DAY))
    else:
        raise SqlServerError(206, f"Operand type clash: {type(v).__name__} is incompatible with {n}")
    if n == "time":
        tod = ticks % TICKS_PER_DAY if not isinstance(v, dt.time) else ticks
        return int(ticks_round(np.array([tod], dtype=np.int64), t.scale)[0]) % TICKS_PER_DAY
    if n == "date":
        return _DATE0 + dt.timedelta(days=ticks // TICKS_PER_DAY)
    if n in ("datetime", "smalldatetime"):
        us = np.array([(ticks - EPOCH_TICKS) // 10], dtype=np.int64)
        lo_year = 1753 if n == "datetime" else 1900
        r = datetime_round(us) if n == "datetime" else smalldatetime_round(us)
        out = dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=int(r[0]))
        if out.year < lo_year or (n == "smalldatetime" and out.year > 2079):
            raise SqlServerError(
                242,
                f"The conversion of a varchar data type to a {n} data type resulted in an out-of-range value.",
            )
        return out
    ticks = int(ticks_round(np.array([ticks], dtype=np.int64), t.scale)[0])
    # rounding up 9999-12-31 23:59:59.9999999 reaches the year 10000; a datetimeoffset's range is that of its
    # UTC instant (MS-BCP 2.1.9), so '0001-01-01 00:00 +01:00' is as far out as '9999-12-31 23:59 -01:00'
    if ticks >= END_TICKS or ticks < 0:
        raise out_of_range("varchar" if isinstance(v, str) else "datetime2", n)
    if n == "datetime2":
        return ticks
    return {"utc": ticks, "offset_min": off or 0}


# ---------------------------------------------------------------------------------------------- vectors


def to_storage_array(arr: pa.Array | pa.ChunkedArray, t: SqlType, table: str, column: str) -> pa.Array:
    """Convert a column (ResultSet conventions, or plain Arrow types that convert exactly) to storage form,
    checking truncation and overflow like SQL Server."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    n = t.name
    at = arr.type
    if n == "sql_variant":
        from . import variant

        return variant.from_arrow(arr)
    if pa.types.is_null(at):
        return pa.nulls(len(arr), _storage_arrow(t))
    if pa.types.is_dictionary(at):
        arr = arr.dictionary_decode()
        at = arr.type
    if pa.types.is_string_view(at) or pa.types.is_large_string(at):
        arr = arr.cast(pa.string())
        at = arr.type
    if pa.types.is_binary_view(at) or pa.types.is_large_binary(at):
        arr = arr.cast(pa.binary())
        at = arr.type
    if (pa.types.is_string(at) and n not in STRING_TYPES) or (
        pa.types.is_binary(at) and n not in BINARY_TYPES and n != "uniqueidentifier"
    ):
        return _scalar_path(arr, t)
    if n in INT_RANGES:
        if pa.types.is_boolean(at):
            arr = arr.cast(pa.int8())
        lo, hi = INT_RANGES[n]
        if not (pa.types.is_integer(at) or pa.types.is_boolean(at)):
            return _scalar_path(arr, t)
        mm = pc.min_max(arr)
        if mm["min"].is_valid and (mm["min"].as_py() < lo or mm["max"].as_py() > hi):
            bad = mm["min"].as_py() if mm["min"].as_py() < lo else mm["max"].as_py()
            raise overflow(t, bad)
        return arr.cast(_storage_arrow(t))
    if n == "bit":
        if pa.types.is_boolean(at):
            return arr
        return pc.not_equal(arr, pa.scalar(0, at) if not pa.types.is_decimal(at) else 0)
    if n in ("float", "real"):
        return arr.cast(_storage_arrow(t), safe=False)
    if n in ("decimal", "numeric", "money", "smallmoney"):
        target = _storage_arrow(t)
        if pa.types.is_decimal(at) and at.scale <= target.scale:
            try:
                return arr.cast(target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass
        if pa.types.is_integer(at):
            try:
                return arr.cast(target)
            except pa.ArrowInvalid:
                pass
        return _scalar_path(arr, t)
    if n in STRING_TYPES:
        if not pa.types.is_string(at):
            return _scalar_path(arr, t)
        if n == "xml":  # a leading U+FEFF is a byte order mark, which SQL Server's XML parser drops
            arr = pc.replace_substring_regex(arr, "^\ufeff", "")
        return _check_strings(arr, t, table, column)
    if n in BINARY_TYPES:
        if not (pa.types.is_binary(at) or pa.types.is_fixed_size_binary(at)):
            return _scalar_path(arr, t)
        arr = arr.cast(pa.binary())
        if t.length > 0 and n in ("binary", "varbinary"):
            lens = pc.binary_length(arr)
            mx = pc.max(lens).as_py()
            if mx is not None and mx > t.length:
                idx = pc.index(pc.greater(lens, t.length), True).as_py()
                raise truncated(table, column, arr[idx].as_py(), t)
            if n == "binary":
                vals = [None if v is None else v.ljust(t.length, b"\0") for v in arr.to_pylist()]
                return pa.array(vals, pa.binary())
        return arr
    if n == "uniqueidentifier":
        if pa.types.is_fixed_size_binary(at) or pa.types.is_binary(at):
            return guid_keys_from_rfc(arr)
        return _scalar_path(arr, t)
    if n in ("date", "time", "datetime", "smalldatetime", "datetime2", "datetimeoffset"):
        return _temporal_vector(arr, t)
    return arr.cast(pa.string())


def _storage_arrow(t: SqlType) -> pa.DataType:
    n = t.name
    if n in ("uniqueidentifier", "sql_variant"):
        return pa.binary()
    return arrow_type(t)


def _scalar_path(arr: pa.Array, t: SqlType) -> pa.Array:
    vals = [scalar_to_storage(v, t) for v in arr.to_pylist()]
    return pa.array(vals, _storage_arrow(t))


_NON_BMP = "[\\x{10000}-\\x{10FFFF}]"


def _check_strings(arr: pa.Array, t: SqlType, table: str, column: str) -> pa.Array:
    if not t.is_unicode and not pc.all(pc.string_is_ascii(arr)).as_py():
        arr = pa.array([None if v is None else to_cp1252(v) for v in arr.to_pylist()], pa.string())
    if t.length > 0 and t.name in ("char", "varchar", "nchar", "nvarchar"):
        lens = pc.utf8_length(arr)
        mx = pc.max(lens).as_py()
        if mx is not None:
            limit = t.length
            if mx > limit // (2 if t.is_unicode else 1):
                # UTF-16 code units: one per character, two for those outside the BMP
                units = pc.add(lens, pc.count_substring_regex(arr, _NON_BMP)) if t.is_unicode else lens
                over = pc.greater(units, limit)
                if pc.any(over).as_py():
                    raise truncated(table, column, arr[int(pc.index(over, True).as_py())].as_py(), t)
            if t.name == "nchar" and pc.any(pc.match_substring_regex(arr, _NON_BMP)).as_py():
                vals = arr.to_pylist()
                arr = pa.array([None if v is None else v + " " * (limit - utf16_len(v)) for v in vals], pa.string())
            elif t.name in ("char", "nchar"):
                arr = pc.utf8_rpad(arr, width=limit, padding=" ")
    return arr


def guid_keys_from_rfc(arr: pa.Array) -> pa.Array:
    """fixed_size_binary(16) RFC-order GUIDs -> stored comparison keys (vectorised)."""
    arr = arr.cast(pa.binary(16)) if not pa.types.is_fixed_size_binary(arr.type) else arr
    return _permute16(arr, GUID_KEY_FROM_RFC, pa.binary())


def guid_rfc_from_keys(arr: pa.Array) -> pa.Array:
    return _permute16(
        arr.cast(pa.binary()) if not pa.types.is_binary(arr.type) else arr, GUID_RFC_FROM_KEY, pa.binary(16)
    )


def _permute16(arr: pa.Array, perm: np.ndarray, out_type: pa.DataType) -> pa.Array:
    n = len(arr)
    if n == 0:
        return pa.array([], out_type)
    filled = arr.fill_null(b"\0" * 16) if arr.null_count else arr
    if not pa.types.is_fixed_size_binary(filled.type):
        filled = filled.cast(pa.binary(16))  # vectorised; fails on a value that is not 16 bytes
    raw = np.frombuffer(filled.buffers()[1], dtype=np.uint8, count=16 * (n + filled.offset))[16 * filled.offset :]
    m = np.ascontiguousarray(raw.reshape(n, 16)[:, perm])
    validity = arr.buffers()[0] if arr.null_count and arr.offset == 0 else None
    if arr.null_count and validity is None:
        validity = pa.array(arr.is_valid().to_numpy(zero_copy_only=False)).buffers()[1]
    out = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(16), n, [validity, pa.py_buffer(m.tobytes())], null_count=arr.null_count
    )
    return out.cast(out_type) if out_type != pa.binary(16) else out


def _temporal_vector(arr: pa.Array, t: SqlType) -> pa.Array:
    n = t.name
    at = arr.type
    if n == "date":
        if pa.types.is_date32(at):
            return arr
        if pa.types.is_timestamp(at) or pa.types.is_date64(at):
            return arr.cast(pa.date32())
        return _scalar_path(arr, t)
    ticks: np.ndarray
    offset: np.ndarray | None = None
    valid = arr.is_valid()
    if pa.types.is_struct(at) and n == "datetimeoffset":
        utc = pc.struct_field(arr, "utc").fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        off = pc.struct_field(arr, "offset_min").fill_null(0).to_numpy(zero_copy_only=False).astype(np.int16)
        ticks, offset = utc, off
    elif pa.types.is_timestamp(at):
        us = arr.cast(pa.timestamp("us"), safe=False) if at.unit != "us" else arr
        if at.unit == "ns":
            ns = arr.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
            ticks = ns // 100 + EPOCH_TICKS
        else:
            ticks = us.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False) * 10 + EPOCH_TICKS
    elif pa.types.is_date32(at):
        ticks = (
            arr.cast(pa.int32()).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64) * TICKS_PER_DAY
            + EPOCH_TICKS
        )
    elif pa.types.is_time(at):
        unit = at.unit
        raw = arr.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
        ticks = {"s": raw * TICKS_PER_SECOND, "ms": raw * 10_000, "us": raw * 10, "ns": raw // 100}[unit]
        if n != "time":
            ticks = ticks + (dt.date(1900, 1, 1) - _DATE0).days * TICKS_PER_DAY
    elif pa.types.is_integer(at) and n in ("time", "datetime2"):
        ticks = arr.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
    else:
        return _scalar_path(arr, t)
    mask = None if arr.null_count == 0 else ~valid.to_numpy(zero_copy_only=False)
    if n == "time":
        ticks = ticks_round(np.mod(ticks, TICKS_PER_DAY), t.scale) % TICKS_PER_DAY
        return pa.array(ticks, pa.int64(), mask=mask)
    if n == "datetime2":
        rounded = ticks_round(ticks, t.scale)
        over = rounded >= END_TICKS
        if mask is not None:
            over &= ~mask
        if bool(over.any()):
            raise out_of_range("datetime2", n)
        return pa.array(rounded, pa.int64(), mask=mask)
    if n == "datetimeoffset":
        utc = pa.array(_utc_in_range(ticks_round(ticks, t.scale), mask), pa.int64())
        offs = pa.array(offset if offset is not None else np.zeros(len(ticks), np.int16), pa.int16())
        return pa.StructArray.from_arrays(
            [utc, offs], names=["utc", "offset_min"], mask=pa.array(mask) if mask is not None else None
        )
    us = np.floor_divide(ticks - EPOCH_TICKS, 10)
    r = datetime_round(us) if n == "datetime" else smalldatetime_round(us)
    return pa.array(r, pa.int64(), mask=mask).cast(pa.timestamp("us"))


def _utc_in_range(utc: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """datetimeoffset UTC instants, refused (242) where one falls outside 0001-01-01 .. 9999-12-31."""
    outside = (utc < 0) | (utc >= END_TICKS)
    if mask is not None:
        outside &= ~mask
    if bool(outside.any()):
        raise out_of_range("datetimeoffset", "datetimeoffset")
    return utc


def storage_to_result(arr: pa.Array, t: SqlType) -> pa.Array:
    """Storage column -> ResultSet conventions (GUIDs differ; stored sql_variants travel as large_binary)."""
    if t.name == "uniqueidentifier" and (pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type)):
        return guid_rfc_from_keys(arr)
    if t.name == "sql_variant" and (pa.types.is_binary(arr.type) or pa.types.is_binary_view(arr.type)):
        from . import variant

        return variant.result_array(arr.cast(pa.binary()))  # the stored comparison key comes off
    return arr


def python_value(v: object, t: SqlType) -> object:
    """A storage value as a Python object clients would see (used for messages and IDENT functions)."""
    if v is None:
        return None
    if t.name == "uniqueidentifier" and isinstance(v, (bytes, bytearray)):
        return guid_from_key(bytes(v))
    if t.name in ("datetime2",) and isinstance(v, int):
        return ticks_to_datetime(v)
    return v


def display_value(v: object, t: SqlType) -> str:
    """A value as SQL Server prints it inside error messages (duplicate key value …)."""
    if v is None:
        return "<NULL>"
    pv = python_value(v, t)
    if isinstance(pv, uuid.UUID):
        return str(pv)
    if isinstance(pv, dt.datetime):
        return pv.isoformat(sep=" ")
    if isinstance(pv, bytes):
        return "0x" + pv.hex().upper()
    if isinstance(pv, bool):
        return "1" if pv else "0"
    return str(pv)
