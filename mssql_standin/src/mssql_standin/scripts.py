"""GO-separated T-SQL scripts, split into batches the way sqlcmd splits them, and run batch by batch.

Splitting rules (sqlcmd's, from "SQL Server Utilities Statements - GO"): `GO [count]` alone on its line, in any
case, with leading/trailing whitespace and an optional trailing comment, ends a batch; `count` (a positive
integer) runs the batch that many times; a GO inside a /* */ comment (nested) or inside '...', N'...', [...]
or "..." is text, not a separator; the text after the last GO is a batch too. Any other line starting with the
word GO (`GO x`, `GO 0`) is a fatal scripting error, as in sqlcmd. Scripting variables as in sqlcmd: `:setvar
NAME value` lines (and run-script's `-v NAME=value`) define $(NAME), replaced everywhere in later lines; an
undefined one stops the script; `:on error exit` is accepted, any other sqlcmd command is refused by name.

A failing batch stops the script with one line (ScriptFailed): the file, the batch's number, the file line the
batch starts on, the file line of the failing statement, and SQL Server's error number and message. Batches
before it stay applied.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

_GO_WORD = re.compile(r"\s*go(?=\s|$|--|/\*)", re.IGNORECASE)
_GO_LINE = re.compile(r"\s*go(?:\s+(\d+))?\s*(?:--.*|/\*(?:(?!\*/).)*\*/\s*)*", re.IGNORECASE)


@dataclass(frozen=True)
class Batch:
    """One batch of a script: its text, its ordinal among the batches run, the file line its text starts on,
    and how many times `GO n` asks to run it."""

    text: str
    number: int
    first_line: int
    repeat: int = 1


class ScriptFailed(Exception):
    """A script stopped: str() is the one line to show."""


@dataclass
class _Lexer:
    """Where a line ends up in T-SQL's lexical structure: inside a block comment (its nesting depth) or a
    quoted string/identifier (its closing character), or neither."""

    depth: int = 0
    closing: str = ""

    @property
    def at_top(self) -> bool:
        return self.depth == 0 and not self.closing

    def feed(self, line: str) -> None:
        i, n = 0, len(line)
        while i < n:
            two = line[i : i + 2]
            if self.depth:
                if two == "/*":
                    self.depth, i = self.depth + 1, i + 2
                elif two == "*/":
                    self.depth, i = self.depth - 1, i + 2
                else:
                    i += 1
            elif self.closing:
                if line[i] == self.closing:
                    doubled = i + 1 < n and line[i + 1] == self.closing
                    i += 2 if doubled else 1
                    if not doubled:
                        self.closing = ""
                else:
                    i += 1
            elif two == "--":
                return
            elif two == "/*":
                self.depth, i = 1, i + 2
            else:
                self.closing = {"'": "'", '"': '"', "[": "]"}.get(line[i], "")
                i += 1


def _go_count(line: str, path: str, lineno: int) -> int | None:
    """The repeat count when the line is a GO line, None when it is batch text."""
    if not _GO_WORD.match(line):
        return None
    m = _GO_LINE.fullmatch(line.rstrip("\r\n"))
    count = int(m.group(1)) if m and m.group(1) else 1 if m else 0
    if count < 1:
        raise ScriptFailed(
            f"{path}: line {lineno}: A fatal scripting error occurred. Incorrect syntax was encountered while "
            "parsing GO (GO takes an optional positive count and a comment only)."
        )
    return count


def _batch(text: list[str], number: int, start: int, repeat: int) -> Batch | None:
    """The batch of these lines, its first line the first that is not blank; None when all are."""
    lead = next((i for i, line in enumerate(text) if line.strip()), None)
    if lead is None:
        return None
    return Batch("".join(text[lead:]), number, start + lead, repeat)


_VARIABLE = re.compile(r"\$\(([A-Za-z_][\w-]*)\)")
_SETVAR = re.compile(r'\s*:setvar\s+([A-Za-z_][\w-]*)(?:\s+(?:"((?:[^"]|"")*)"|(\S+)))?\s*$', re.IGNORECASE)


def _command(line: str, variables: dict[str, str], path: str, lineno: int) -> None:
    """A sqlcmd command line (`:setvar NAME value`, `:on error exit`); others are refused, not sent as T-SQL."""
    if m := _SETVAR.match(line):
        name, quoted, bare = m.groups()
        if quoted is None and bare is None:
            variables.pop(name.upper(), None)
        else:
            variables[name.upper()] = quoted.replace('""', '"') if quoted is not None else bare
        return
    words = line.split()
    if [w.lower() for w in words] == [":on", "error", "exit"]:
        return  # what the script runner does anyway
    raise ScriptFailed(
        f"{path}: line {lineno}: the sqlcmd command {words[0]} is not supported here (only :setvar and "
        ":on error exit; a failing batch always stops the script)"
    )


def _substitute(line: str, variables: dict[str, str], path: str, lineno: int) -> str:
    """$(NAME) replaced by its :setvar / -v value, everywhere in the line as sqlcmd does."""

    def value(m: re.Match[str]) -> str:
        name = m.group(1).upper()
        if name not in variables:
            raise ScriptFailed(f"{path}: line {lineno}: '{m.group(1)}' scripting variable not defined.")
        return variables[name]

    return _VARIABLE.sub(value, line) if "$(" in line else line


def split_script(
    lines: Iterable[str], path: str = "<script>", variables: dict[str, str] | None = None
) -> Iterator[Batch]:
    """The batches of a script given as lines (a file object will do: it is read lazily); whitespace-only
    batches are skipped, as sqlcmd sends nothing for them. sqlcmd's scripting variables: `:setvar NAME value`
    lines and `variables` (names in any case) give the values of $(NAME)."""
    values = {k.upper(): v for k, v in (variables or {}).items()}
    lex = _Lexer()
    text: list[str] = []
    start = 1
    number = 0
    for lineno, raw in enumerate(lines, 1):
        if lex.at_top and raw.lstrip().startswith(":"):
            _command(raw, values, path, lineno)
            text.append("\n")  # kept blank, so line numbers within the batch stay the file's
            continue
        line = _substitute(raw, values, path, lineno)
        count = _go_count(line, path, lineno) if lex.at_top else None
        if count is None:
            text.append(line)
            lex.feed(line)
            continue
        if batch := _batch(text, number + 1, start, count):
            number += 1
            yield batch
        text, start = [], lineno + 1
    if batch := _batch(text, number + 1, start, 1):
        yield batch


def failure(path: str, batch: Batch, number: int, message: str, line_in_batch: int, repetition: int = 1) -> str:
    """The one line naming where a script failed and SQL Server's error."""
    where = f"batch {batch.number}"
    if batch.repeat > 1:
        where += f" (run {repetition} of {batch.repeat})"
    return (
        f"{path}: {where} starting at line {batch.first_line}, error at line "
        f"{batch.first_line + max(line_in_batch, 1) - 1}: Msg {number}: {' '.join(message.splitlines())}"
    )


