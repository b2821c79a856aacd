"""The config model: layering, one-line errors naming the field and the allowed values, no secrets shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from ray_replicator.config import known_secrets, load_settings
from ray_replicator.engines.base import UsageError
from ray_replicator.redact import redact_url, scrub

SRC = "postgresql://alice:s3cret-pw@db1:5432/app"
DST = "postgresql://bob@db2/app"


def test_defaults_then_toml_then_env_then_flags(tmp_path: Path) -> None:
    cfg = tmp_path / "job.toml"
    cfg.write_text(f'rows_per_range = 10\nbatch_rows = 7\n[source]\nurl = "{SRC}"\n[target]\nurl = "{DST}"\n')
    env = {"RAY_REPLICATOR_ROWS_PER_RANGE": "20", "RAY_REPLICATOR_EXISTING": "truncate"}
    s = load_settings(cfg, {"existing": "drop"}, environ=env)
    assert s.rows_per_range == 20
    assert s.batch_rows == 7
    assert s.existing == "drop"
    assert s.keys == "after-load"
    assert s.source.url.get_secret_value() == SRC


def test_large_values_default_to_the_targets_own_compression() -> None:
    """compress by default (the target's own behaviour); as-source only when asked, and it reaches the writers."""
    from ray_replicator.run_record import write_options

    default = load_settings(None, {"source": SRC, "target": DST}, environ={})
    assert default.large_values == "compress"
    assert write_options(default, "r1").large_values_as_source is False
    asked = load_settings(None, {"source": SRC, "target": DST, "large_values": "as-source"}, environ={})
    assert write_options(asked, "r1").large_values_as_source is True


def test_env_nested_endpoint_and_lists() -> None:
    env = {"RAY_REPLICATOR_SOURCE__URL": SRC, "RAY_REPLICATOR_TABLES": "public.a*,b"}
    s = load_settings(None, {}, environ=env)
    assert s.tables == ["public.a*", "b"]
    assert s.source.engine == "postgres"


def test_unknown_field_names_it_and_lists_allowed(tmp_path: Path) -> None:
    cfg = tmp_path / "job.toml"
    cfg.write_text(f'rows_per_rnage = 10\n[source]\nurl = "{SRC}"\n')
    with pytest.raises(UsageError) as exc:
        load_settings(cfg, {}, environ={})
    msg = str(exc.value)
    assert "rows_per_rnage" in msg and "rows_per_range" in msg and "\n" not in msg


def test_bad_literal_lists_allowed_values() -> None:
    with pytest.raises(UsageError) as exc:
        load_settings(None, {"source": SRC, "existing": "overwrite"}, environ={})
    msg = str(exc.value)
    assert "existing" in msg and "'fail'" in msg and "'truncate'" in msg and "'drop'" in msg


def test_bad_url_scheme_is_one_line_without_password() -> None:
    with pytest.raises(UsageError) as exc:
        load_settings(None, {"source": "mysql://root:hunter22@h/db"}, environ={})
    msg = str(exc.value)
    assert "mysql" in msg and "hunter22" not in msg and "source.url" in msg


def test_missing_source_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no source given"):
        load_settings(None, {}, environ={})
    bad = tmp_path / "bad.toml"
    bad.write_text("[source\nurl=1")
    with pytest.raises(UsageError, match="not valid TOML"):
        load_settings(bad, {}, environ={})
    with pytest.raises(UsageError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", {}, environ={})


def test_password_from_env_and_file_never_displayed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DST_PW", "p@ss:w/rd")
    secret_file = tmp_path / "pw"
    secret_file.write_text("filepass\n")
    s = load_settings(
        None,
        {"source": {"url": "postgresql://u@h/db", "password_file": str(secret_file)},
         "target": {"url": DST, "password_env": "DST_PW"}},
        environ={},
    )  # fmt: skip
    assert s.source.resolved_url() == "postgresql://u:filepass@h/db?connect_timeout=30"
    assert s.target_endpoint.resolved_url() == "postgresql://bob:p%40ss%3Aw%2Frd@db2/app?connect_timeout=30"
    assert "filepass" not in s.model_dump_json() and "filepass" not in repr(s)
    assert scrub("failed for postgresql://u:filepass@h/db and filepass", known_secrets(s)).count("filepass") == 0
    monkeypatch.delenv("DST_PW")
    with pytest.raises(UsageError, match="DST_PW"):
        s.target_endpoint.resolved_url()


def test_redact() -> None:
    assert redact_url(SRC) == "postgresql://alice:***@db1:5432/app"
    assert redact_url(DST) == DST
    assert redact_url("mssql://sa@h:1433/db?password=pw1&encrypt=no") == "mssql://sa@h:1433/db?password=***&encrypt=no"


def test_connect_timeout_rides_in_every_resolved_url() -> None:
    """Engines are opened from URLs alone (in Ray workers too): the setting reaches them in the URL, and a URL's
    own connect_timeout wins."""
    s = load_settings(
        None,
        {"source": "postgresql://u:pw@h/db?sslmode=disable", "target": "mssql://sa:pw@h:1433/db?connect_timeout=9"},
        environ={"RAY_REPLICATOR_CONNECT_TIMEOUT_S": "2.5", "RAY_REPLICATOR_STALL_TIMEOUT_S": "7"},
    )
    assert s.stall_timeout_s == 7.0
    assert s.source.resolved_url() == "postgresql://u:pw@h/db?sslmode=disable&connect_timeout=3"
    assert s.target_endpoint.resolved_url() == "mssql://sa:pw@h:1433/db?connect_timeout=9"
    s.connect_timeout_s = 40
    assert s.source.resolved_url() == "postgresql://u:pw@h/db?sslmode=disable&connect_timeout=40"
    with pytest.raises(UsageError, match="stall_timeout_s"):
        load_settings(None, {"source": "postgresql://u@h/db"}, environ={"RAY_REPLICATOR_STALL_TIMEOUT_S": "0"})
