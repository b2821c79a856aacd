"""docker/: what can be checked on a machine without a Docker engine.

Checked: `docker-compose config` accepts the file with the example .env; the start order waits for SQL Server
logins; only loopback ports are published; the job TOMLs load through the real config model; the SQL Server
helper scripts work (sqlcmd.sh against a stand-in `sqlcmd`, fix-ownership.sh on temporary files); the Makefile
target runs the job and prints the report; and the image's install step (`pip install .` of exactly the files
the Dockerfile copies) yields a working `ray-replicator` command outside the source tree.
Not run here: building the image, pulling SQL Server/PostgreSQL/Ray images, attaching the real .mdf/.ldf.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest
import yaml

from ray_replicator.config import load_settings

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
COMPOSE = shutil.which("docker-compose")


@pytest.fixture(scope="module")
def compose_config() -> dict[str, Any]:
    if COMPOSE is None:
        pytest.skip("docker-compose is not installed (Debian package `docker-compose`)")
    done = subprocess.run(
        [COMPOSE, "--env-file", str(DOCKER / ".env.example"), "-f", str(DOCKER / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=DOCKER,
    )
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    return config


def test_compose_config_is_valid(compose_config: dict[str, Any]) -> None:
    services = compose_config["services"]
    assert {
        "fix-ownership",
        "mssql-source",
        "mssql-attach",
        "mssql-target",
        "mssql-target-init",
        "postgres-target",
        "ray-head",
        "ray-worker",
        "so2010-pg",
        "so2010-mssql",
    } <= set(services)


def test_nothing_talks_to_sql_server_before_it_accepts_logins(compose_config: dict[str, Any]) -> None:
    services = compose_config["services"]
    for name in ("mssql-source", "mssql-target"):
        probe = " ".join(services[name]["healthcheck"]["test"])
        assert "sqlcmd -C" in probe and "SELECT 1" in probe, name
    assert services["mssql-source"]["depends_on"]["fix-ownership"]["condition"] == "service_completed_successfully"
    assert services["mssql-attach"]["depends_on"]["mssql-source"]["condition"] == "service_healthy"
    assert services["mssql-target-init"]["depends_on"]["mssql-target"]["condition"] == "service_healthy"
    head_deps = services["ray-head"]["depends_on"]
    assert head_deps["mssql-attach"]["condition"] == "service_completed_successfully"
    assert head_deps["mssql-target-init"]["condition"] == "service_completed_successfully"
    assert head_deps["postgres-target"]["condition"] == "service_healthy"
    assert services["ray-worker"]["depends_on"]["ray-head"]["condition"] == "service_healthy"


def test_attach_fixes_ownership_and_attaches() -> None:
    fix = (DOCKER / "mssql" / "fix-ownership.sh").read_text()
    assert "chown 10001:0" in fix
    attach = (DOCKER / "mssql" / "attach-so2010.sql").read_text()
    assert re.search(r"CREATE DATABASE \[StackOverflow2010\]\s+ON \(FILENAME = N'\$\(MDF\)'\)", attach)
    assert "FOR ATTACH" in attach


def test_sqlcmd_waits_for_logins_then_runs_the_file(tmp_path: Path) -> None:
    """docker/mssql/sqlcmd.sh with a stand-in sqlcmd that refuses logins twice, then accepts."""
    calls = tmp_path / "calls"
    stub = tmp_path / "sqlcmd"
    stub.write_text(
        "#!/bin/bash\n"
        f'echo "$*" >> {calls}\n'
        f'if [[ "$*" == *"SELECT 1"* ]] && [ "$(grep -c "SELECT 1" {calls})" -le 2 ]; then exit 1; fi\n'
    )
    stub.chmod(0o755)
    env = dict(os.environ, SQLCMD=str(stub), TRIES="5", WAIT="0", MSSQL_SA_PASSWORD="pw")
    script = DOCKER / "mssql" / "sqlcmd.sh"
    args = [str(script), "db1", "/scripts/attach-so2010.sql", "-v", "MDF=/so2010/a.mdf", "LDF=/so2010/a.ldf"]
    done = subprocess.run(["bash", *args], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    lines = calls.read_text().splitlines()
    assert len(lines) == 4 and all("-C -S db1 -U sa -P pw" in line for line in lines)
    assert lines[-1].endswith("-b -i /scripts/attach-so2010.sql -v MDF=/so2010/a.mdf LDF=/so2010/a.ldf")

    stub.write_text("#!/bin/bash\nexit 1\n")
    done = subprocess.run(["bash", *args], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1 and "did not accept logins" in done.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to uid 10001 needs root (CI and this box run as root)")
def test_fix_ownership_gives_the_data_files_to_sql_server(tmp_path: Path) -> None:
    data, bulk = tmp_path / "so2010", tmp_path / "bulk"
    data.mkdir()
    env = dict(os.environ, SO2010=str(data), BULK=str(bulk))
    script = str(DOCKER / "mssql" / "fix-ownership.sh")
    done = subprocess.run(["sh", script], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1 and "no .mdf/.ldf" in done.stderr
    for name in ("StackOverflow2010.mdf", "StackOverflow2010_log.ldf"):
        (data / name).write_bytes(b"x")
        (data / name).chmod(0o600)
    done = subprocess.run(["sh", script], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    for name in ("StackOverflow2010.mdf", "StackOverflow2010_log.ldf"):
        st = (data / name).stat()
        assert (st.st_uid, st.st_mode & 0o777) == (10001, 0o660)
    assert bulk.stat().st_mode & 0o7777 == 0o1777


def test_only_loopback_ports_and_shared_bulk_dir(compose_config: dict[str, Any]) -> None:
    services = compose_config["services"]
    for name, service in services.items():
        for port in service.get("ports", []):
            published = port if isinstance(port, str) else f"{port.get('host_ip', '')}:{port.get('published')}"
            assert published.startswith("127.0.0.1:"), (name, port)
    worker = services["ray-worker"]
    assert '--resources={"bulk_dir": 1}' in worker["command"]
    mounts = {str(v).split(":")[-2] if isinstance(v, str) else v["target"] for v in worker["volumes"]}
    target_mounts = {
        str(v).split(":")[-2] if isinstance(v, str) else v["target"] for v in services["mssql-target"]["volumes"]
    }
    assert "/bulk" in mounts and "/bulk" in target_mounts


@pytest.mark.parametrize("job", ["so2010-pg.toml", "so2010-mssql.toml"])
def test_job_configs_load(job: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SRC_PASSWORD", "PG_PASSWORD", "MSSQL_TARGET_PASSWORD"):
        monkeypatch.setenv(name, "pw-" + name.lower())
    settings = load_settings(DOCKER / "jobs" / job, {}, {})
    assert settings.report_path is not None and str(settings.report_path).startswith("/reports/")
    from ray_replicator.engines.mssql import parse_url

    source = parse_url(settings.source.resolved_url())
    assert (source.host, source.database, source.password) == ("mssql-source", "StackOverflow2010", "pw-src_password")
    if settings.target_endpoint.engine == "mssql":
        target = parse_url(settings.target_endpoint.resolved_url())
        assert (target.writer, target.bulk_dir, target.server_bulk_dir) == ("bulk-insert", "/bulk", "/bulk")


def test_makefile_runs_the_job_and_prints_the_report() -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    done = subprocess.run(["make", "-n", "-C", str(DOCKER), "so2010-pg"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "run --rm so2010-pg" in done.stdout
    assert "cat /reports/so2010-pg.md" in done.stdout


def _dockerfile_copies() -> list[str]:
    """The source paths of the Dockerfile's COPY lines (what the image installs from)."""
    paths: list[str] = []
    for line in (DOCKER / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            parts = [p for p in line.split()[1:] if not p.startswith("--")]
            paths.extend(parts[:-1])
    return paths


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_image_install_step_gives_a_working_command(tmp_path: Path) -> None:
    """`pip install .` of the Dockerfile's COPY set, in a plain venv, run from outside the source tree."""
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert re.search(r"FROM rayproject/ray:\$\{RAY_VERSION\}-py311", dockerfile)
    context = tmp_path / "context"
    context.mkdir()
    copies = _dockerfile_copies()
    assert {"pyproject.toml", "ray_replicator"} <= set(copies)
    assert "mssql_standin" not in copies  # the stand-in is its own distribution, not part of the image
    for rel in copies:
        src = REPO / rel
        if src.is_dir():
            shutil.copytree(src, context / rel, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, context / rel)
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(context)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if build.returncode != 0 and re.search(r"(?i)connection|resolve|No matching distribution", build.stderr):
        pytest.skip(f"pip cannot fetch the build backend (setuptools, wheel): {build.stderr.strip()[-300:]}")
    assert build.returncode == 0, build.stderr
    wheel = next(wheels.glob("ray_replicator-*.whl"))

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    vpy = venv / "bin" / "python"
    site = subprocess.run(
        [str(vpy), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # The dependencies come from this test's environment; only ray-replicator itself is installed fresh.
    Path(site, "outer-env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(vpy), "install", "-q", "--no-deps", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr
    command = venv / "bin" / "ray-replicator"
    assert command.exists()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(
        [str(command), "run", "--help"], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env
    )
    assert done.returncode == 0, done.stderr
    assert "--json-logs" in done.stdout
    where = subprocess.run(
        [str(vpy), "-c", "import ray_replicator; print(ray_replicator.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert where.stdout.startswith(site), where.stdout + where.stderr
