"""GO-separated scripts: split as sqlcmd splits them, run by --init and by `run-script`, stopped on the first error
with one line naming the batch and its lines; the state left behind is read back with pymssql."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pymssql
import pytest

from mssql_standin import serve_process
from mssql_standin.scripts import Batch, ScriptFailed, split_script
from tests.helpers import ROOT, assert_one_line_error

from .conftest import PASSWORD, USER
from .standin_process import listening_port, running, standin

__all__ = ["running"]  # the fixture


def batches(text: str) -> list[Batch]:
    return list(split_script(io.StringIO(text), "s.sql"))


def test_go_lines_end_batches_as_sqlcmd_reads_them() -> None:
    script = (
        "select 1\n"
        "GO\n"
        "select 2\n"
        "  go  \t\n"
        "select 3\n"
        "Go -- the third batch ends here\n"
        "select 4\n"
        "GO 3\n"
        "select 5\n"
        "go /* a comment */ -- and another\n"
        "select 6\n"
    )
    got = [(b.text.strip(), b.number, b.first_line, b.repeat) for b in batches(script)]
    assert got == [
        ("select 1", 1, 1, 1),
        ("select 2", 2, 3, 1),
        ("select 3", 3, 5, 1),
        ("select 4", 4, 7, 3),
        ("select 5", 5, 9, 1),
        ("select 6", 6, 11, 1),  # no final GO: the last batch still runs
    ]


def test_go_inside_comments_strings_and_names_is_text() -> None:
    script = (
        "/* outer /* nested\n"
        "GO\n"
        "*/ still comment\n"
        "GO\n"
        "*/ select 'a\n"
        "GO\n"
        "b', N'it''s\n"
        "go\n"
        "', [x\n"
        "GO\n"
        'y], "q\n'
        "GO\n"
        '"\n'
        "-- GO on a comment line is text too\n"
        "GO\n"
        "select 2\n"
    )
    got = batches(script)
    assert [b.first_line for b in got] == [1, 16]
    assert got[0].text.count("\n") == 14
    assert got[1].text == "select 2\n"


def test_go_is_a_word_and_empty_batches_are_skipped() -> None:
    script = "GO\n\n  GO\nselect 1 as go\ngoto_label:\nGO;\nGO\n"
    got = batches(script)
    assert [(b.number, b.first_line, b.text) for b in got] == [(1, 4, "select 1 as go\ngoto_label:\nGO;\n")]


def test_windows_line_ends_and_a_byte_order_mark(tmp_path: Path) -> None:
    script = tmp_path / "ssms.sql"
    script.write_bytes("\ufeffselect 1\r\nGO\r\nselect N'λ'\r\ngo 2\r\n".encode())
    with script.open(encoding="utf-8-sig", newline="") as f:
        got = [(b.text, b.first_line, b.repeat) for b in split_script(f)]
    assert got == [("select 1\r\n", 1, 1), ("select N'λ'\r\n", 3, 2)]


def test_scripting_variables_as_sqlcmd_replaces_them() -> None:
    script = (
        ':setvar DatabaseName "Shop"\n'
        ':SETVAR Quote "say ""hi"""\n'
        ":on error exit\n"
        "\n"
        "USE [$(databasename)]\n"
        "SELECT N'$(Quote)', '$(Preset)'\n"
        "GO\n"
        ":setvar Preset\n"
        "SELECT 1\n"
    )
    got = list(split_script(io.StringIO(script), "s.sql", {"preset": "from -v"}))
    assert [(b.text, b.first_line) for b in got] == [
        ("USE [Shop]\nSELECT N'say \"hi\"', 'from -v'\n", 5),  # the first line that is not blank
        ("SELECT 1\n", 9),
    ]
    with pytest.raises(ScriptFailed, match=r"^s\.sql: line 3: 'Preset' scripting variable not defined\.$"):
        list(split_script(io.StringIO(":setvar Preset\nGO\nSELECT '$(Preset)'\n"), "s.sql", {"Preset": "x"}))
    with pytest.raises(ScriptFailed, match=r"^s\.sql: line 2: the sqlcmd command :r is not supported here"):
        list(split_script(io.StringIO("SELECT 1\n:r other.sql\n"), "s.sql"))
    assert batches("SELECT ':r not a command'\n/*\n:r in a comment\n*/\n")[0].text.count(":r") == 2


@pytest.mark.parametrize("line", ["GO 0", "GO x", "GO 2 3", "GO -1"])
def test_a_malformed_go_is_a_fatal_scripting_error(line: str) -> None:
    with pytest.raises(ScriptFailed, match=r"^s\.sql: line 2: A fatal scripting error occurred"):
        batches(f"select 1\n{line}\nselect 2\n")


# -------------------------------------------------------------------------------- a 20-batch script, batch 13 bad


