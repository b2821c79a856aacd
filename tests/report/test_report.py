"""The report as people read it: the terminal table and the markdown file show the same cells."""

from __future__ import annotations

import io

from rich.console import Console

from ray_replicator.record import SchemaChange, ValueChanges
from ray_replicator.report import RunReport, TableReport


def _report() -> RunReport:
    return RunReport(
        run_id="r1",
        source="postgresql://a/b",
        target="postgresql://c/d",
        method="raw",
        status="verify failed",
        seconds=12.5,
        phases={"catalog": 0.5, "copy+finalize": 10.0},
        tables=[
            TableReport(
                "public.a",
                rows=12345,
                bytes=2_500_000,
                ranges=3,
                seconds=2.0,
                verified="yes (counts)",
                schema_changes=[SchemaChange("dbo.a", "flag", "type_widened", "tinyint", "smallint", "no tinyint")],
                value_changes=[ValueChanges("dbo.a", "note", "nul=replace", 1234, ["Id=3", "Id=9"])],
            ),
            TableReport("public.b", rows=10, bytes=100, ranges=1, verified="MISMATCH"),
        ],
        excluded=["public.x"],
        warnings=["w1"],
        errors=["public.b: source 11 rows, target 10 rows"],
    )


def test_markdown() -> None:
    assert _report().to_markdown() == (
        "# ray-replicator run r1: verify failed\n"
        "\n"
        "postgresql://a/b → postgresql://c/d, method raw, 12.50 s\n"
        "\n"
        "| table | rows | MB | ranges | seconds | rows/s | verified |\n"
        "|---|---:|---:|---:|---:|---:|---|\n"
        "| public.a | 12,345 | 2.5 | 3 | 2.00 | 6,172 | yes (counts) |\n"
        "| public.b | 10 | 0.0 | 1 | 0.00 | 0 | MISMATCH |\n"
        "| **total** | 12,355 | 2.5 | 4 | 12.50 | 988 | no |\n"
        "\n"
        "on record: 1 schema changes, 1,234 values changed by lossy opt-in policies, in 1 of 2 tables\n"
        "- schema: dbo.a.flag: type widened: tinyint → smallint (no tinyint)\n"
        "- values: dbo.a.note: 1,234 values changed by nul=replace; first keys Id=3, Id=9\n"
        "\n"
        "phases: catalog 0.50 s, copy+finalize 10.00 s\n"
        "\n"
        "excluded by filters: public.x\n"
        "\n"
        "warnings:\n"
        "- w1\n"
        "\n"
        "errors:\n"
        "- public.b: source 11 rows, target 10 rows\n"
    )


def test_terminal_table() -> None:
    out = io.StringIO()
    _report().print(Console(file=out, width=120, color_system=None))
    lines = out.getvalue().splitlines()
    cells = [[c.strip() for c in line.strip("│").split("│")] for line in lines if line.startswith("│")]
    assert cells == [
        ["public.a", "12,345", "2.5", "3", "2.00", "6,172", "yes (counts)"],
        ["public.b", "10", "0.0", "1", "0.00", "0", "MISMATCH"],
        ["total", "12,355", "2.5", "4", "12.50", "988", ""],
    ]
    assert lines[-7:] == [
        "on record: 1 schema changes, 1,234 values changed by lossy opt-in policies, in 1 of 2 tables",
        "  schema: dbo.a.flag: type widened: tinyint → smallint (no tinyint)",
        "  values: dbo.a.note: 1,234 values changed by nul=replace; first keys Id=3, Id=9",
        "phases: catalog 0.50 s, copy+finalize 10.00 s",
        "excluded by filters: public.x",
        "warning: w1",
        "error: public.b: source 11 rows, target 10 rows",
    ]


def test_a_stopped_run_says_why_how_far_and_what_next() -> None:
    report = _report()
    report.status, report.reason, report.next_step = "failed", "dbo.b.v at key id=2: refused", "run with --resume"
    report.tables[0].state = "finalized"
    report.tables[1].state = "partly copied: 1 of 4 ranges"
    stop = [
        "stopped: dbo.b.v at key id=2: refused",
        "table public.a: finalized",
        "table public.b: partly copied: 1 of 4 ranges",
        "next: run with --resume",
    ]
    markdown = report.to_markdown()
    assert "\n".join(stop) in markdown
    out = io.StringIO()
    report.print(Console(file=out, width=120, color_system=None))
    assert "\n".join(stop) in out.getvalue()
    data = report.to_json()
    assert data["status"] == "failed" and data["reason"] == "dbo.b.v at key id=2: refused"
    assert [t["state"] for t in data["tables"]] == ["finalized", "partly copied: 1 of 4 ranges"]
    assert data["schema_changes"] == 1 and data["changed_values"] == 1234
    assert data["tables"][0]["value_changes"] == [
        {"table": "dbo.a", "column": "note", "policy": "nul=replace", "count": 1234, "first_keys": ["Id=3", "Id=9"]}
    ]
