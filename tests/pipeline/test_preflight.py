"""Checks that refuse a run before the target changes leave nothing behind, whichever way they end."""

from __future__ import annotations

from pathlib import Path

import pytest

from ray_replicator.config import load_settings
from ray_replicator.engines.base import UsageError
from ray_replicator.preflight import check_report_path, check_spill_dir


def test_report_path_probe_creates_and_changes_nothing(tmp_path: Path) -> None:
    check_report_path(tmp_path / "new" / "deeper" / "report.json")
    assert list(tmp_path.iterdir()) == []
    kept = tmp_path / "report.json"
    kept.write_text("earlier report")
    check_report_path(kept)
    assert kept.read_text() == "earlier report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_report_path_under_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match="cannot write the report to .*--report FILE.json"):
        check_report_path(tmp_path / "file" / "report.json")


def test_spill_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "spill").write_text("")
    settings = load_settings(None, {"source": "postgresql://u@h/db", "spill_dir": tmp_path / "spill"})
    with pytest.raises(UsageError, match="is not a writable directory"):
        check_spill_dir(settings)
    check_spill_dir(load_settings(None, {"source": "postgresql://u@h/db", "spill_dir": tmp_path / "made"}))
    assert list((tmp_path / "made").iterdir()) == []
