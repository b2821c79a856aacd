"""Reading a SQL Server source: boundaries computed by the server, and each range as exact Arrow batches.

``reader=mssql-python`` fetches Arrow record batches in C (``cursor.arrow_batch``); ``reader=pymssql`` builds
columns from ``fetchmany`` tuples with one ``zip`` and one ``pa.array`` per column. Both are exact; values.py makes
either driver's batches the Arrow types of types.TYPES and applies the value policies.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import pyarrow as pa

from ray_replicator.catalog import Column, Table
from ray_replicator.engines.base import Capabilities, EngineError, KeyRange, Source
from ray_replicator.engines.mssql.catalog import MssqlCatalog
from ray_replicator.engines.mssql.sql import qualified, quote_ident, range_predicate
from ray_replicator.engines.mssql.types import CLR_TYPES, base_name, scale_of
from ray_replicator.engines.mssql.values import Converter, py_arrow_type, py_values, rounded_by_server
from ray_replicator.engines.mssql.variant import variant_text, variant_typed_text
from ray_replicator.record import FIRST_KEYS_KEPT, ValueChanges, key_text

ISOLATION = {"read-committed": "READ COMMITTED", "snapshot": "SNAPSHOT", "nolock": "READ UNCOMMITTED"}
"""The isolation URL option's values as T-SQL isolation levels."""


class MssqlSource(MssqlCatalog, Source):
    """Reads a SQL Server database: catalog, boundaries computed by the server, Arrow batches per range."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.control_driver = self.u.reader
        self._isolation_set = False
        self._changes: dict[str, list[ValueChanges]] = {}

    @classmethod
    def url_for_target(cls, url: str, target: Capabilities) -> str:
        """hundred_ns=auto (or unset) becomes keep for a target that holds 100 ns digits (SQL Server: a copy into
        the same types is exact without the user knowing the option) and refuse for one that does not."""
        parts = urlsplit(url)
        if any(k.lower() == "hundred_ns" and v.lower() != "auto" for k, v in parse_qsl(parts.query)):
            return url
        # the other options stay byte for byte as written (a password among them is scrubbed as written)
        kept = [p for p in parts.query.split("&") if p and p.split("=", 1)[0].lower() != "hundred_ns"]
        resolved = "keep" if target.carries.hundred_ns else "refuse"
        return urlunsplit(parts._replace(query="&".join([*kept, f"hundred_ns={resolved}"])))

    # -- planning -----------------------------------------------------------------------------------------
    def split_boundaries(self, table: Table, parts: int) -> list[tuple[Any, ...]]:
        """The first key of each NTILE(parts) tile after the first, ordered by the server in the key columns' own
        types and collations (uniqueidentifier order, case-insensitive strings ...): never sorted in Python."""
        return self._boundaries(table, table.split_key, parts, None)

    def range_boundaries(self, table: Table, rng: KeyRange, parts: int) -> list[tuple[Any, ...]]:
        """split_boundaries within key range `rng`: verify bisects a mismatched range with these cuts."""
        if rng.kind != "key":
            return []
        return self._boundaries(table, rng.columns or table.split_key, parts, rng)

    def _boundaries(
        self, table: Table, keys: tuple[str, ...], parts: int, rng: KeyRange | None
    ) -> list[tuple[Any, ...]]:
        """Cuts of the table's non-NULL keys (within `rng` when given) into `parts` about equal row counts."""
        if parts < 2 or not keys:
            return []
        idents = ", ".join(quote_ident(k) for k in keys)
        where = [f"{quote_ident(k)} IS NOT NULL" for k in keys]
        what = f"splitting {table.qualified}"
        if rng is not None:
            where.insert(0, range_predicate(table, rng))
            what += f" range {rng.range_id}"
        sql = (
            f"SELECT {idents} FROM (SELECT {idents}, ROW_NUMBER() OVER (PARTITION BY rr_tile ORDER BY {idents}) "
            f"AS rr_rn, rr_tile FROM (SELECT {idents}, NTILE({int(parts)}) OVER (ORDER BY {idents}) AS rr_tile "
            f"FROM {qualified(table.schema, table.name)} WHERE {' AND '.join(where)}) AS tiles) AS firsts "
            f"WHERE rr_rn = 1 AND rr_tile > 1 ORDER BY {idents}"
        )
        out: list[tuple[Any, ...]] = []
        for r in self.query(what, sql):
            if not out or out[-1] != tuple(r):
                out.append(tuple(r))
        return out

    def has_null_keys(self, table: Table) -> bool:
        nullable = [k for k in table.split_key if table.column(k).nullable]
        if not nullable:
            return False
        cond = " OR ".join(f"{quote_ident(k)} IS NULL" for k in nullable)
        sql = f"SELECT TOP (1) 1 FROM {qualified(table.schema, table.name)} WHERE {cond}"
        return bool(self.query(f"checking NULL keys of {table.qualified}", sql))

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
        if n == "sql_variant":
            typed = col.logical.kind == "variant"  # sql_variant = keep
            return f"{variant_typed_text(ident) if typed else variant_text(ident)} AS {ident}"
        if n == "xml":
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
        conv = Converter(table, cols, self.u)
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
            cur.close()
            self._changes[rng.range_id] = [*conv.changes.values(), *self._rounded(table, rng, cols)]
        except EngineError:
            raise
        except Exception as exc:
            raise self._error(what, exc) from None
        finally:
            with contextlib.suppress(Exception):
                cur.close()

    def value_changes(self, rng: KeyRange) -> list[ValueChanges]:
        return self._changes.pop(rng.range_id, [])

    def _rounded(self, table: Table, rng: KeyRange, cols: list[Column]) -> list[ValueChanges]:
        """The values hundred_ns = round changed in the range (the server rounds them as it reads): one count per
        column, then the first keys of the columns that have any, in key order."""
        conditions = {c.name: why for c in cols if (why := rounded_by_server(c)) is not None}
        if self.u.hundred_ns != "round" or not conditions:
            return []
        source = f"{qualified(table.schema, table.name)} WHERE ({range_predicate(table, rng)})"
        what = f"counting the values hundred_ns=round changed in {table.qualified} range {rng.range_id}"
        sums = ", ".join(f"SUM(CASE WHEN {why} THEN 1 ELSE 0 END)" for why in conditions.values())
        counts = self.query(what, f"SELECT {sums} FROM {source}")[0]
        key = list(table.split_key)
        changes = []
        for (name, why), count in zip(conditions.items(), counts, strict=True):
            if not count:
                continue
            keys: list[str] = []
            if key:
                idents = ", ".join(quote_ident(k) for k in key)
                first = f"SELECT TOP ({FIRST_KEYS_KEPT}) {idents} FROM {source} AND {why} ORDER BY {idents}"
                keys = [key_text(key, list(r)) for r in self.query(what, first)]
            changes.append(ValueChanges(table.qualified, name, "hundred_ns=round", int(count), keys))
        return changes

    def _reader_conn(self) -> Any:
        conn = self.control()
        if not self._isolation_set:
            self.execute(
                "setting the isolation level", f"SET TRANSACTION ISOLATION LEVEL {ISOLATION[self.u.isolation]}"
            )
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
            arrays = [pa.array(py_values(c, v), type=py_arrow_type(c)) for c, v in zip(cols, columns, strict=True)]
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
