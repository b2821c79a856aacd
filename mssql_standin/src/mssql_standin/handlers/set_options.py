"""SET options, SET/DECLARE of variables, USE and DBCC."""

from __future__ import annotations

from collections.abc import Iterator

from sqlglot.tokens import TokenType

from .. import ddl
from ..results import Done, EnvChange, Info, Result, SqlServerError
from ..session import RAW_TYPES, fetch_first
from ..sqltext import Statement, parse_statement, syntax_error, tokenize, unsupported
from ..syscatalog import quote
from ..types import scalar_to_storage
from .types import AliasTypeStatements


class SetOptions(AliasTypeStatements):
    """SET, DECLARE, USE, DBCC."""

    def _set(self, st: Statement) -> Iterator[Result]:
        toks = st.tokens
        words = [t.text.upper() for t in toks]
        if len(words) < 2:
            raise syntax_error("SET")
        if toks[1].token_type == TokenType.PARAMETER or words[1].startswith("@"):
            yield from self._set_variable(st)
            return
        opt = words[1]
        val = words[-1] if len(words) > 2 else ""
        on = val == "ON"
        if opt == "NOCOUNT":
            self.state.nocount = on
        elif opt == "FMTONLY":
            self.state.fmtonly = on
        elif opt == "IDENTITY_INSERT":
            parts = [t.text for t in toks[2:-1] if t.token_type != TokenType.DOT]
            t = self._table(parts)
            if t.identity is None:
                raise SqlServerError(
                    8106,
                    f"Table '{t.two_part}' does not have the identity property. Cannot perform SET operation.",
                )
            if on:
                cur = self.state.identity_insert
                if cur is not None and cur != t.object_id:
                    other = self.catalog.table_by_id(cur)
                    name = f"{self.database}.{other.two_part}" if other else "?"
                    raise SqlServerError(
                        8107,
                        f"IDENTITY_INSERT is already ON for table '{name}'. Cannot perform SET operation for "
                        "table "
                        f"'{t.two_part}'.",
                    )
                self.state.identity_insert = t.object_id
            elif self.state.identity_insert == t.object_id:
                self.state.identity_insert = None
        elif opt == "DATEFORMAT":
            fmt = toks[2].text.lower()
            if fmt not in ("mdy", "dmy", "ymd", "ydm", "myd", "dym"):
                raise SqlServerError(2741, "SET DATEFORMAT date order 'x' is invalid.".replace("x", fmt))
            self.state.dateformat = fmt
        elif opt == "TEXTSIZE":
            self.state.textsize = int(toks[2].text) if toks[2].text.lstrip("-").isdigit() else self.state.textsize
        elif opt == "TRANSACTION":
            self.state.isolation = " ".join(words[4:])
        elif opt == "XACT_ABORT":
            self.state.xact_abort = on
        elif opt in (
            "ANSI_NULLS",
            "ANSI_PADDING",
            "ANSI_WARNINGS",
            "ANSI_NULL_DFLT_ON",
            "ANSI_NULL_DFLT_OFF",
            "QUOTED_IDENTIFIER",
            "CONCAT_NULL_YIELDS_NULL",
            "ARITHABORT",
            "NUMERIC_ROUNDABORT",
            "IMPLICIT_TRANSACTIONS",
            "CURSOR_CLOSE_ON_COMMIT",
            "LOCK_TIMEOUT",
            "LANGUAGE",
            "DATEFIRST",
            "DEADLOCK_PRIORITY",
            "ROWCOUNT",
            "STATISTICS",
            "SHOWPLAN_ALL",
            "NOEXEC",
            "PARSEONLY",
            "ARITHIGNORE",
            "ANSI_DEFAULTS",
            "NO_BROWSETABLE",
            "QUERY_GOVERNOR_COST_LIMIT",
            "CONTEXT_INFO",
            "FORCEPLAN",
            "REMOTE_PROC_TRANSACTIONS",
            "XACT_ABORT",
        ):
            if opt == "ROWCOUNT" and toks[2].text not in ("0",):
                raise unsupported("SET ROWCOUNT")
            if opt == "IMPLICIT_TRANSACTIONS" and on:
                raise unsupported("SET IMPLICIT_TRANSACTIONS ON")
        else:
            raise SqlServerError(195, f"'{toks[1].text}' is not a recognized SET option.", severity=15)
        yield Done("SET")

    def _set_variable(self, st: Statement) -> Iterator[Result]:
        name = "@" + st.tokens[2].text if st.tokens[1].text == "@" else st.tokens[1].text
        key = name.lower()
        if key not in self.state.variables:
            raise SqlServerError(137, f'Must declare the scalar variable "{name}".', severity=15)
        eq = next(i for i, t in enumerate(st.tokens) if t.token_type == TokenType.EQ)
        expr = st.text[st.tokens[eq + 1].start - st.tokens[0].start :]
        tree = parse_statement("SELECT " + expr, tokenize("SELECT " + expr))
        t, _ = self.state.variables[key]
        v = self._scalar(tree)
        self.state.variables[key] = (
            t,
            scalar_to_storage(v, t) if t is not None and t.name not in RAW_TYPES else v,
        )
        yield Done("SET")

    def _declare(self, st: Statement) -> Iterator[Result]:
        c = ddl.Cursor(st.text, st.tokens)
        c.expect("DECLARE")
        while True:
            t = c.next()
            name = "@" + c.next().text if t.text == "@" else t.text if t.text.startswith("@") else "@" + t.text
            c.accept("AS")
            if c.peek() in ("CURSOR", "TABLE"):
                raise unsupported("DECLARE " + c.peek())
            ty = self._declared_type(c)
            value: object = None
            if c.kind() == TokenType.EQ:
                c.next()
                start = c.i
                depth = 0
                while not c.at_end() and not (depth == 0 and c.kind() == TokenType.COMMA):
                    k = c.next().token_type
                    depth += 1 if k == TokenType.L_PAREN else -1 if k == TokenType.R_PAREN else 0
                expr = c.raw_from(start)
                value = self._scalar(parse_statement("SELECT " + expr, tokenize("SELECT " + expr)))
                if value is not None and ty.name not in RAW_TYPES:
                    value = scalar_to_storage(value, ty)
            self.state.variables[name.lower()] = (ty, value)
            if c.kind() == TokenType.COMMA:
                c.next()
                continue
            break
        yield Done("DECLARE")

    def _use(self, st: Statement) -> Iterator[Result]:
        name = st.tokens[1].text if len(st.tokens) > 1 else ""
        known = {self.engine.database.lower(), "master", "tempdb", "model", "msdb"}
        if name.lower() not in known:
            raise SqlServerError(
                911, f"Database '{name}' does not exist. Make sure that the name is entered correctly."
            )
        old = self.database
        self.database = self.engine.database if name.lower() == self.engine.database.lower() else name.lower()
        yield EnvChange("database", new_value=self.database, old_value=old)
        yield Info(5701, f"Changed database context to '{self.database}'.", state=2, severity=0)
        yield Done("USE")

    def _dbcc(self, st: Statement) -> Iterator[Result]:
        words = [t.text.upper() for t in st.tokens]
        if len(words) < 2 or words[1] != "CHECKIDENT":
            raise unsupported("DBCC " + (words[1] if len(words) > 1 else ""))
        close = next((i for i, t in enumerate(st.tokens) if t.token_type == TokenType.R_PAREN), len(st.tokens))
        args = [t for t in st.tokens[3:close] if t.token_type != TokenType.COMMA]
        quiet = "NO_INFOMSGS" in words[close:]
        if not args:
            raise syntax_error("CHECKIDENT")
        name = args[0].text
        t = self._table_by_text(name)
        if t.identity is None or t.identity.identity is None:
            raise SqlServerError(7997, f"'{t.name}' does not contain an identity column.", state=1)
        opt = args[1].text.upper() if len(args) > 1 else "RESEED"
        rest = args[2:]
        cur = self.engine.identity_current(t)
        if opt == "RESEED" and rest:
            sign = -1 if rest[0].text == "-" else 1
            val = int(rest[-1].text) * sign
            with self.engine.lock:
                # after inserts the next value is val + increment; on a new or truncated table it is val
                self.engine.identity[t.object_id] = val
            shown = "NULL" if cur is None else str(cur)
            if not quiet:
                yield Info(2560, f"Checking identity information: current identity value '{shown}'.", severity=10)
        else:
            mx = fetch_first(self.cur.execute(f"SELECT max({quote(t.identity.name)}) FROM {t.physical}"))
            maxv = mx[0] if mx else None
            shown = "NULL" if cur is None else str(cur)
            yield Info(
                2559,
                f"Checking identity information: current identity value '{shown}', current column "
                f"value '{'NULL' if maxv is None else maxv}'.",
                severity=10,
            )
        if not quiet:
            yield Info(
                2528,
                "DBCC execution completed. If DBCC printed error messages, contact your system administrator.",
                severity=10,
            )
        yield Done("DBCC")
