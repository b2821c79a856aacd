"""The report as people read it: the terminal table and the markdown file show the same cells."""

from __future__ import annotations

import io

from rich.console import Console

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
            TableReport("public.a", rows=12345, bytes=2_500_000, ranges=3, seconds=2.0, verified="yes (counts)"),
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
    assert lines[-4:] == [
        "phases: catalog 0.50 s, copy+finalize 10.00 s",
        "excluded by filters: public.x",
        "warning: w1",
        "error: public.b: source 11 rows, target 10 rows",
    ]
