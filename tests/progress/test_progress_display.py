"""Progress as users see it: the live table on a terminal, silence off a terminal, JSON lines for machines.

Fed with the events a run emits, on a fake clock, so rates and ETAs are exact.
"""

from __future__ import annotations

import dataclasses
import io
import json

from rich.console import Console

from ray_replicator import events
from ray_replicator.progress import Progress

PLAN = events.PlanMade(
    run_id="r1",
    method="raw",
    tables=2,
    ranges=5,
    per_table=(
        events.TablePlan(table="public.Votes", ranges=4, estimated_rows=4000, estimated_bytes=1),
        events.TablePlan(table="public.Users", ranges=1, estimated_rows=100, estimated_bytes=1),
    ),
)


def copied(table: str, rows: int, seconds: float, left: int, node: str = "node1") -> events.RangeCopied:
    """A range of `table` committed; the range id is not shown, so any does."""
    return events.RangeCopied(
        table=table, range=f"{table}#{left}", rows=rows, bytes=rows * 10, seconds=seconds, node=node, left=left
    )


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _render(progress: Progress) -> str:
    console = Console(file=io.StringIO(), width=100, color_system=None)
    console.print(progress.render())
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_table_lines_rates_and_eta() -> None:
    clock = Clock()
    progress = Progress(console=Console(file=io.StringIO()), live=False, clock=clock)
    progress(PLAN)
    progress(events.RayStarted(nodes=2, in_flight=2, dashboard_url="http://127.0.0.1:8265"))
    progress(events.CopyStarted(ranges=5, in_flight=2, resumed=0))
    clock.now = 110.0
    progress(copied("public.Votes", rows=1000, seconds=10.0, left=3))
    screen = _render(progress)
    votes = next(line for line in screen.splitlines() if "public.Votes" in line)
    assert "1/4" in votes and "1,000" in votes and "100" in votes
    assert "30s" in votes, "3,000 rows left at 100 rows/s"
    assert "waiting" in next(line for line in screen.splitlines() if "public.Users" in line)
    total = next(line for line in screen.splitlines() if line.startswith("total"))
    assert "1/5" in total and "31s" in total
    assert "2 Ray nodes" in screen and "Ray dashboard: http://127.0.0.1:8265" in screen

    for left in (2, 1, 0):
        clock.now += 10
        progress(copied("public.Votes", rows=1000, seconds=10.0, left=left))
    progress(events.TableCopied(table="public.Votes", rows=4000, seconds=40.0))
    progress(copied("public.Users", rows=100, seconds=1.0, left=0))
    progress(events.TableCopied(table="public.Users", rows=100, seconds=1.0))
    progress(events.TableFinalized(table="public.Users", seconds=0.2))
    lines = _render(progress).splitlines()
    assert "finalizing" in next(line for line in lines if "public.Votes" in line)
    assert "done" in next(line for line in lines if "public.Users" in line), "keys and ANALYZE of Users are over"
    progress(events.TableFinalized(table="public.Votes", seconds=3.0))
    progress(events.FinalizeStarted(tables=2, step="foreign keys"))
    progress(events.RunDone(status="ok", rows=4100, seconds=41.0))
    clock.now += 1000
    screen = _render(progress)
    assert "ray-replicator: ok" in screen
    total = next(line for line in screen.splitlines() if line.startswith("total"))
    assert "5/5" in total and "4,100" in total and "102" in total, "4,100 rows in the 40 s of copy"
    assert screen.count("done") >= 2


def test_quiet_off_a_terminal_but_names_the_dashboard() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False)
    with Progress(console=console) as progress:
        assert not progress.live_enabled
        progress(PLAN)
        progress(events.RayStarted(nodes=1, in_flight=2, dashboard_url=None))
        progress(copied("public.Users", rows=100, seconds=1.0, left=0))
    assert out.getvalue() == ""
    with Progress(console=console) as progress:
        progress(events.RayStarted(nodes=2, in_flight=2, dashboard_url="http://127.0.0.1:8265"))
    assert out.getvalue() == "Ray dashboard: http://127.0.0.1:8265\n"


def test_json_logs_one_object_per_event() -> None:
    stream = io.StringIO()
    progress = Progress(console=Console(file=io.StringIO()), json_stream=stream, live=False)
    progress(PLAN)
    progress(copied("public.Users", rows=100, seconds=1.0, left=0, node="abc"))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["event"] == "plan" and first["per_table"][0]["table"] == "public.Votes"
    assert second["event"] == "range" and second["node"] == "abc" and isinstance(second["ts"], float)


