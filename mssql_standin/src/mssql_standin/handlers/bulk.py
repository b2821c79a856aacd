"""Bulk loads: INSERT BULK (rows from the client's BULK_LOAD packets) and BULK INSERT from a file."""

from __future__ import annotations

import os
import string
from collections.abc import Iterator

import pyarrow as pa
from sqlglot.tokens import TokenType

from .. import ddl
from ..results import BulkLoadRequest, ColumnSpec, Result, RowCount, SqlServerError
from ..rows import RowWriter
from ..session import storage_arrow_type
from ..sqltext import Statement
from ..types import SqlType, scalar_to_storage


class BulkStatements(RowWriter):
    """INSERT BULK, BULK INSERT."""

    def _insert_bulk(self, st: Statement) -> Iterator[BulkLoadRequest]:
        """`INSERT BULK t (col type, ...) WITH (...)`: the rows follow in a BULK_LOAD packet."""
        c = ddl.Cursor(st.text, st.tokens)
        c.expect("INSERT")
        c.expect("BULK")
        parts = c.qualified()
        t = self._table(parts)
        specs: list[ColumnSpec] = []
        if c.kind() == TokenType.L_PAREN:
            c.next()
            while True:
                name = c.ident()
                ty = c.type()
                while c.peek() in ("COLLATE", "NULL", "NOT"):
                    if c.accept("COLLATE"):
                        c.next()
                    elif c.accept("NOT"):
                        c.expect("NULL")
                    else:
                        c.next()
                col = t.col(name)
                if col is None:
                    raise SqlServerError(207, f"Invalid column name '{name}'.")
                specs.append(
                    ty.column_spec(
                        col.name,
                        nullable=col.nullable,
                        identity=col.identity is not None,
                        computed=col.computed is not None,
                    )
                )
                if c.kind() == TokenType.COMMA:
                    c.next()
                    continue
                c.expect(")")
                break
        else:
            specs = [c_.type.column_spec(c_.name, nullable=c_.nullable) for c_ in t.columns if c_.computed is None]
        hints: set[str] = set()
        if c.accept("WITH"):
            raw = c.paren_raw()[1:-1]
            hints = {h.strip().split("=")[0].strip().upper() for h in raw.split(",") if h.strip()}
        yield BulkLoadRequest(
            f"{t.schema}.{t.name}",
            specs,
            keep_identity="KEEP_IDENTITY" in hints,
            tablock="TABLOCK" in hints,
            check_constraints="CHECK_CONSTRAINTS" in hints,
            keep_nulls="KEEP_NULLS" in hints,
        )

    def bulk_insert(self, request: BulkLoadRequest, batch: pa.RecordBatch) -> int:
        """Insert one decoded BULK_LOAD batch (ResultSet conventions, columns in request order)."""
        parts = request.table.split(".", 1)
        t = self._table(parts)
        names = [c.name for c in request.columns]
        arrays = [batch.column(i) for i in range(batch.num_columns)]
        # Naming the identity column keeps its values: SqlBulkCopy (KeepIdentity) and FreeTDS
        # (BCPKEEPIDENTITY) send it only then, without a KEEP_IDENTITY hint; otherwise they leave it out.
        id_col = t.identity
        keep_identity = request.keep_identity or (
            id_col is not None and any(nm.lower() == id_col.name.lower() for nm in names)
        )
        n = self.insert_arrow(
            t,
            names,
            arrays,
            rows=batch.num_rows,
            explicit_identity=keep_identity,
            keep_nulls=request.keep_nulls,
            bulk=True,
        )
        self.rowcount = n
        return n

    def _bulk_insert_file(self, st: Statement) -> Iterator[Result]:
        from ..bulkfile import parse_bulk_insert, read_bulk_file

        spec = parse_bulk_insert(st.text, st.tokens)
        t = self._table(spec.table)
        if self.engine.bulk_dir is None:
            raise SqlServerError(
                4861,
                f'Cannot bulk load because the file "{spec.path}" could not be opened. Operating system '
                "error code 5(Access is denied.).",
            )
        path = os.path.realpath(os.path.join(self.engine.bulk_dir, spec.path))
        if not (path == self.engine.bulk_dir or path.startswith(self.engine.bulk_dir + os.sep)):
            raise SqlServerError(
                4861,
                f'Cannot bulk load because the file "{spec.path}" could not be opened. Operating system '
                "error code 5(Access is denied.).",
            )
        if not os.path.exists(path):
            raise SqlServerError(
                4860,
                f'Cannot bulk load. The file "{spec.path}" does not exist or you don\'t have file access rights.',
            )
        cols = [c for c in t.columns if c.computed is None]
        rows = read_bulk_file(path, spec, len(cols), shown=spec.path)
        names = [c.name for c in cols]
        keep_id = spec.keep_identity
        arrays: list[pa.Array] = []
        use_names: list[str] = []
        for k, c in enumerate(cols):
            vals = rows[k]
            if c.identity is not None and not keep_id:
                continue
            if c.is_rowversion:
                continue
            try:
                conv = [
                    None
                    if v is None or (v == "" and not c.type.is_string)
                    else scalar_to_storage(_bulk_text(v, c.type), c.type, self.state.dateformat)
                    for v in vals
                ]
            except SqlServerError as e:
                raise SqlServerError(
                    4864,
                    "Bulk load data conversion error (type mismatch or invalid character for the specified "
                    f"codepage) for row {spec.first_row}, column {k + 1} ({c.name}). " + e.message,
                ) from e
            arrays.append(pa.array(conv, storage_arrow_type(c.type)))
            use_names.append(names[k])
        n = self.insert_arrow(
            t,
            use_names,
            arrays,
            rows=len(rows[0]) if rows else 0,
            storage=True,
            explicit_identity=keep_id,
            keep_nulls=spec.keep_nulls,
        )
        self.rowcount = n
        yield RowCount(n, "BULK INSERT")


def _bulk_text(v: str, t: SqlType) -> object:
    if t.name == "bit":
        return v.strip()
    if t.is_string:
        return v
    if t.name in ("binary", "varbinary", "image"):
        # character-mode data files hold binary values as hex digits, without a 0x prefix
        h = v.strip()
        if len(h) % 2 or not all(ch in string.hexdigits for ch in h):
            raise SqlServerError(8114, f"Error converting data type varchar to {t.name}.")
        return bytes.fromhex(h)
    return v.strip()
