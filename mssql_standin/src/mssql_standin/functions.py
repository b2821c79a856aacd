"""The values of @@ variables and of the built-in and metadata functions (OBJECT_ID, DB_NAME, ...) a
statement may call, seen from one session."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from .clrtypes import USER_TYPE_IDS
from .results import SqlServerError
from .sqltext import unsupported
from .types import TYPE_IDS, SqlType, make_type, parse_type, scalar_to_storage

if TYPE_CHECKING:
    from .session import SessionCore
    from .syscatalog import Catalog

COLLATION = "SQL_Latin1_General_CP1_CI_AS"
VERSION = (
    "Microsoft SQL Server 2022 (RTM) - 16.0.1000.6 (X64) \n\tOct  8 2022 05:58:25 \n\t"
    "Copyright (C) 2022 Microsoft Corporation\n\tDeveloper Edition (64-bit) — mssql_standin, a DuckDB-backed "
    "stand-in for tests, not SQL Server"
)


def system_value(s: SessionCore, name: str) -> tuple[SqlType, object]:
    n = name.upper()
    if n == "VERSION":
        return SqlType("nvarchar", 300), VERSION
    if n == "SPID":
        return make_type("smallint", []), s.spid
    if n == "TRANCOUNT":
        return make_type("int", []), s.trancount
    if n == "IDENTITY":
        return make_type("numeric", ["38", "0"]), s.scope_identity
    if n == "ROWCOUNT":
        return make_type("int", []), s.rowcount
    if n == "SERVERNAME":
        return SqlType("nvarchar", 128), "localhost"
    if n == "SERVICENAME":
        return SqlType("nvarchar", 128), "MSSQLSERVER"
    if n == "LANGUAGE":
        return SqlType("nvarchar", 128), "us_english"
    if n == "TEXTSIZE":
        return make_type("int", []), s.state.textsize
    if n == "ERROR":
        return make_type("int", []), 0
    if n == "DBTS":
        return SqlType("varbinary", 8), s.engine.dbts.to_bytes(8, "big")
    if n == "MAX_PRECISION":
        return make_type("tinyint", []), 38
    if n == "LOCK_TIMEOUT":
        return make_type("int", []), -1
    if n == "OPTIONS":
        return make_type("int", []), 5496 if not s.state.nocount else 5496 | 512
    raise SqlServerError(137, f'Must declare the scalar variable "@@{name}".', severity=15)


def _type_function(cat: Catalog, fn: str, arg: object) -> tuple[SqlType, object]:
    """TYPE_NAME(user_type_id) and TYPE_ID('[schema.]name'), over system, CLR and alias types."""
    if fn == "type_name":
        rev = {v: k for k, v in TYPE_IDS.items() if k != "sysname"}
        rev[256] = "sysname"
        rev.update({uid: name for name, uid in USER_TYPE_IDS.items()})
        rev.update({a.user_type_id: a.name for a in cat.aliases.values()})
        return SqlType("nvarchar", 128), rev.get(int(arg)) if arg is not None else None  # type: ignore[call-overload]
    alias = cat.alias(str(arg).split(".")) if arg is not None else None
    if alias is not None:
        return make_type("int", []), alias.user_type_id
    try:
        name = parse_type(str(arg)).name
        return make_type("int", []), USER_TYPE_IDS.get(name, TYPE_IDS[name])
    except SqlServerError:
        return make_type("int", []), None


def function_value(s: SessionCore, fn: str, args: list[object]) -> tuple[SqlType, object]:
    nv = SqlType("nvarchar", 128)
    cat = s.catalog
    if fn == "scope_identity":
        return make_type("numeric", ["38", "0"]), s.scope_identity
    if fn in ("ident_current", "ident_seed", "ident_incr"):
        t = s._maybe_table(str(args[0])) if args and args[0] is not None else None
        if t is None or t.identity is None or t.identity.identity is None:
            return make_type("numeric", ["38", "0"]), None
        seed, inc = t.identity.identity
        if fn == "ident_seed":
            return make_type("numeric", ["38", "0"]), seed
        if fn == "ident_incr":
            return make_type("numeric", ["38", "0"]), inc
        cur = s.engine.identity_current(t)
        return make_type("numeric", ["38", "0"]), seed if cur is None else cur
    if fn == "object_id":
        if args[0] is None:
            return make_type("int", []), None
        return make_type("int", []), s._object_id(str(args[0]), str(args[1]) if len(args) > 1 and args[1] else None)
    if fn == "object_name":
        o = cat.object_by_id(int(args[0])) if args[0] is not None else None  # type: ignore[call-overload]
        return nv, o[1] if o else None
    if fn == "object_schema_name":
        o = cat.object_by_id(int(args[0])) if args[0] is not None else None  # type: ignore[call-overload]
        names = {v: k for k, v in cat.schemas.items()}
        return nv, names.get(o[2]) if o else None
    if fn == "schema_name":
        if not args:
            return nv, "dbo"
        sid = int(args[0]) if args[0] is not None else None  # type: ignore[call-overload]
        names = {**{v: k for k, v in cat.schemas.items()}, 3: "INFORMATION_SCHEMA", 4: "sys"}
        return nv, names.get(sid) if sid is not None else None
    if fn == "schema_id":
        if not args:
            return make_type("int", []), 1
        schema = cat.schema_name(str(args[0]))
        return make_type("int", []), cat.schemas.get(schema) if schema else {"information_schema": 3, "sys": 4}.get(
            str(args[0]).lower()
        )
    if fn in ("type_name", "type_id"):
        return _type_function(cat, fn, args[0])
    if fn == "db_name":
        return nv, s.database if not args or args[0] in (None, 5) else ("master" if args[0] == 1 else None)
    if fn == "db_id":
        return make_type("smallint", []), 5
    if fn == "original_db_name":
        return nv, s.engine.database
    if fn in ("suser_sname", "suser_name", "user_name"):
        return nv, "dbo" if fn == "user_name" else "sa"
    if fn == "host_name":
        return nv, "localhost"
    if fn == "app_name":
        return nv, "mssql_standin"
    if fn == "databasepropertyex":
        prop = str(args[1]).lower()
        val: object = {
            "collation": COLLATION,
            "status": "ONLINE",
            "recovery": "SIMPLE",
            "updateability": "READ_WRITE",
            "useraccess": "MULTI_USER",
            "version": 957,
            "isautoclose": 0,
        }.get(prop)
        return SqlType("sql_variant", 0) if not isinstance(val, str) else nv, val
    if fn == "serverproperty":
        prop = str(args[0]).lower()
        val = {
            "productversion": "16.0.1000.6",
            "productlevel": "RTM",
            "edition": "Developer Edition (64-bit)",
            "engineedition": 3,
            "collation": COLLATION,
            "servername": "localhost",
            "machinename": "localhost",
            "productmajorversion": "16",
            "productminorversion": "0",
            "isclustered": 0,
            "ishadrenabled": 0,
            "instancename": None,
            "isintegratedsecurityonly": 0,
            "productbuild": "1000",
        }.get(prop)
        return nv, val
    if fn == "collationproperty":
        prop = str(args[1]).lower()
        return make_type("int", []), {
            "codepage": 1252,
            "lcid": 1033,
            "comparisonstyle": 196609,
            "version": 0,
        }.get(prop)
    if fn == "columnproperty":
        t = cat.table_by_id(int(args[0])) if args[0] is not None else None  # type: ignore[call-overload]
        c = t.col(str(args[1])) if t else None
        if c is None:
            return make_type("int", []), None
        prop = str(args[2]).lower()
        v = {
            "isidentity": int(c.identity is not None),
            "iscomputed": int(c.computed is not None),
            "allowsnull": int(c.nullable),
            "precision": c.type.precision or c.type.length,
            "scale": c.type.scale,
            "isrowguidcol": int(c.rowguidcol),
            "columnid": c.column_id,
        }.get(prop)
        return make_type("int", []), v
    if fn == "objectproperty":
        t = cat.table_by_id(int(args[0])) if args[0] is not None else None  # type: ignore[call-overload]
        prop = str(args[1]).lower()
        if t is None:
            return make_type("int", []), None
        v = {
            "isusertable": 1,
            "istable": 1,
            "tablehasidentity": int(t.identity is not None),
            "tablehasprimarykey": int(t.pk is not None),
            "ismsshipped": 0,
        }.get(prop)
        return make_type("int", []), v
    if fn == "has_perms_by_name" or fn == "is_srvrolemember":
        return make_type("int", []), 1
    if fn == "sessionproperty":
        return make_type("int", []), 1
    if fn == "error_message":
        return SqlType("nvarchar", 4000), None
    if fn == "col_name":
        t = cat.table_by_id(int(args[0])) if args[0] is not None else None  # type: ignore[call-overload]
        c = next((c for c in t.columns if c.column_id == args[1]), None) if t else None
        return nv, c.name if c else None
    raise unsupported(fn.upper())


# --------------------------------------------------------------------------- strings as SQL Server's bytes


def string_bytes(s: str, unicode: bool) -> bytes:
    """A string as SQL Server stores it: nvarchar as UTF-16LE, varchar in code page 1252 ('?' for a character
    the code page lacks)."""
    return s.encode("utf-16-le", errors="surrogatepass") if unicode else s.encode("cp1252", errors="replace")


def bytes_string(b: bytes, unicode: bool) -> str:
    """Bytes read as nvarchar (UTF-16LE; an odd last byte is dropped) or as varchar (code page 1252, the five
    bytes it leaves undefined read as the C1 control characters, as SQL Server reads them)."""
    if unicode:
        return b[: len(b) - len(b) % 2].decode("utf-16-le", errors="replace")
    return "".join(_CP1252_BYTE[x] for x in b)


def utf16_prefix(s: str, units: int) -> str:
    """The first `units` UTF-16 code units of s, as nvarchar(n) keeps them (a pair that would be split is
    dropped whole: half of it is not a character a string here can hold)."""
    if len(s) * 2 <= units:
        return s
    out = 0
    for i, ch in enumerate(s):
        out += 2 if ord(ch) > 0xFFFF else 1
        if out > units:
            return s[:i]
    return s


_CP1252_BYTE = [bytes([x]).decode("cp1252", errors="ignore") or chr(x) for x in range(256)]


def _udf_bytes(unicode: bool) -> Callable[[pa.Array], pa.Array]:
    def fn(x: pa.Array) -> pa.Array:
        return pa.array([None if v is None else string_bytes(v, unicode) for v in x.to_pylist()], pa.binary())

    return fn


def _udf_string(unicode: bool) -> Callable[[pa.Array], pa.Array]:
    def fn(x: pa.Array) -> pa.Array:
        return pa.array([None if v is None else bytes_string(v, unicode) for v in x.to_pylist()], pa.string())

    return fn


def _udf_utf16_units(x: pa.Array) -> pa.Array:
    """UTF-16 code units per string: what LEN counts under a collation without supplementary characters."""
    chars = pc.utf8_length(x)
    astral = pc.utf8_length(pc.replace_substring_regex(x, r"[^\x{10000}-\x{10FFFF}]", ""))
    return pc.add(chars, astral).cast(pa.int64())


def _udf_utf16_left(x: pa.Array, n: pa.Array) -> pa.Array:
    out = [
        None if v is None or k is None else utf16_prefix(v, k)
        for v, k in zip(x.to_pylist(), n.to_pylist(), strict=True)
    ]
    return pa.array(out, pa.string())


def _udf_text_dto(x: pa.Array, fmt: pa.Array, scale: pa.Array, lenient: pa.Array) -> pa.Array:
    """Strings -> datetimeoffset storage by the literal parser (offsets, 100 ns, the UTC range); a failure is
    SQL Server's error (raised as `__ss_e<number>: <text>`) or NULL for TRY_CAST/TRY_CONVERT."""
    utc: list[int | None] = []
    offset: list[int | None] = []
    for v, f, sc, soft in zip(x.to_pylist(), fmt.to_pylist(), scale.to_pylist(), lenient.to_pylist(), strict=True):
        value = None
        if v is not None:
            try:
                value = scalar_to_storage(v, make_type("datetimeoffset", [str(sc)]), f)
            except SqlServerError as e:
                if not soft:
                    raise ValueError(f"__ss_e{e.number}: {e.message}") from None
        utc.append(value["utc"] if isinstance(value, dict) else None)
        offset.append(value["offset_min"] if isinstance(value, dict) else None)
    mask = pa.array([u is None for u in utc])
    return pa.StructArray.from_arrays(
        [pa.array(utc, pa.int64()), pa.array(offset, pa.int16())], names=["utc", "offset_min"], mask=mask
    )