def test_live_display_on_a_terminal_draws_and_stops() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, color_system=None)
    with Progress(console=console) as progress:
        assert progress.live_enabled
        progress(PLAN)
        progress(events.CopyStarted(ranges=5, in_flight=2, resumed=0))
        progress(copied("public.Users", rows=100, seconds=1.0, left=0))
    assert "public.Users" in out.getvalue() and "1/1" in out.getvalue()


def test_running_ranges_show_before_any_finishes() -> None:
    clock = Clock()
    progress = Progress(console=Console(file=io.StringIO()), live=False, clock=clock)
    assert "reading the source catalog" in _render(progress)
    progress(PLAN)
    progress(events.CopyStarted(ranges=5, in_flight=2, resumed=0))
    progress(events.RangeStarted(table="public.Votes", range="public.Votes#0"))
    progress(events.RangeStarted(table="public.Votes", range="public.Votes#1"))
    votes = next(line for line in _render(progress).splitlines() if "public.Votes" in line)
    assert "0/4" in votes and "copying (2 running)" in votes
    clock.now += 5
    progress(copied("public.Votes", rows=1000, seconds=5.0, left=3))
    votes = next(line for line in _render(progress).splitlines() if "public.Votes" in line)
    assert "1/4" in votes and "(1 running)" in votes and "200" in votes


def test_a_failed_run_ends_with_one_failed_event() -> None:
    stream = io.StringIO()
    progress = Progress(console=Console(file=io.StringIO()), json_stream=stream, live=False)
    progress(PLAN)
    progress.fail("target: database does not exist")
    progress.fail("the same error, seen again by the CLI")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [e["event"] for e in lines] == ["plan", "failed"]
    assert lines[-1]["error"] == "target: database does not exist"
    assert "ray-replicator: failed" in _render(progress)


def test_a_resumed_run_counts_what_earlier_runs_copied() -> None:
    clock = Clock()
    progress = Progress(console=Console(file=io.StringIO()), live=False, clock=clock)
    votes, users = PLAN.per_table
    plan = dataclasses.replace(
        PLAN,
        per_table=(
            dataclasses.replace(votes, resumed_ranges=2, resumed_rows=2000),
            dataclasses.replace(users, resumed_ranges=1, resumed_rows=100),
        ),
    )
    progress(plan)
    progress(events.CopyStarted(ranges=2, in_flight=2, resumed=3))
    progress(events.RangeStarted(table="public.Votes", range="public.Votes#2"))
    clock.now += 10
    progress(copied("public.Votes", rows=1000, seconds=10.0, left=1))
    screen = _render(progress)
    votes = next(line for line in screen.splitlines() if "public.Votes" in line)
    assert "3/4" in votes and "3,000" in votes and "100" in votes and "10s" in votes
    users = next(line for line in screen.splitlines() if "public.Users" in line)
    assert "1/1" in users and "done earlier" in users


def test_json_lines_keep_the_keys_log_parsers_read() -> None:
    stream = io.StringIO()
    progress = Progress(console=Console(file=io.StringIO()), json_stream=stream, live=False)
    for event in (
        PLAN,
        events.RayStarted(nodes=1, in_flight=2, dashboard_url=None),
        events.CopyStarted(ranges=5, in_flight=2, resumed=0),
        events.RangeStarted(table="public.Users", range="public.Users#0"),
        copied("public.Users", rows=100, seconds=1.0, left=0),
        events.TableCopied(table="public.Users", rows=100, seconds=1.0),
        events.TableFinalized(table="public.Users", seconds=0.2),
        events.FinalizeStarted(tables=2, step="foreign keys"),
        events.VerifyStarted(tables=2, ranges=5, kind="counts"),
        events.RunDone(status="ok", rows=100, seconds=2.0),
    ):
        progress(event)
    progress.fail("boom")
    keys = {line["event"]: set(line) - {"ts", "event"} for line in map(json.loads, stream.getvalue().splitlines())}
    assert keys == {
        "plan": {"run_id", "method", "tables", "ranges", "per_table"},
        "ray": {"nodes", "in_flight", "dashboard_url"},
        "copy": {"ranges", "in_flight", "resumed"},
        "range_start": {"table", "range"},
        "range": {"table", "range", "rows", "bytes", "seconds", "node", "left", "changed_values"},
        "table_done": {"table", "rows", "seconds"},
        "table_finalized": {"table", "seconds"},
        "finalize": {"tables", "step"},
        "verify": {"tables", "ranges", "kind"},
        "done": {"status", "rows", "seconds", "schema_changes", "changed_values"},
        "failed": {"error"},
    }
    plan = json.loads(stream.getvalue().splitlines()[0])
    assert set(plan["per_table"][0]) == {
        "table",
        "ranges",
        "estimated_rows",
        "estimated_bytes",
        "resumed_ranges",
        "resumed_rows",
        "schema_changes",
    }
