"""Output that is not a terminal (a pipe, a file, a CI log) gets no colour, style or cursor codes, also when
FORCE_COLOR or TTY_COMPATIBLE is set in the environment (CI systems set them for tools that should colour)."""

from __future__ import annotations

import io
import sys

import pytest

from ray_replicator.events import PlanMade, TablePlan
from ray_replicator.progress import plain_console, progress_for_cli


@pytest.mark.parametrize("env", [{"FORCE_COLOR": "1"}, {"TTY_COMPATIBLE": "1"}, {}])
def test_no_codes_off_a_terminal(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    piped = io.StringIO()
    monkeypatch.setattr(sys, "stdout", piped)
    console = plain_console()
    assert not console.is_terminal
    with progress_for_cli(False, console) as progress:
        assert not progress.live_enabled
        table = TablePlan(table="public.t", ranges=2, estimated_rows=0, estimated_bytes=0)
        progress(PlanMade(run_id="r1", method="raw", tables=1, ranges=2, per_table=(table,)))
    console.print("[bold red]DIFF[/] public.t", "done")
    assert piped.getvalue() == "DIFF public.t done\n"
