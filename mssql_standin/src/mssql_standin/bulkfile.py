"""`BULK INSERT t FROM 'file' WITH (...)`: option parsing and data-file reading, following SQL Server 2022.

Files are read only from the engine's configured bulk_dir (anything else is error 4861, a missing file 4860).

Rules implemented (SQL Server 2022, DATAFILETYPE = 'char' or 'widechar'):

- Without FORMAT = 'CSV' a file is plain delimited text: fields end at FIELDTERMINATOR (default tab), rows at
  ROWTERMINATOR (default newline); quotes have no meaning and are kept as data.
- With FORMAT = 'CSV' (RFC 4180): a field may be enclosed in FIELDQUOTE (default `"`); inside it a doubled
  quote is one quote character, and field/row terminators and newlines are data. Quotes are only special at
  the start of a field.
- ROWTERMINATOR '\\n' (the default) accepts CRLF as well as LF, as SQL Server does for character files;
  '0x0a' means LF only. Terminators may be written as '\\t', '\\n', '\\r', '\\r\\n', '0x..' or literal text.
- An empty *unquoted* field is NULL: with KEEPNULLS it stays NULL, without it the column's DEFAULT applies
  (NULL when it has none). A quoted empty field (`""`) is an empty string for character columns (NULL for
  other types).
- binary/varbinary fields are hex digits without a 0x prefix (`00000001` is 4 bytes), as SQL Server reads
  them from character-mode files, with or without FORMAT = 'CSV'.
- FIRSTROW / LASTROW count rows by row terminators (a header line is skipped with FIRSTROW = 2).
- CODEPAGE: '65001' UTF-8 (a leading BOM is dropped), 'ACP' or '1252' Windows-1252, 'RAW' bytes as Latin-1,
  'OEM' (the default for 'char' files) code page 437. DATAFILETYPE = 'widechar' reads UTF-16LE.
- A row with fewer fields than the table has columns is error 4832 (unexpected end of file) when it is the
  last row, else error 4864; KEEPIDENTITY takes identity values from the file, otherwise the file's identity
  field is read and ignored. TABLOCK, BATCHSIZE, CHECK_CONSTRAINTS, ROWS_PER_BATCH, ORDER, MAXERRORS = 0 are
  accepted and have no further effect.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from sqlglot.tokens import Token, TokenType

from .ddl import Cursor
from .results import SqlServerError
from .sqltext import syntax_error, unsupported


@dataclass
class BulkSpec:
    table: list[str]
    path: str
    csv: bool = False
    field_terminator: str = "\t"
    row_terminator: str = "\n"
    field_quote: str = '"'
    first_row: int = 1
    last_row: int = 0
    codepage: str = "OEM"
    widechar: bool = False
    keep_identity: bool = False
    keep_nulls: bool = False


def _terminator(raw: str) -> str:
    low = raw.lower()
    if low.startswith("0x"):
        return bytes.fromhex(raw[2:]).decode("latin-1")
    return raw.replace("\\r", "\r").replace("\\n", "\n").replace("\\t", "\t").replace("\\0", "\0")


def parse_bulk_insert(text: str, toks: list[Token]) -> BulkSpec:
    c = Cursor(text, toks)
    c.expect("BULK", "INSERT")
    table = c.qualified()
    c.expect("FROM")
    t = c.next()
    if t.token_type not in (TokenType.STRING, TokenType.NATIONAL_STRING):
        raise syntax_error(t.text)
    spec = BulkSpec(table, t.text)
    if c.accept("WITH"):
        c.expect("(")
        while not c.at_end() and c.kind() != TokenType.R_PAREN:
            opt = c.next().text.upper()
            val = ""
            if c.kind() == TokenType.EQ:
                c.next()
                v = c.next()
                val = v.text
            if opt == "FORMAT":
                if val.upper() != "CSV":
                    raise unsupported(f"BULK INSERT FORMAT = '{val}'")
                spec.csv = True
            elif opt == "FIELDTERMINATOR":
                spec.field_terminator = _terminator(val)
            elif opt == "ROWTERMINATOR":
                spec.row_terminator = _terminator(val) if val.lower() != "0x0a" else "\x00LF"
            elif opt == "FIELDQUOTE":
                spec.field_quote = val
            elif opt == "FIRSTROW":
                spec.first_row = int(val)
            elif opt == "LASTROW":
                spec.last_row = int(val)
            elif opt == "CODEPAGE":
                spec.codepage = val.upper()
            elif opt == "DATAFILETYPE":
                if val.lower() in ("widechar", "widenative"):
                    spec.widechar = True
                elif val.lower() == "native":
                    raise unsupported("BULK INSERT DATAFILETYPE = 'native'")
            elif opt == "KEEPIDENTITY":
                spec.keep_identity = True
            elif opt == "KEEPNULLS":
                spec.keep_nulls = True
            elif opt in (
                "TABLOCK",
                "BATCHSIZE",
                "CHECK_CONSTRAINTS",
                "ROWS_PER_BATCH",
                "KILOBYTES_PER_BATCH",
                "FIRE_TRIGGERS",
                "MAXERRORS",
            ):
                if opt == "MAXERRORS" and val not in ("0", ""):
                    raise unsupported("BULK INSERT MAXERRORS")
            elif opt == "ORDER":
                c.skip_parens()
            elif opt in (
                "FORMATFILE",
                "ERRORFILE",
                "DATA_SOURCE",
                "FORMATFILE_DATA_SOURCE",
                "ERRORFILE_DATA_SOURCE",
            ):
                raise unsupported("BULK INSERT " + opt)
            else:
                raise syntax_error(opt)
            if c.kind() == TokenType.COMMA:
                c.next()
        c.expect(")")
    return spec


def _decode(data: bytes, spec: BulkSpec) -> str:
    if spec.widechar:
        if data.startswith(codecs.BOM_UTF16_LE):
            data = data[2:]
        return data.decode("utf-16-le")
    cp = spec.codepage
    if cp == "65001":
        if data.startswith(codecs.BOM_UTF8):
            data = data[3:]
        return data.decode("utf-8")
    if cp in ("ACP", "1252"):
        return data.decode("cp1252", errors="replace")
    if cp == "RAW":
        return data.decode("latin-1")
    if cp in ("OEM", "437"):
        return data.decode("cp437")
    try:
        return data.decode(f"cp{int(cp)}")
    except (ValueError, LookupError):
        raise SqlServerError(2775, f"The code page {cp} is not supported by the server.") from None


@dataclass
class _Field:
    text: str
    quoted: bool


def _rows(text: str, spec: BulkSpec) -> list[list[_Field]]:
    ft = spec.field_terminator
    lf_only = spec.row_terminator == "\x00LF"
    rt = "\n" if lf_only else spec.row_terminator
    crlf = rt == "\n" and not lf_only
    rows: list[list[_Field]] = []
    row: list[_Field] = []
    i = 0
    n = len(text)
    q = spec.field_quote
    while i < n:
        if spec.csv and q and text.startswith(q, i):
            j = i + len(q)
            buf: list[str] = []
            while True:
                k = text.find(q, j)
                if k < 0:
                    raise SqlServerError(4832, "Bulk load: An unexpected end of file was encountered in the data file.")
                buf.append(text[j:k])
                if text.startswith(q, k + len(q)):
                    buf.append(q)
                    j = k + 2 * len(q)
                    continue
                i = k + len(q)
                break
            field = _Field("".join(buf), True)
            if text.startswith(ft, i):
                row.append(field)
                i += len(ft)
                if i >= n:
                    row.append(_Field("", False))
                continue
            end, step = _row_end(text, i, rt, crlf)
            if end != i:
                raise SqlServerError(
                    4879,
                    f"Bulk load failed due to invalid column value in CSV data file at row {len(rows) + 1}.",
                )
            row.append(field)
            rows.append(row)
            row = []
            i += step
            continue
        fe = text.find(ft, i)
        re_, step = _row_end(text, i, rt, crlf)
        if fe != -1 and (re_ == -1 or fe < re_):
            row.append(_Field(text[i:fe], False))
            i = fe + len(ft)
            if i >= n:
                row.append(_Field("", False))
            continue
        end = re_ if re_ != -1 else n
        row.append(_Field(text[i:end], False))
        rows.append(row)
        row = []
        i = end + (step if re_ != -1 else 0)
    if row:
        rows.append(row)
    return rows


def _row_end(text: str, i: int, rt: str, crlf: bool) -> tuple[int, int]:
    """Position of the next row terminator at or after i, and its length (-1 when none)."""
    k = text.find(rt, i)
    if k == -1:
        return -1, 0
    if crlf and k > i - 1 and k > 0 and text[k - 1] == "\r" and k - 1 >= i:
        return k - 1, 2
    return k, len(rt)


def read_bulk_file(path: str, spec: BulkSpec, ncols: int, shown: str) -> list[list[str | None]]:
    """Read the data file into ncols columns of text (None = NULL, per the rules in the module docstring)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise SqlServerError(
            4861,
            f'Cannot bulk load because the file "{shown}" could not be opened. Operating system error code '
            f"{e.errno}({e.strerror}).",
        ) from e
    text = _decode(data, spec)
    rows = _rows(text, spec)
    first = max(spec.first_row, 1) - 1
    last = spec.last_row if spec.last_row > 0 else len(rows)
    rows = rows[first:last]
    cols: list[list[str | None]] = [[] for _ in range(ncols)]
    for r, row in enumerate(rows, start=first + 1):
        if len(row) == 1 and row[0].text == "" and not row[0].quoted and ncols > 1:
            continue
        if len(row) < ncols:
            if r == len(rows) + first:
                raise SqlServerError(4832, "Bulk load: An unexpected end of file was encountered in the data file.")
            raise SqlServerError(
                4864,
                f"Bulk load data conversion error (truncation) for row {r}, column {len(row) + 1}.",
            )
        if len(row) > ncols:
            if spec.csv:
                raise SqlServerError(
                    4879,
                    f"Bulk load failed due to invalid column value in CSV data file at row {r}, column {ncols}.",
                )
            rest = spec.field_terminator.join(f.text for f in row[ncols - 1 :])
            row = [*row[: ncols - 1], _Field(rest, False)]
        for k in range(ncols):
            fld = row[k]
            cols[k].append(None if fld.text == "" and not fld.quoted else fld.text)
    return cols
