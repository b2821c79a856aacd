"""The cluster and example files parse, and say what the code expects: checked here, no cloud or Kubernetes.

`ray up` and KubeRay are not run on this machine; these tests check what can be checked without them: YAML
syntax, Ray's own cluster-config schema, that every TOML loads through the real config model, that passwords
come from environment variables, and that the Airflow DAG compiles (without importing Airflow).
"""

from __future__ import annotations

import py_compile
from pathlib import Path
from typing import Any

import pytest
import yaml

from ray_replicator.config import load_settings

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "cluster"


def _load_toml(path_or_text: Path | str, tmp_path: Path) -> Any:
    """Through the real config model, with no RAY_REPLICATOR_* overrides from this shell."""
    path = path_or_text if isinstance(path_or_text, Path) else tmp_path / "job.toml"
    if not isinstance(path_or_text, Path):
        path.write_text(path_or_text)
    return load_settings(path, {}, {})


@pytest.fixture
def passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SRC_PASSWORD", "s-pw")
    monkeypatch.setenv("DST_PASSWORD", "d-pw")


def test_ray_up_config_passes_rays_schema() -> None:
    config = yaml.safe_load((CLUSTER / "aws.yaml").read_text())
    assert config["provider"]["type"] == "aws"
    head = config["available_node_types"][config["head_node_type"]]
    assert head["resources"] == {"CPU": 0}, "the head runs the driver, not copy tasks"
    workers = [t for name, t in config["available_node_types"].items() if name != config["head_node_type"]]
    assert any(t.get("resources", {}).get("bulk_dir") == 1 for t in workers)
    assert config["file_mounts"]["~/ray-replicator"] == "."
    assert any("pip install" in c and "~/ray-replicator" in c for c in config["setup_commands"])
    pytest.importorskip("jsonschema")
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(config))


def test_rayjob_manifest_takes_passwords_from_a_secret(tmp_path: Path, passwords: None) -> None:
    docs = list(yaml.safe_load_all((CLUSTER / "rayjob.yaml").read_text()))
    by_kind = {d["kind"]: d for d in docs}
    assert set(by_kind) == {"ConfigMap", "PersistentVolumeClaim", "RayJob"}
    job = by_kind["RayJob"]
    assert job["apiVersion"] == "ray.io/v1"
    entrypoint = job["spec"]["entrypoint"]
    assert entrypoint.startswith("ray-replicator run --config /etc/ray-replicator/job.toml")
    head = job["spec"]["rayClusterSpec"]["headGroupSpec"]
    container = head["template"]["spec"]["containers"][0]
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert set(env) == {"SRC_PASSWORD", "DST_PASSWORD"}
    assert all(ref["name"] == "ray-replicator-db" for ref in env.values())
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert "/etc/ray-replicator" in mounts and "/reports" in mounts

    toml = by_kind["ConfigMap"]["data"]["job.toml"]
    assert "password" not in toml.replace("password_env", "")
    settings = _load_toml(toml, tmp_path)
    assert settings.source.password_env == "SRC_PASSWORD"
    assert settings.target_endpoint.password_env == "DST_PASSWORD"
    assert ":s-pw@" in settings.source.resolved_url()
    assert str(settings.report_path).startswith("/reports/")


def test_example_job_toml_loads_and_reads_passwords_from_env(
    tmp_path: Path, passwords: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _load_toml(CLUSTER / "job.toml", tmp_path)
    assert settings.memory_cap_mb == 128
    assert settings.report_path is not None and settings.report_path.is_absolute()
    assert ":d-pw@" in settings.target_endpoint.resolved_url()
    from ray_replicator.engines.base import UsageError

    monkeypatch.delenv("SRC_PASSWORD")
    with pytest.raises(UsageError, match="SRC_PASSWORD"):
        _load_toml(CLUSTER / "job.toml", tmp_path).source.resolved_url()


def test_airflow_dag_compiles(tmp_path: Path) -> None:
    source = REPO / "examples" / "airflow_dag.py"
    py_compile.compile(str(source), cfile=str(tmp_path / "dag.pyc"), doraise=True)
    text = source.read_text()
    assert "JobSubmissionClient" in text and "from ray_replicator import replicate" in text
