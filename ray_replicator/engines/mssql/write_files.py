"""writer=bulk-insert: RFC 4180 CSV files written into ``bulk_dir`` and loaded with ``BULK INSERT ... FROM
'<server_bulk_dir>/file'`` (FORMAT='CSV', CODEPAGE='65001', KEEPIDENTITY, KEEPNULLS, TABLOCK), each file removed
after its load; the load commits with the range's ledger mark.

What a CSV file cannot carry, and why this writer stays CSV. In a character-format file an empty field is NULL
(KEEPNULLS keeps it NULL: "Keep nulls or default values during bulk import", learn.microsoft.com/sql/
relational-databases/import-export/keep-nulls-or-use-default-values-during-bulk-import-sql-server); only a quoted
empty field of a character column is an empty string, so an empty varbinary has no form, and U+0000 in text has
none either. SQL Server's native formats (DATAFILETYPE = 'native' / 'widenative') would keep both: each
variable-length field has a length prefix, -1 for NULL, so 0 is an empty value, and widenative text is counted
UTF-16 ("Specify prefix length in data files by using bcp", .../specify-prefix-length-in-data-files-by-using-bcp-
sql-server: 2-byte prefixes for (n)varchar(n)/varbinary(n), 8 bytes for the max types, xml, sql_variant and CLR
types, 1 byte for nullable fixed-size types). But a native file holds every other value in SQL Server's internal
layout: date, time, datetime2 and datetimeoffset as their TDS form at scale 7, with storage sizes that "Bulk copy
changes for enhanced date/time types" gives differently for OLE DB and ODBC, and decimal and money in layouts those
pages do not spell out. The stand-in could not be shown to read such files as SQL Server does, so this writer stays
CSV and carries no value it would change: a table with a column that may hold an empty binary value is written by
the bulk copy instead (MssqlTarget.write_notes puts that in the run's warnings); a run that would hand this writer
text with U+0000 is refused at plan time (nul = keep: preflight.POLICY_RULES, Capabilities.writers); and both are
refused here again, by table, column and key, should one ever reach a file."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ray_replicator.catalog import Column, Table
from ray_replicator.config import MssqlUrl
from ray_replicator.engines.base import EngineError
from ray_replicator.engines.mssql.catalog import LEDGER_SCHEMA
from ray_replicator.engines.mssql.sql import n_literal, qualified, quote_ident
from ray_replicator.engines.mssql.values import as_text


def bulk_insert(cur: Any, u: MssqlUrl, table: Table, batches: Iterator[pa.RecordBatch]) -> None:
    """Write the batches to one CSV file in bulk_dir and BULK INSERT it on `cur`, in its transaction."""
    import pyarrow.csv as pacsv

    cols = table.copy_columns
    assert u.bulk_dir is not None
    name = f"rr_{os.getpid()}_{uuid.uuid4().hex[:12]}.csv"
    local = os.path.join(u.bulk_dir, name)
    server = (u.server_bulk_dir or u.bulk_dir).rstrip("/\\") + "/" + name
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
            target = _load_view(cur, table, cols)
        cur.execute(
            f"BULK INSERT {target} FROM {n_literal(server)} WITH (FORMAT = 'CSV', CODEPAGE = '65001', "
            "FIELDQUOTE = '\"', FIELDTERMINATOR = ',', ROWTERMINATOR = '0x0a', KEEPIDENTITY, KEEPNULLS, TABLOCK)"
        )
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(local)


def _load_view(cur: Any, table: Table, cols: list[Column]) -> str:
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


def _refuse_uncarried(table: Table, batch: pa.RecordBatch, col: Column, arr: pa.Array) -> None:
    """An empty binary value or text with U+0000 has no form in a CSV file: refused by name, never altered."""
    is_text = pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)
    is_binary = pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type)
    if is_text and pc.any(pc.match_substring(arr, "\x00")).as_py():
        mask, what = pc.match_substring(arr, "\x00"), "text with NUL (U+0000)"
    elif is_binary and pc.any(pc.equal(pc.binary_length(arr), 0)).as_py():
        mask, what = pc.equal(pc.binary_length(arr), 0), "an empty binary value (it would load as NULL)"
    else:
        return
    row = int(pc.index(mask, True).as_py())
    keys = [k for k in table.split_key if k in batch.schema.names]
    at = ", ".join(f"{k}={batch.column(batch.schema.get_field_index(k))[row].as_py()!r}" for k in keys)
    raise EngineError(
        f"{table.qualified}.{col.name}{f' at key {at}' if at else ''}: {what} cannot travel in a BULK INSERT file; "
        "use writer=bulkcopy or writer=insert"
    )


def _csv_batch(table: Table, batch: pa.RecordBatch, cols: list[Column]) -> pa.RecordBatch:
    arrays = []
    for col in cols:
        arr = batch.column(batch.schema.get_field_index(col.name))
        _refuse_uncarried(table, batch, col, arr)
        text = as_text(arr)
        arrays.append(text.cast(pa.large_string()))
    return pa.RecordBatch.from_arrays(arrays, names=[c.name for c in cols])