def twenty_batches(path: Path) -> tuple[int, int]:
    """A script of 20 batches, each logging its number; batch 13 selects from a missing table on its third line.
    Returns (the first line of batch 13, the line of its error)."""
    lines = [
        "-- a script as SSMS writes it",
        "SET NOCOUNT ON",
        "GO",
        "CREATE TABLE dbo.script_log (batch int NOT NULL, note nvarchar(50) NULL)",
        "GO",
    ]
    start13 = error13 = 0
    for n in range(3, 21):
        if n == 13:
            start13 = len(lines) + 1
            error13 = start13 + 2
            lines += [f"INSERT INTO dbo.script_log VALUES ({n}, N'before the error')", "", "SELECT * FROM dbo.nope"]
        else:
            lines += [f"/* batch {n} */ INSERT INTO dbo.script_log VALUES ({n}, N'go ''GO''')"]
        lines.append("GO" if n % 2 else "go -- next")
    path.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")  # no GO after the last batch
    return start13, error13


def logged(port: int, database: str) -> list[tuple[int, str]]:
    conn = pymssql.connect(server="127.0.0.1", port=str(port), user=USER, password=PASSWORD, database=database)
    try:
        cur = conn.cursor()
        cur.execute("select batch, note from dbo.script_log order by batch")
        return list(cur.fetchall())
    finally:
        conn.close()


EXPECTED = [(n, "before the error" if n == 13 else "go 'GO'") for n in range(3, 14)]


def test_init_stops_at_the_failing_batch_and_keeps_the_ones_before(
    tmp_path: Path, running: list[subprocess.Popen[str]]
) -> None:
    script = tmp_path / "load.sql"
    start13, error13 = twenty_batches(script)
    data = tmp_path / "data"
    failed = standin("--database", "Scripts", "--data-dir", str(data), "--init", str(script))
    out, err = failed.communicate(timeout=120)
    line = assert_one_line_error(
        subprocess.CompletedProcess(failed.args, failed.returncode, out, err),
        1,
        f"{script}: batch 13 starting at line {start13}, error at line {error13}: Msg 208: ",
        "dbo.nope",
    )
    assert "listening" not in out, line
    # what batches 1-12 did (and batch 13's first statement, as SQL Server keeps it) was committed to the data dir
    running.append(standin("--database", "Scripts", "--data-dir", str(data)))
    assert logged(listening_port(running[0]), "Scripts") == EXPECTED


def test_init_runs_every_file_in_order(tmp_path: Path, running: list[subprocess.Popen[str]]) -> None:
    first, second = tmp_path / "a.sql", tmp_path / "b.sql"
    first.write_text("CREATE TABLE dbo.script_log (batch int, note nvarchar(50))\nGO\n", encoding="utf-8")
    second.write_text("INSERT INTO dbo.script_log VALUES (1, N'x')\nGO 3\n", encoding="utf-8")
    running.append(standin("--database", "Two", "--init", str(first), "--init", str(second)))
    assert logged(listening_port(running[0]), "Two") == [(1, "x")] * 3


def run_script(port: int, *args: str, password: str = PASSWORD) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mssql_standin", "run-script", "-S", f"127.0.0.1,{port}", "-U", USER, "-P", password,
         "-d", "Scripts", *args],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip


def test_run_script_stops_at_the_failing_batch_and_keeps_the_ones_before(tmp_path: Path) -> None:
    script = tmp_path / "load.sql"
    start13, error13 = twenty_batches(script)
    with serve_process("Scripts", user=USER, password=PASSWORD) as srv:
        done = run_script(srv.port, "-i", str(script))
        assert_one_line_error(
            done, 1, f"{script}: batch 13 starting at line {start13}, error at line {error13}: Msg 208: ", "nope"
        )
        assert logged(srv.port, "Scripts") == EXPECTED


def test_run_script_prints_results_and_repeats_batches(tmp_path: Path) -> None:
    script = tmp_path / "ok.sql"
    script.write_text(
        "CREATE TABLE dbo.script_log (batch int, note nvarchar(50))\nGO\n"
        "INSERT INTO dbo.script_log VALUES (7, N'$(note)')\nGO 2\n"
        "PRINT 'counting';\nSELECT count(*) AS n FROM dbo.script_log\nPRINT N'done λ';\nSELECT N'a', NULL\n",
        encoding="utf-8",
    )
    with serve_process("Scripts", user=USER, password=PASSWORD) as srv:
        done = run_script(srv.port, "-i", str(script), "-v", "note=λ", "unused=1")
        assert (done.returncode, done.stdout, done.stderr) == (0, "counting\n2\ndone λ\na\tNULL\n", "")
        assert logged(srv.port, "Scripts") == [(7, "λ"), (7, "λ")]


def test_run_script_reports_a_wrong_password_and_a_missing_file_in_one_line(tmp_path: Path) -> None:
    with serve_process("Scripts", user=USER, password=PASSWORD) as srv:
        done = run_script(srv.port, "-i", str(tmp_path / "missing.sql"), password="wrong-Secret-1234")
        assert_one_line_error(done, 1, f"cannot connect to 127.0.0.1,{srv.port} as {USER}", "Login failed")
        done = run_script(srv.port, "-i", str(tmp_path / "missing.sql"))
        assert_one_line_error(done, 1, f"{tmp_path / 'missing.sql'}: cannot read the script")


def test_init_names_a_script_it_cannot_read(tmp_path: Path) -> None:
    missing = tmp_path / "missing.sql"
    proc = standin("--init", str(missing))
    out, err = proc.communicate(timeout=120)
    assert_one_line_error(
        subprocess.CompletedProcess(proc.args, proc.returncode, out, err), 1, f"{missing}: cannot read the script"
    )