def run_script(
    path: str | os.PathLike[str],
    run_batch: Callable[[str], None],
    error_of: Callable[[Exception], Any],
    variables: dict[str, str] | None = None,
) -> int:
    """Run every batch of the file through run_batch; the first error it raises (that error_of turns into
    (number, message, line) and not None) stops the script with ScriptFailed. Returns the batches run."""
    name = os.fspath(path)
    try:
        handle = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 - closed below, read lazily
    except OSError as e:
        raise ScriptFailed(f"{name}: cannot read the script: {e.strerror}") from None
    done = 0
    with handle:
        try:
            for batch in split_script(handle, name, variables):
                for k in range(1, batch.repeat + 1):
                    try:
                        run_batch(batch.text)
                    except Exception as e:
                        info = error_of(e)
                        if info is None:
                            raise
                        number, message, line = info
                        raise ScriptFailed(failure(name, batch, number, message, line, k)) from None
                done += 1
        except UnicodeDecodeError as e:
            raise ScriptFailed(f"{name}: the script is not UTF-8 text ({e.reason} at byte {e.start})") from None
    return done


def run_on_engine(engine: Any, path: str | os.PathLike[str]) -> int:
    """Run a script in one session of the stand-in's own engine (the server's --init)."""
    from .results import SqlServerError

    session = engine.session()

    def run_batch(text: str) -> None:
        for _ in session.execute(text):
            pass

    def error_of(e: Exception) -> tuple[int, str, int]:
        if isinstance(e, SqlServerError):
            return e.number, e.message, e.line
        return 50000, f"mssql_standin internal error: {type(e).__name__}: {e}", 1

    try:
        return run_script(path, run_batch, error_of)
    finally:
        session.close()


