"""T-SQL function calls DuckDB has no faithful twin for: metadata functions answered from the catalog,
DATALENGTH, HASHBYTES, fractional date parts, GETDATE and friends, and @variables."""

from __future__ import annotations

import datetime as dt

from sqlglot import exp

from . import variant
from .binconv import string_prefix
from .convert import Conversions, _raw_choice
from .results import SqlServerError
from .sqlexpr import _NOCONST, _parse_duck, literal, storage_literal, type_of, view_table_name
from .sqltext import SPECIAL_STORAGE, unsupported
from .syscatalog import quote
from .typerules import NUMBERS, combined_type, concat_type
from .types import TICKS_PER_SECOND, SqlType, make_type, scalar_to_storage
from .utf16text import unit_call


class FunctionCalls(Conversions):
    """Built-in and metadata function calls, @parameters and the clock."""

    def _parameter(self, node: exp.Parameter) -> exp.Expression:
        inner = node.this
        if isinstance(inner, exp.Parameter):
            name = inner.name.upper()
            st, sv = self.ctx.system_value(name)
            return literal(sv, st)
        name = "@" + node.name
        key = name.lower()
        if key not in self.ctx.variables:
            raise SqlServerError(137, f'Must declare the scalar variable "{name}".', severity=15)
        t, v = self.ctx.variables[key]
        if t is not None and t.name in SPECIAL_STORAGE and v is not None:
            out = storage_literal(scalar_to_storage(v, t, self.ctx.dateformat), t)
            out.meta["ss_type"] = t
            out.meta["ss_raw"] = True
            out.meta["ss_const"] = v
            return out
        if t is not None and v is not None and t.name in ("datetime", "smalldatetime"):
            v = scalar_to_storage(v, t, self.ctx.dateformat)
        return literal(v, t)

    def _now(self, fn: str) -> exp.Expression:
        now = self.ctx.now
        if fn in ("getdate", "getutcdate"):
            t = make_type("datetime", [])
            v = now if fn == "getdate" else now.astimezone(dt.UTC).replace(tzinfo=None)
            return literal(scalar_to_storage(v.replace(tzinfo=None), t), t)
        t = make_type("datetime2", ["7"]) if fn != "sysdatetimeoffset" else make_type("datetimeoffset", ["7"])
        v = now if fn == "sysdatetime" else now.astimezone(dt.UTC)
        st = scalar_to_storage(v.replace(tzinfo=None) if fn != "sysdatetimeoffset" else v, t)
        out = storage_literal(st, t)
        out.meta["ss_type"] = t
        out.meta["ss_raw"] = True
        return out

    def _function(self, node: exp.Anonymous) -> exp.Expression:
        out: exp.Expression
        cur: exp.Expression
        raw = node.name
        name = raw.lower()
        if not name.startswith("__ss_fn_"):
            if name.startswith("__ss_"):
                return node
            raise SqlServerError(195, f"'{raw}' is not a recognized built-in function name.", severity=15)
        fn = name[len("__ss_fn_") :]
        args = list(node.expressions)
        consts = [a.meta.get("ss_const") if a.meta and "ss_const" in a.meta else _NOCONST for a in args]
        all_const = all(c is not _NOCONST for c in consts)
        if fn in ("getdate", "sysdatetime", "sysutcdatetime", "getutcdate", "sysdatetimeoffset"):
            return self._now(fn)
        if fn == "nchar":
            out = exp.Anonymous(this="chr", expressions=[args[0]])
            out.meta["ss_type"] = SqlType("nchar", 1)
            if "ss_const" in (args[0].meta or {}) and isinstance(args[0].meta["ss_const"], int):
                out.meta["ss_const"] = chr(args[0].meta["ss_const"])
            return out
        if fn in ("newid", "newsequentialid"):
            out = exp.Anonymous(this="__ss_newid", expressions=[])
            out.meta["ss_type"] = make_type("uniqueidentifier", [])
            out.meta["ss_raw"] = True
            return out
        if fn == "len":
            return self._len(args[0])
        if fn == "isnull":
            out = exp.Coalesce(this=args[0], expressions=[args[1]])
            t0, t1 = type_of(args[0]), type_of(args[1])
            narrower = t0 is not None and t1 is not None and t1.scale > t0.scale  # would need rounding
            if not narrower and _raw_choice(out, args[:2]):
                out.meta["ss_type"] = t0 or t1  # ISNULL takes the first argument's type
                return out
            return self._isnull(args[0], args[1])
        if fn == "iif":
            out = exp.If(this=args[0], true=args[1], false=args[2])
            if _raw_choice(out, args[1:3]):
                return out
            out = exp.If(this=args[0], true=self._native(args[1]), false=self._native(args[2]))
            out.meta["ss_type"] = combined_type(args[1:3])
            return out
        if fn in ("left", "right"):
            t = type_of(args[0])
            shown = t if t is not None and t.is_string else SqlType("varchar", 8000)
            if t is not None and t.is_unicode:  # counted in UTF-16 units (utf16text.py)
                if fn == "right":
                    return unit_call("right", [self._native(args[0]), args[1]], shown)
                return unit_call("left", [self._native(args[0]), args[1]], shown)
            out = exp.Anonymous(
                this=fn,
                expressions=[exp.Cast(this=self._native(args[0]), to=exp.DataType.build("VARCHAR")), args[1]],
            )
            out.meta["ss_type"] = shown
            return out
        if fn == "charindex":
            if len(args) > 2:
                raise unsupported("CHARINDEX with a start position")
            if any((at := type_of(a)) is not None and at.is_unicode for a in args):
                return unit_call("charindex", [self._native(a) for a in args], make_type("int", []))
            out = exp.Cast(
                this=exp.Anonymous(this="strpos", expressions=[self._native(args[1]), self._native(args[0])]),
                to=exp.DataType.build("INTEGER"),
            )
            out.meta["ss_type"] = make_type("int", [])
            return out
        if fn == "sql_variant_property":
            return variant.property_call(args)
        if fn == "datalength":
            return self._datalength(args[0])
        if fn == "hashbytes":
            return self._hashbytes(args)
        if fn == "checksum_agg":
            out = exp.Cast(
                this=exp.Anonymous(this="bit_xor", expressions=[self._native(args[0])]),
                to=exp.DataType.build("INTEGER"),
            )
            out.meta["ss_type"] = make_type("int", [])
            return out
        if fn in ("checksum", "binary_checksum"):
            raise unsupported(fn.upper() + " (SQL Server's hash is not reproduced; use HASHBYTES)")
        if fn in ("convert", "try_convert"):
            return self._convert(args, fn == "try_convert")
        if fn == "concat":
            parts = [
                exp.Coalesce(
                    this=exp.Cast(this=self._native(a), to=exp.DataType.build("VARCHAR")),
                    expressions=[exp.Literal.string("")],
                )
                for a in args
            ]
            cur = parts[0]
            for p in parts[1:]:
                cur = exp.DPipe(this=cur, expression=p)
            ct = concat_type([type_of(a) for a in args])
            if ct.length in (4000, 8000):  # arguments longer than that are cut, as SQL Server cuts them
                cur = string_prefix(cur, ct)
            cur.meta["ss_type"] = ct
            return cur
        if fn == "quotename":
            a = self._native(args[0])
            if len(args) > 1:
                raise unsupported("QUOTENAME with a quote character")
            out = exp.DPipe(
                this=exp.DPipe(
                    this=exp.Literal.string("["),
                    expression=exp.Anonymous(
                        this="replace", expressions=[a, exp.Literal.string("]"), exp.Literal.string("]]")]
                    ),
                ),
                expression=exp.Literal.string("]"),
            )
            out.meta["ss_type"] = SqlType("nvarchar", 258)
            return out
        if fn == "space":
            return self._replicate(literal(" ", SqlType("varchar", 1)), args[0])
        if fn == "replicate":
            return self._replicate(args[0], args[1])
        if fn == "square":
            out = exp.Mul(
                this=exp.Cast(this=args[0], to=exp.DataType.build("DOUBLE")),
                expression=exp.Cast(this=args[0].copy(), to=exp.DataType.build("DOUBLE")),
            )
            out.meta["ss_type"] = SqlType("float", 0, 53)
            return out
        # metadata functions: evaluated in Python when their arguments are constants
        if (
            fn
            in (
                "object_name",
                "schema_name",
                "type_name",
                "object_id",
                "columnproperty",
                "col_name",
                "object_schema_name",
            )
            and not all_const
        ):
            return self._meta_subquery(fn, args)
        if all_const:
            t, v = self.ctx.function_value(fn, list(consts))
            if t is not None and t.name in SPECIAL_STORAGE and v is not None:
                out = storage_literal(scalar_to_storage(v, t), t)
                out.meta["ss_type"] = t
                out.meta["ss_raw"] = True
                return out
            return literal(v, t)
        raise unsupported(fn.upper() + " with non-constant arguments")

    def _meta_subquery(self, fn: str, args: list[exp.Expression]) -> exp.Expression:
        out: exp.Expression

        def sub(view: str, col: str, key: str, arg: exp.Expression) -> exp.Expression:
            self.ctx.views.add(view)
            src = quote(view_table_name(view))
            q = f"(SELECT {quote(col)} FROM {src} WHERE {quote(key)} = ({arg.sql('duckdb')}) LIMIT 1)"
            return _parse_duck(q)

        t = SqlType("nvarchar", 128)
        if fn == "object_id":
            # OBJECT_ID(name): a one-part name is looked up in dbo, as for a user whose default schema is dbo
            self.ctx.views.update(("sys.objects", "sys.schemas"))
            o, sc = quote(view_table_name("sys.objects")), quote(view_table_name("sys.schemas"))
            bare = f"replace(replace({args[0].sql('duckdb')}, '[', ''), ']', '')"
            want = f"lower(CASE WHEN strpos({bare}, '.') > 0 THEN {bare} ELSE 'dbo.' || {bare} END)"
            q = (f"(SELECT o.object_id FROM {o} o JOIN {sc} s ON s.schema_id = o.schema_id "
                 f"WHERE lower(s.name || '.' || o.name) = {want} LIMIT 1)")  # fmt: skip
            out = _parse_duck(q)
            t = make_type("int", [])
        elif fn == "object_schema_name":
            self.ctx.views.update(("sys.objects", "sys.schemas"))
            o, sc = quote(view_table_name("sys.objects")), quote(view_table_name("sys.schemas"))
            q = (f"(SELECT s.name FROM {o} o JOIN {sc} s ON s.schema_id = o.schema_id "
                 f"WHERE o.object_id = ({args[0].sql('duckdb')}) LIMIT 1)")  # fmt: skip
            out = _parse_duck(q)
        elif fn == "object_name":
            out = sub("sys.objects", "name", "object_id", args[0])
        elif fn == "schema_name":
            out = sub("sys.schemas", "name", "schema_id", args[0])
        elif fn == "type_name":
            out = sub("sys.types", "name", "user_type_id", args[0])
        elif fn == "col_name":
            self.ctx.views.add("sys.columns")
            src = quote(view_table_name("sys.columns"))
            a0, a1 = args[0].sql("duckdb"), args[1].sql("duckdb")
            q = f"(SELECT name FROM {src} WHERE object_id = ({a0}) AND column_id = ({a1}) LIMIT 1)"
            out = _parse_duck(q)
        elif fn == "columnproperty" and isinstance(args[2].meta.get("ss_const"), str):
            prop = str(args[2].meta["ss_const"]).lower()
            colmap = {"isidentity": "is_identity", "iscomputed": "is_computed", "allowsnull": "is_nullable"}
            if prop not in colmap:
                raise unsupported("COLUMNPROPERTY " + prop)
            self.ctx.views.add("sys.columns")
            q = (
                f"(SELECT CAST({colmap[prop]} AS INTEGER) FROM {quote(view_table_name('sys.columns'))} WHERE "
                "object_id = "
                f"({args[0].sql('duckdb')}) AND lower(name) = lower({args[1].sql('duckdb')}) LIMIT 1)"
            )
            out = _parse_duck(q)
            t = make_type("int", [])
        else:
            raise unsupported(fn.upper() + " with non-constant arguments")
        out.meta["ss_type"] = t
        return out

    def _isnull(self, check: exp.Expression, replacement: exp.Expression) -> exp.Expression:
        """ISNULL takes the type of its first argument (of the second when the first is a bare NULL): a
        replacement string longer than the first argument's type is cut to it, a number converted to it."""
        t = type_of(check) or type_of(replacement)
        b = self._native(replacement)
        tb = type_of(replacement)
        if t is not None and t.is_string and t.length > 0 and not (tb is not None and 0 < tb.length <= t.length):
            b = string_prefix(exp.Cast(this=b, to=exp.DataType.build("VARCHAR")), t)
        elif (
            t is not None and tb is not None and t.name in NUMBERS and tb != t and not isinstance(replacement, exp.Null)
        ):
            b = self._native(self._convert_to(replacement, t, False, None))  # ISNULL(int_col, 0.5) is 0
        out = exp.Coalesce(this=self._native(check), expressions=[b])
        out.meta["ss_type"] = t
        return out

    def _len(self, arg: exp.Expression) -> exp.Expression:
        """LEN: characters without the trailing spaces, nvarchar counted in UTF-16 code units (as under a
        collation without supplementary characters), binary in bytes; bigint for a max type, else int."""
        t = type_of(arg)
        native = self._native(arg)
        body: exp.Expression
        if t is not None and t.name in ("binary", "varbinary", "image", "timestamp"):
            body = exp.Anonymous(this="octet_length", expressions=[native])
        else:
            trimmed = exp.Anonymous(this="rtrim", expressions=[exp.Cast(this=native, to=exp.DataType.build("VARCHAR"))])
            if t is not None and t.is_unicode:
                body = exp.Anonymous(this="__ss_utf16_units", expressions=[trimmed])
            else:
                body = exp.Length(this=trimmed)
        big = t is not None and t.length == -1 and (t.is_string or t.name == "varbinary")
        out = exp.Cast(this=body, to=exp.DataType.build("BIGINT" if big else "INTEGER"))
        out.meta["ss_type"] = make_type("bigint" if big else "int", [])
        return out

    def _replicate(self, arg: exp.Expression, count: exp.Expression) -> exp.Expression:
        """REPLICATE (and SPACE): the argument's string type; a value that is not (max) is cut at 8000 bytes
        (4000 nvarchar characters); a negative count gives NULL."""
        t = type_of(arg)
        unicode = t is not None and t.is_unicode
        maxed = t is not None and t.is_string and t.length == -1
        limit = 4000 if unicode else 8000
        text = exp.Cast(this=self._native(arg), to=exp.DataType.build("VARCHAR"))
        times = exp.Cast(this=self._native(count), to=exp.DataType.build("BIGINT"))
        body: exp.Expression
        if maxed:
            body = exp.Anonymous(this="repeat", expressions=[text, times])
        else:
            capped = exp.Anonymous(this="least", expressions=[times, exp.Literal.number(limit)])
            body = string_prefix(
                exp.Anonymous(this="repeat", expressions=[text, capped]),
                SqlType("nvarchar" if unicode else "varchar", limit),
            )
        negative = exp.LT(this=times.copy(), expression=exp.Literal.number(0))
        out = exp.Case(ifs=[exp.If(this=negative, true=exp.Null())], default=body)
        out.meta["ss_type"] = SqlType("nvarchar" if unicode else "varchar", -1 if maxed else limit)
        return out

    def _datalength(self, arg: exp.Expression) -> exp.Expression:
        t = type_of(arg)
        if t is None:
            raise unsupported("DATALENGTH of an expression of unknown type")
        if t.is_unicode:
            body: exp.Expression = exp.Anonymous(this="__ss_utf16_bytes", expressions=[arg])
        elif t.is_string:
            body = exp.Length(this=arg)
        elif t.name in ("binary", "varbinary", "image", "timestamp", "geography", "geometry", "hierarchyid"):
            body = exp.Anonymous(this="octet_length", expressions=[arg])
        elif t.name == "sql_variant":  # the base value's bytes
            body = exp.Anonymous(this="__ss_variant_datalength", expressions=[arg])
        else:
            size = {"decimal": None, "numeric": None}.get(t.name, t.max_length)
            if size is None:
                from .types import decimal_storage

                size = decimal_storage(t.precision)
            body = exp.Case(
                ifs=[exp.If(this=exp.Is(this=arg, expression=exp.Null()), true=exp.Null())],
                default=exp.Literal.number(size),
            )
        out = exp.Cast(this=body, to=exp.DataType.build("BIGINT" if t.max_length == -1 else "INTEGER"))
        out.meta["ss_type"] = make_type("bigint" if t.max_length == -1 else "int", [])
        return out

    def _hashbytes(self, args: list[exp.Expression]) -> exp.Expression:
        alg = args[0].meta.get("ss_const") if args[0].meta else None
        if not isinstance(alg, str) or alg.upper() not in (
            "MD5",
            "SHA1",
            "SHA2_256",
            "SHA2_512",
            "SHA",
            "MD4",
            "MD2",
        ):
            raise unsupported("HASHBYTES algorithm")
        if alg.upper() in ("MD4", "MD2"):
            raise unsupported("HASHBYTES " + alg.upper())
        arg = args[1]
        t = type_of(arg)
        if t is None:
            raise unsupported("HASHBYTES of an expression of unknown type")
        if t.is_string:
            fn = "__ss_hash_n" if t.is_unicode else "__ss_hash_v"
        elif t.name in ("binary", "varbinary", "image", "timestamp"):
            fn = "__ss_hash_b"
        else:
            raise unsupported("HASHBYTES of " + t.name)
        out = exp.Anonymous(this=fn, expressions=[exp.Literal.string(alg.upper()), arg])
        out.meta["ss_type"] = SqlType("varbinary", 8000)
        return out

    def _fraction_part(self, arg: exp.Expression, per_second: int) -> exp.Expression:
        """DATEPART(millisecond/microsecond/nanosecond): the fraction of the second only, from the 100 ns
        storage of datetime2/time/datetimeoffset (DuckDB's own parts are microseconds including the seconds)."""
        t = type_of(arg)
        if t is None or t.is_string:
            t = make_type("datetime2", ["7"])
            arg = self._convert_to(arg, t, False, None)
        if arg.meta.get("ss_raw") and t.name in ("datetime2", "time", "datetimeoffset"):
            ticks = arg
            if t.name == "datetimeoffset":
                ticks = exp.Dot(this=exp.Paren(this=arg), expression=exp.to_identifier("utc"))
            frac: exp.Expression = exp.Mod(
                this=exp.Paren(
                    this=exp.Add(
                        this=exp.Mod(this=exp.Paren(this=ticks), expression=exp.Literal.number(TICKS_PER_SECOND)),
                        expression=exp.Literal.number(TICKS_PER_SECOND),
                    )
                ),
                expression=exp.Literal.number(TICKS_PER_SECOND),
            )
        else:
            us = exp.Anonymous(this="microsecond", expressions=[self._native(arg)])
            frac = exp.Mul(
                this=exp.Paren(this=exp.Mod(this=us, expression=exp.Literal.number(1_000_000))),
                expression=exp.Literal.number(10),
            )
        scaled: exp.Expression = (
            exp.Mul(this=exp.Paren(this=frac), expression=exp.Literal.number(per_second // TICKS_PER_SECOND))
            if per_second >= TICKS_PER_SECOND
            else exp.IntDiv(this=exp.Paren(this=frac), expression=exp.Literal.number(TICKS_PER_SECOND // per_second))
        )
        out = exp.Cast(this=scaled, to=exp.DataType.build("INTEGER"))
        out.meta["ss_type"] = make_type("int", [])
        return out
