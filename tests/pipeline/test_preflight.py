"""Checks that refuse a run before the target changes leave nothing behind, whichever way they end."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from ray_replicator.config import load_settings
from ray_replicator.engines.base import Carries, UsageError
from ray_replicator.preflight import POLICY_RULES, check_policies, check_report_path, check_spill_dir
from tests.engines.mssql.servers import Server
from tests.errors.test_side_effects import ms_objects, new_db, pg_objects
from tests.helpers import assert_one_line_error, cli
from tests.pgserver import PasswordPostgres


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


# -- policies against the target's capabilities --------------------------------------------------------------

REFUSED = [
    (
        "hundred_ns=keep",
        "postgresql",
        "source URL option hundred_ns=keep keeps 100 ns digits, which a PostgreSQL target cannot hold; "
        "set hundred_ns=round (rounds to microseconds) or hundred_ns=refuse",
    ),
    (
        "nul=keep",
        "postgresql",
        "source URL option nul=keep keeps U+0000 in text, which a PostgreSQL target cannot hold; "
        "set nul=strip, nul=replace (U+FFFD) or nul=refuse",
    ),
    (
        "nul=keep",
        "bulk-insert",
        "source URL option nul=keep keeps U+0000 in text, which the SQL Server target's writer=bulk-insert cannot "
        "carry; set writer=bulkcopy or writer=insert on the target URL, or nul=strip, nul=replace (U+FFFD) or "
        "nul=refuse",
    ),
    (
        "sql_variant=keep",
        "postgresql",
        "source URL option sql_variant=keep keeps each sql_variant value with its base type, which a PostgreSQL "
        "target cannot hold; set sql_variant=text (each value's exact text) or sql_variant=refuse",
    ),
]


def _target(kind: str, pwpg: PasswordPostgres, ms_target: Server) -> str:
    if kind == "postgresql":
        return pwpg.url(new_db(pwpg, "pol"))
    return ms_target.writer_url(kind)


def _written(kind: str, url: str, pwpg: PasswordPostgres, ms_target: Server) -> list[tuple[str, str]]:
    if kind == "postgresql":
        return pg_objects(pwpg, url.rsplit("/", 1)[1])
    return ms_objects(ms_target)


@pytest.mark.parametrize(("option", "target", "line"), REFUSED, ids=[f"{o}->{t}" for o, t, _ in REFUSED])
def test_a_policy_the_target_cannot_hold_is_refused_before_anything_is_read_or_written(
    variant_source: Server, pwpg: PasswordPostgres, ms_target: Server, option: str, target: str, line: str
) -> None:
    name, value = option.split("=")
    url = _target(target, pwpg, ms_target)
    source = variant_source.url(**{name: value})
    done = cli("run", "--source", source, "--target", url, "--tables", "dbo.kept", "--verify", "counts")
    assert assert_one_line_error(done, 2) == f"error: {line}"
    assert _written(target, url, pwpg, ms_target) == []
    planned = cli("plan", "--source", source, "--tables", "dbo.kept", env={"RAY_REPLICATOR_TARGET__URL": url})
    assert assert_one_line_error(planned, 2) == f"error: {line}"


def test_every_rule_names_a_value_class_and_a_target_that_holds_it_passes() -> None:
    assert {(r.option, r.value) for r in POLICY_RULES} == {
        ("hundred_ns", "keep"),
        ("nul", "keep"),
        ("sql_variant", "keep"),
    }
    assert {r.needs for r in POLICY_RULES} <= {f.name for f in fields(Carries)}
    ms = "mssql://sa:pw@127.0.0.1:1/db"
    for target in (f"{ms}?writer=bulkcopy", f"{ms}?writer=insert", ms):
        source = f"{ms}?hundred_ns=keep&nul=keep&sql_variant=keep"
        check_policies(load_settings(None, {"source": source, "target": target}))
    bulk_insert = f"{ms}?writer=bulk-insert&bulk_dir=/x"
    check_policies(load_settings(None, {"source": f"{ms}?hundred_ns=keep&sql_variant=keep", "target": bulk_insert}))
    check_policies(load_settings(None, {"source": f"{ms}?hundred_ns=round&nul=strip", "target": "postgresql://u@h/db"}))
    check_policies(load_settings(None, {"source": f"{ms}?nul=keep"}))  # plan without a target: nothing to check
    with pytest.raises(UsageError, match="hundred_ns=keep"):
        check_policies(load_settings(None, {"source": f"{ms}?HUNDRED_NS=KEEP", "target": "postgresql://u@h/db"}))


def test_truncate_into_a_table_whose_column_is_still_sql_variant_names_both_types(
    variant_source: Server, ms_target: Server
) -> None:
    """sql_variant = text gives the target nvarchar(max); a kept target table (existing = truncate) that still has
    sql_variant is described as such, not refused as if the target were the source."""
    ms_target.run(
        "CREATE TABLE dbo.variant (id int NOT NULL PRIMARY KEY, x sql_variant NULL)",
        "INSERT INTO dbo.variant (id, x) VALUES (7, 7)",
    )
    done = cli(
        "run",
        "--source",
        variant_source.url(sql_variant="text"),
        "--target",
        ms_target.url(),
        "--tables",
        "dbo.variant",
        env={"RAY_REPLICATOR_EXISTING": "truncate"},
    )
    line = assert_one_line_error(done, 2)
    assert line == (
        "error: target column dbo.variant.x is sql_variant, the source's is nvarchar(max): values may not fit and "
        "binary COPY needs equal types; use existing = drop or alter the column"
    )
    assert ms_target.rows("SELECT id FROM dbo.variant") == [(7,)]