def _udf_text_ticks(x: pa.Array, fmt: pa.Array, typ: pa.Array, lenient: pa.Array) -> pa.Array:
    """Strings -> datetime2/time storage (100 ns ticks) by the literal parser, every digit of the scale kept
    (DuckDB's TIMESTAMP and TIME stop at microseconds); a failure as in _udf_text_dto."""
    out: list[object] = []
    for v, f, ty, soft in zip(x.to_pylist(), fmt.to_pylist(), typ.to_pylist(), lenient.to_pylist(), strict=True):
        value = None
        if v is not None:
            try:
                value = scalar_to_storage(v, parse_type(ty), f)
            except SqlServerError as e:
                if not soft:
                    raise ValueError(f"__ss_e{e.number}: {e.message}") from None
        out.append(value)
    return pa.array(out, pa.int64())


def register_string_codecs(con: duckdb.DuckDBPyConnection) -> None:
    """The conversions CAST/CONVERT and LEN use that DuckDB has no twin for: string <-> binary
    (__ss_nvarchar_bytes, __ss_bytes_varchar ...), UTF-16 lengths, text -> datetimeoffset."""
    v, b, i = duckdb.sqltypes.VARCHAR, duckdb.sqltypes.BLOB, duckdb.sqltypes.BIGINT
    udf: Any = con.create_function  # pyarrow UDFs are not in DuckDB's stub overloads
    udf("__ss_nvarchar_bytes", _udf_bytes(True), [v], b, type="arrow")
    udf("__ss_varchar_bytes", _udf_bytes(False), [v], b, type="arrow")
    udf("__ss_bytes_nvarchar", _udf_string(True), [b], v, type="arrow")
    udf("__ss_bytes_varchar", _udf_string(False), [b], v, type="arrow")
    udf("__ss_utf16_units", _udf_utf16_units, [v], i, type="arrow")
    udf("__ss_utf16_left", _udf_utf16_left, [v, i], v, type="arrow")
    dto = duckdb.struct_type({"utc": i, "offset_min": duckdb.sqltypes.SMALLINT})
    args = [v, v, duckdb.sqltypes.INTEGER, duckdb.sqltypes.BOOLEAN]
    udf("__ss_text_dto", _udf_text_dto, args, dto, type="arrow", null_handling="special")
    udf(
        "__ss_text_ticks", _udf_text_ticks, [v, v, v, duckdb.sqltypes.BOOLEAN], i, type="arrow", null_handling="special"
    )
