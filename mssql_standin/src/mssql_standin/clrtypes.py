"""geography, geometry and hierarchyid: SQL Server's CLR types, held as SQL Server's own serialization.

Values are stored (DuckDB BLOB) and sent (TDS UDT, type 0xF0) as the bytes SQL Server writes (MS-SSCLRT):
- geography/geometry: SRID (int32 LE), version 1, a flag byte, then the points. A lone point is the compact
  form (flags IsValid|IsSinglePoint, two doubles: latitude then longitude for geography, x then y for
  geometry); a two-point line is IsSingleLineSegment; other shapes use the general form (points, figures,
  shapes).
- hierarchyid: the ORDPATH bit string, each label in its range's bit pattern, padded to a byte.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
from sqlglot import exp
from sqlglot.tokens import Token, TokenType

from .results import SqlServerError
from .types import SqlType

CLR_TYPES = ("geography", "geometry", "hierarchyid")
#: user_type_id (= system_type_id) SQL Server reports for every assembly type
UDT_TYPE_ID = 240
#: what sys.types/sys.columns and the wire's UDT_INFO say about each type
ASSEMBLY_NAMES = {
    "geography": "Microsoft.SqlServer.Types.SqlGeography, Microsoft.SqlServer.Types, Version=11.0.0.0, "
    "Culture=neutral, PublicKeyToken=89845dcd8080cc91",
    "geometry": "Microsoft.SqlServer.Types.SqlGeometry, Microsoft.SqlServer.Types, Version=11.0.0.0, "
    "Culture=neutral, PublicKeyToken=89845dcd8080cc91",
    "hierarchyid": "Microsoft.SqlServer.Types.SqlHierarchyId, Microsoft.SqlServer.Types, Version=11.0.0.0, "
    "Culture=neutral, PublicKeyToken=89845dcd8080cc91",
}
USER_TYPE_IDS = {"hierarchyid": 128, "geometry": 129, "geography": 130}
#: sys.types.max_length: -1 for the spatial types (large UDTs), 892 for hierarchyid
MAX_LENGTH = {"geography": -1, "geometry": -1, "hierarchyid": 892}

_FLAG_VALID = 0x04
_FLAG_SINGLE_POINT = 0x08
_FLAG_SINGLE_LINE = 0x10
_OGC = {"POINT": 1, "LINESTRING": 2, "POLYGON": 3, "MULTIPOINT": 4, "MULTILINESTRING": 5, "MULTIPOLYGON": 6}


def _invalid_wkt(text: str) -> SqlServerError:
    return SqlServerError(
        6522,
        'A .NET Framework error occurred during execution of user-defined routine or aggregate "geography": '
        f"System.FormatException: 24114: The label {text[:40]} in the input well-known text (WKT) is not valid.",
    )


@dataclass
class _Shape:
    kind: int
    figures: list[list[tuple[float, float]]]
    parent: int = -1


def point(srid: int, first: float, second: float) -> bytes:
    """A lone point: geography takes (latitude, longitude), geometry (x, y) — both stored in that order."""
    return struct.pack("<iBBdd", srid, 1, _FLAG_VALID | _FLAG_SINGLE_POINT, first, second)


_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def _coords(text: str) -> list[tuple[float, float]]:
    out = []
    for part in text.split(","):
        nums = re.findall(_NUM, part)
        if len(nums) < 2:
            raise _invalid_wkt(part.strip())
        out.append((float(nums[0]), float(nums[1])))
    return out


def _rings(body: str) -> list[list[tuple[float, float]]]:
    return [_coords(r) for r in re.findall(r"\(([^()]*)\)", body)]


def _parse_wkt(wkt: str) -> list[_Shape]:
    m = re.fullmatch(r"\s*([A-Za-z]+)\s*(EMPTY|\((.*)\))\s*", wkt, re.S)
    if not m or m.group(1).upper() not in _OGC:
        raise _invalid_wkt(wkt.strip())
    kind, body = m.group(1).upper(), m.group(3) or ""
    if m.group(2).upper() == "EMPTY":
        return [_Shape(_OGC[kind], [])]
    if kind in ("POINT", "LINESTRING"):
        return [_Shape(_OGC[kind], [_coords(body)])]
    if kind == "POLYGON":
        return [_Shape(3, _rings(body))]
    if kind == "MULTIPOINT":
        pts = [_coords(p.strip("() ")) for p in re.split(r",(?![^()]*\))", body)]
        return [_Shape(4, [])] + [_Shape(1, [p], 0) for p in pts]
    if kind == "MULTILINESTRING":
        return [_Shape(5, [])] + [_Shape(2, [r], 0) for r in _rings(body)]
    polys = re.findall(r"\(((?:\s*\([^()]*\)\s*,?)+)\)", body)
    return [_Shape(6, [])] + [_Shape(3, _rings(p), 0) for p in polys]


def from_wkt(wkt: str, srid: int, geography: bool) -> bytes:
    """STGeomFromText / STPointFromText / Parse: well-known text -> SQL Server's serialization. Geography WKT
    gives longitude first; the serialization stores latitude first."""
    shapes = _parse_wkt(wkt)
    if len(shapes) == 1 and shapes[0].kind == 1 and shapes[0].figures:
        x, y = shapes[0].figures[0][0]
        return point(srid, y, x) if geography else point(srid, x, y)
    points: list[tuple[float, float]] = []
    figures: list[tuple[int, int]] = []
    shape_rows: list[tuple[int, int, int]] = []
    for sh in shapes:
        shape_rows.append((sh.parent, len(figures) if sh.figures else -1, sh.kind))
        for k, ring in enumerate(sh.figures):
            # figure attribute (version 1): 1 stroke, 2 exterior ring, 0 interior ring
            figures.append((1 if sh.kind != 3 else 2 if k == 0 else 0, len(points)))
            points.extend((y, x) if geography else (x, y) for x, y in ring)
    if len(shapes) == 1 and shapes[0].kind == 2 and len(points) == 2:
        return struct.pack("<iBB", srid, 1, _FLAG_VALID | _FLAG_SINGLE_LINE) + b"".join(
            struct.pack("<dd", *p) for p in points
        )
    out = bytearray(struct.pack("<iBB", srid, 1, _FLAG_VALID))
    out += struct.pack("<i", len(points)) + b"".join(struct.pack("<dd", *p) for p in points)
    out += struct.pack("<i", len(figures)) + b"".join(struct.pack("<Bi", a, o) for a, o in figures)
    out += struct.pack("<i", len(shape_rows)) + b"".join(struct.pack("<iiB", *s) for s in shape_rows)
    return bytes(out)


def from_text(text: str, type_name: str) -> bytes:
    """A string converted to a CLR type, as SQL Server's implicit conversion calls Parse: WKT (geography SRID
    4326, geometry SRID 0) or a hierarchyid path."""
    if type_name == "hierarchyid":
        return hierarchyid_parse(text)
    return from_wkt(text, 4326 if type_name == "geography" else 0, type_name == "geography")


_OGC_NAMES = {v: k for k, v in _OGC.items()}


def _number(v: float) -> str:
    text = repr(v)
    return text[:-2] if text.endswith(".0") else text


def _invalid_spatial() -> SqlServerError:
    return SqlServerError(6522, "24200: the geography or geometry bytes are not a valid serialization.")


def _spatial_parts(data: bytes) -> tuple[list[tuple[float, float]], list[int], list[tuple[int, int, int]]]:
    """(points, figure point offsets, shapes (parent, first figure, OGC type)) of a serialization."""
    if len(data) < 6:
        raise _invalid_spatial()
    flags = data[5]
    if flags & (_FLAG_SINGLE_POINT | _FLAG_SINGLE_LINE):
        count = 1 if flags & _FLAG_SINGLE_POINT else 2
        points = [struct.unpack_from("<dd", data, 6 + 16 * k) for k in range(count)]
        return points, [0], [(-1, 0, 1 if count == 1 else 2)]
    pos = 6
    (n_points,) = struct.unpack_from("<i", data, pos)
    points = [struct.unpack_from("<dd", data, pos + 4 + 16 * k) for k in range(n_points)]
    pos += 4 + 16 * n_points + (8 * n_points if flags & 0x01 else 0) + (8 * n_points if flags & 0x02 else 0)
    (n_figures,) = struct.unpack_from("<i", data, pos)
    figures = [struct.unpack_from("<Bi", data, pos + 4 + 5 * k)[1] for k in range(n_figures)]
    pos += 4 + 5 * n_figures
    (n_shapes,) = struct.unpack_from("<i", data, pos)
    shapes = [struct.unpack_from("<iiB", data, pos + 4 + 9 * k) for k in range(n_shapes)]
    return points, figures, shapes


def to_wkt(data: bytes, geography: bool) -> str:
    """STAsText()/ToString(): well-known text of a serialization (geography writes longitude first)."""
    points, figures, shapes = _spatial_parts(data)

    def ring(f: int) -> str:
        end = figures[f + 1] if f + 1 < len(figures) else len(points)
        pts = [(b, a) if geography else (a, b) for a, b in points[figures[f] : end]]
        return "(" + ", ".join(f"{_number(x)} {_number(y)}" for x, y in pts) + ")"

    def shape(k: int, top: bool) -> str:
        parent, first, kind = shapes[k]
        children = [i for i, sh in enumerate(shapes) if sh[0] == k]
        name = _OGC_NAMES.get(kind, "GEOMETRYCOLLECTION") + " " if top else ""
        if kind in (4, 5, 6, 7):
            inner = [shape(i, kind == 7) for i in children]
            return name + ("(" + ", ".join(inner) + ")" if inner else "EMPTY")
        if first < 0:
            return name + "EMPTY"
        last = shapes[k + 1][1] if k + 1 < len(shapes) and shapes[k + 1][1] >= 0 else len(figures)
        rings = [ring(f) for f in range(first, last)]
        return name + (rings[0] if kind in (1, 2) else "(" + ", ".join(rings) + ")")

    return shape(0, True)


# ---------------------------------------------------------------------------------------------- hierarchyid

#: (lowest label, highest label, bit pattern): x = a bit of (label - lowest), most significant first;
#: 0/1 fixed bits; T the level bit (1: the label ends a level "/", 0: another label of the level follows ".").
_PATTERNS = [
    (-4294971464, -4169, "000101" + "x" * 19 + "0" + "x" * 6 + "0xxx0x1xxxT"),
    (-4168, -73, "000110xxxxx0xxx0x1xxxT"),
    (-72, -9, "0010xx0x1xxxT"),
    (-8, -1, "00111xxxT"),
    (0, 3, "01xxT"),
    (4, 7, "100xxT"),
    (8, 15, "101xxxT"),
    (16, 79, "110xx0x1xxxT"),
    (80, 1103, "1110xxx0xxx0x1xxxT"),
    (1104, 5199, "11110xxxxx0xxx0x1xxxT"),
    (5200, 4294972495, "111110" + "x" * 19 + "0" + "x" * 6 + "0xxx0x1xxxT"),
]


def _label_bits(label: int, last: bool) -> str:
    for lo, hi, pattern in _PATTERNS:
        if lo <= label <= hi:
            width = pattern.count("x")
            value = format(label - lo, f"0{width}b")
            out, k = [], 0
            for ch in pattern:
                if ch == "x":
                    out.append(value[k])
                    k += 1
                elif ch == "T":
                    out.append("1" if last else "0")
                else:
                    out.append(ch)
            return "".join(out)
    raise SqlServerError(6522, f"24000: hierarchyid label {label} is outside the supported range.")


def _invalid_path(text: str) -> SqlServerError:
    return SqlServerError(
        6522,
        'A .NET Framework error occurred during execution of user-defined routine or aggregate "hierarchyid": '
        f"Microsoft.SqlServer.Types.HierarchyIdException: 24001: SqlHierarchyId.Parse failed because the input "
        f"string '{text}' is not a valid string representation of a SqlHierarchyId node.",
    )


def hierarchyid_parse(text: str) -> bytes:
    """hierarchyid::Parse('/1/2.5/'): a level's labels but the last are written one more, with level bit 0."""
    s = text.strip()
    if not s.startswith("/") or not s.endswith("/"):
        raise _invalid_path(text)
    bits = []
    for level in s[1:-1].split("/") if s != "/" else []:
        parts = level.split(".")
        if not all(re.fullmatch(r"-?(0|[1-9]\d*)", p) for p in parts):
            raise _invalid_path(text)
        for i, p in enumerate(parts):
            last = i == len(parts) - 1
            bits.append(_label_bits(int(p) + (0 if last else 1), last))
    joined = "".join(bits)
    joined += "0" * (-len(joined) % 8)
    return int(joined, 2).to_bytes(len(joined) // 8, "big") if joined else b""


def hierarchyid_to_string(data: bytes) -> str:
    """The logical form of a serialized hierarchyid ('/' for the root)."""
    bits = "".join(format(b, "08b") for b in data)
    pos, levels, current = 0, [], []
    while pos < len(bits) and "1" in bits[pos:]:
        for lo, _hi, pattern in _PATTERNS:
            prefix = pattern[: pattern.index("x")]
            if bits.startswith(prefix, pos) and pos + len(pattern) <= len(bits):
                chunk = bits[pos : pos + len(pattern)]
                value = "".join(c for c, p in zip(chunk, pattern, strict=True) if p == "x")
                label = lo + int(value, 2)
                last = chunk[-1] == "1"
                current.append(label if last else label - 1)
                pos += len(pattern)
                if last:
                    levels.append(".".join(str(x) for x in current))
                    current = []
                break
        else:
            raise SqlServerError(6522, "24000: the hierarchyid bytes are not a valid serialization.")
    return "/" + "".join(f"{lv}/" for lv in levels)


# ---------------------------------------------------------------------------------------------- T-SQL calls

_STATIC = {
    ("geography", "stgeomfromtext"), ("geography", "stpointfromtext"), ("geography", "point"),
    ("geography", "parse"), ("geometry", "stgeomfromtext"), ("geometry", "stpointfromtext"),
    ("geometry", "point"), ("geometry", "parse"), ("hierarchyid", "parse"), ("hierarchyid", "getroot"),
}  # fmt: skip


def _constant_args(toks: list[Token], i: int) -> tuple[list[object], int] | None:
    """Literal arguments from toks[i] (just after '(') to the closing ')': (values, index of ')')."""
    args: list[object] = []
    sign = 1.0
    while i < len(toks):
        t = toks[i]
        tt = t.token_type
        if tt == TokenType.R_PAREN:
            return args, i
        if tt == TokenType.DASH:
            sign = -sign
        elif tt == TokenType.NUMBER:
            args.append(sign * float(t.text))
            sign = 1.0
        elif tt in (TokenType.STRING, TokenType.NATIONAL_STRING):
            args.append(t.text)
        elif tt != TokenType.COMMA:
            return None
        i += 1
    return None


def static_call_value(type_name: str, method: str, args: list[object]) -> bytes:
    """geography::Point(lat, long, srid), geometry::Point(x, y, srid), ::STGeomFromText(wkt, srid), ::Parse(wkt),
    hierarchyid::Parse(path), hierarchyid::GetRoot(): SQL Server's serialization of the value they make."""
    geography = type_name == "geography"
    if type_name == "hierarchyid":
        return b"" if method == "getroot" else hierarchyid_parse(str(args[0]))
    if method == "point":
        a, b, srid = (float(x) for x in args)  # type: ignore[arg-type]
        return point(int(srid), a, b)
    srid = int(args[1]) if len(args) > 1 else (4326 if geography else 0)  # type: ignore[call-overload]
    return from_wkt(str(args[0]), srid, geography)


def static_call_edits(toks: list[Token]) -> list[tuple[int, int, bytes]]:
    """The value of each CLR static call with literal arguments, to be put in its place as a binary literal
    (`geography::STGeomFromText('POINT(-122.35 47.65)', 4326)` -> 0xE6100000010C...): (start, end, value)."""
    edits = []
    n = len(toks)
    for i in range(n - 4):
        t = toks[i]
        if t.text.lower() not in CLR_TYPES or toks[i + 1].token_type != TokenType.DCOLON:
            continue
        method = toks[i + 2].text.lower()
        if (t.text.lower(), method) not in _STATIC or toks[i + 3].token_type != TokenType.L_PAREN:
            continue
        found = _constant_args(toks, i + 4)
        if found is None:
            continue
        args, end = found
        value = static_call_value(t.text.lower(), method, args)
        edits.append((t.start, toks[end].end, value))
    return edits


def hierarchyid_text_array(values: pa.Array) -> pa.Array:
    """The DuckDB UDF behind CAST(hierarchyid AS nvarchar) and .ToString(): BLOB -> VARCHAR."""
    return pa.array([None if v is None else hierarchyid_to_string(v) for v in values.to_pylist()], pa.string())


def _spatial_text_array(geography: bool) -> Any:
    def text(values: pa.Array) -> pa.Array:
        return pa.array([None if v is None else to_wkt(v, geography) for v in values.to_pylist()], pa.string())

    return text


def as_text(arg: exp.Expression, type_name: str) -> exp.Expression:
    """A CLR value as the text ToString() returns: a hierarchyid's path, a spatial value's WKT."""
    out = exp.Anonymous(this=f"__ss_{type_name}_text", expressions=[arg])
    out.meta["ss_type"] = SqlType("nvarchar", 4000)
    return out


def register_udfs(con: duckdb.DuckDBPyConnection) -> None:
    """The DuckDB functions the CLR types need."""
    udf: Any = con.create_function  # pyarrow UDFs are not in DuckDB's stub overloads
    blob, text = duckdb.sqltypes.BLOB, duckdb.sqltypes.VARCHAR
    udf("__ss_hierarchyid_text", hierarchyid_text_array, [blob], text, type="arrow")
    udf("__ss_geography_text", _spatial_text_array(True), [blob], text, type="arrow")
    udf("__ss_geometry_text", _spatial_text_array(False), [blob], text, type="arrow")


def to_string_edits(toks: list[Token]) -> list[tuple[int, int, str]]:
    """`[t].[h].ToString()`, `g.STAsText()` -> (start, end, the column chain) to be put back as
    CAST(chain AS nvarchar(4000)), which gives the same text."""
    edits = []
    for i in range(2, len(toks) - 2):
        if not (
            toks[i].text.lower() in ("tostring", "stastext")
            and toks[i - 1].token_type == TokenType.DOT
            and toks[i + 1].token_type == TokenType.L_PAREN
            and toks[i + 2].token_type == TokenType.R_PAREN
        ):
            continue
        k = i - 2
        parts = []
        while k >= 0 and toks[k].token_type in (TokenType.VAR, TokenType.IDENTIFIER):
            parts.append("[" + toks[k].text.replace("]", "]]") + "]")
            if k >= 1 and toks[k - 1].token_type == TokenType.DOT:
                k -= 2
            else:
                break
        if parts:
            edits.append((toks[k].start, toks[i + 2].end, ".".join(reversed(parts))))
    return edits