def _server(text: str) -> tuple[str, int]:
    """sqlcmd's -S: host, host,port or tcp:host,port (the port defaults to 1433)."""
    host, _, port = text.removeprefix("tcp:").partition(",")
    return host or "127.0.0.1", int(port) if port else 1433


def _print_results(cur: Any) -> None:
    """Every result set of the batch, tab-separated, and the PRINT/informational messages between them, to
    stdout in the order they arrived (as sqlcmd -s '\\t' -h -1 would show them)."""
    shown = 0

    def new_messages() -> None:
        nonlocal shown
        messages = cur.messages or []
        for _, msg in messages[shown:]:
            if msg.severity <= 10:
                print(msg.text)
        shown = len(messages)

    while True:
        new_messages()
        if cur.description:
            for row in cur.fetchall():
                print("\t".join("NULL" if v is None else str(v) for v in row))
        if not cur.nextset():
            new_messages()
            return


def run_script_main(argv: list[str]) -> int:
    """`python -m mssql_standin run-script`: run GO-separated scripts against a running stand-in (or any SQL
    Server) over TDS, with python-tds. Exit code 0 when every batch ran, 1 when one failed or the server could
    not be reached (one line on stderr), 2 for a wrong command line. Result sets and PRINT output go to stdout.
    The connection is not encrypted: a server started with --encryption on or strict refuses it."""
    ap = argparse.ArgumentParser(
        prog="python -m mssql_standin run-script",
        description=run_script_main.__doc__,
    )
    ap.add_argument("-S", dest="server", default="127.0.0.1,14330", type=_server, help="host[,port]")
    ap.add_argument("-U", dest="user", required=True)
    ap.add_argument("-P", dest="password", help="password; default: the SQLCMDPASSWORD environment variable")
    ap.add_argument("-d", dest="database", default="master")
    ap.add_argument("-i", dest="inputs", action="append", required=True, help="script file; repeat for more")
    ap.add_argument(
        "-v", dest="variables", action="append", nargs="+", default=[], metavar="NAME=VALUE", help="for $(NAME)"
    )
    args = ap.parse_args(argv)
    variables = dict(v.split("=", 1) for group in args.variables for v in group if "=" in v)
    if any("=" not in v for group in args.variables for v in group):
        ap.error("-v takes NAME=VALUE")
    password = args.password if args.password is not None else os.environ.get("SQLCMDPASSWORD")
    if password is None:
        ap.error("give -P or set SQLCMDPASSWORD")
    try:
        import pytds
    except ImportError:
        print("error: run-script needs python-tds: pip install './mssql_standin[client]'", file=sys.stderr)
        return 2

    host, port = args.server
    try:
        conn = pytds.connect(
            server=host, port=port, user=args.user, password=password, database=args.database, autocommit=True
        )
    except (pytds.Error, OSError) as e:
        msg = getattr(e, "text", None) or str(e).splitlines()[0]
        print(f"error: cannot connect to {host},{port} as {args.user}: {msg}", file=sys.stderr)
        return 1

    def run_batch(text: str) -> None:
        with conn.cursor() as cur:
            cur.execute(text)
            _print_results(cur)

    def error_of(e: Exception) -> tuple[int, str, int] | None:
        if isinstance(e, pytds.DatabaseError) and e.number:
            return e.number, e.text, e.line
        if isinstance(e, (pytds.Error, OSError)):
            return 0, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}", 1
        return None

    try:
        for path in args.inputs:
            run_script(path, run_batch, error_of, variables)
    except ScriptFailed as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        with contextlib.suppress(pytds.Error, OSError):
            conn.close()
    return 0


__all__ = ["Batch", "ScriptFailed", "failure", "run_on_engine", "run_script", "run_script_main", "split_script"]
