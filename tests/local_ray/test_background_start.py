"""A run starts its local Ray in the background while it reads the catalog and plans (local_ray.RayStart): the
workers import the copy path before the first range, a named cluster is joined as before, and a run that fails
before it needs Ray shuts that Ray down and still ends with its one line and exit code."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import psycopg
import pytest

from ray_replicator import local_ray
from ray_replicator.engines.base import EngineError
from ray_replicator.reaper import marked_pids
from tests.helpers import assert_one_line_error
from tests.local_ray.test_local_ray import ROOT, clean_env, running

HERE = Path(__file__).parent


def _ray_processes(pids: set[int]) -> dict[int, str]:
    found = {}
    for pid in pids:
        try:
            found[pid] = psutil.Process(pid).name()
        except psutil.NoSuchProcess:
            continue
    return found


def test_starts_local_only_without_a_named_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert local_ray.starts_local(None)
    assert not local_ray.starts_local("127.0.0.1:6379")
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6379")
    assert not local_ray.starts_local(None)
    monkeypatch.delenv("RAY_ADDRESS")
    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    assert not local_ray.starts_local(None)


def test_a_background_start_that_fails_is_one_line_when_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(num_cpus: int | None) -> None:
        raise RuntimeError("no space left for the object store\nand more detail")

    monkeypatch.setattr(local_ray, "_private_environment", lambda: "marker")
    monkeypatch.setattr(local_ray, "_start_reaper", lambda marker: None)
    monkeypatch.setattr(local_ray, "_init_local", refused)
    start = local_ray.RayStart(1, ["ray_replicator.copy"])
    with pytest.raises(EngineError) as failed:
        start.wait()
    assert str(failed.value) == (
        "cannot reach Ray at a local Ray instance: no space left for the object store; start it with "
        "`ray start --head` or unset RAY_ADDRESS to run locally"
    )
    start.cancel()  # nothing to shut down


def test_background_start_warms_a_worker_and_outlives_its_wait() -> None:
    done = subprocess.run(
        [sys.executable, str(HERE / "warm_start.py")],
        capture_output=True,
        text=True,
        env=clean_env(PYTHONPATH=str(ROOT)),
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.splitlines()[-1])
    assert got["pid"] in got["warmed"]  # the later task ran in a warmed worker
    assert got["modules"] == ["ray_replicator.copy", "ray_replicator.engines.postgres"]
    assert "ray-start" in got["threads"]
    assert "SIGTERM handler is not set" not in done.stderr


@pytest.mark.parametrize(
    ("tables", "error", "ray_started"),
    [(0, "the source database ", False), (1, "cannot write the report to ", True)],
    ids=["filters-before-ray", "preflight-after-plan"],
)
def test_a_run_failing_before_the_copy_leaves_no_ray(
    make_database: Callable[[str], str], tmp_path: Path, tables: int, error: str, ray_started: bool
) -> None:
    """A source without tables fails in the filters, before any Ray starts; a report path that cannot be written
    fails after the plan, while Ray starts: the run shuts that Ray down itself (the driver stays alive, so its
    reaper does nothing)."""
    source, target = make_database("bg_src"), make_database("bg_dst")
    with psycopg.connect(source, autocommit=True) as conn:
        for i in range(tables):
            conn.execute(f"CREATE TABLE t{i} (id int PRIMARY KEY)")
    (tmp_path / "a_file").write_text("")
    driver = subprocess.Popen(
        [sys.executable, str(HERE / "failed_preflight.py"), source, target, str(tmp_path / "a_file" / "r.json")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(PYTHONPATH=str(ROOT)),
        cwd=ROOT,
    )
    try:
        assert driver.stdout is not None
        line = driver.stdout.readline()
        assert line, driver.stderr.read() if driver.stderr else ""
        got = json.loads(line)
        assert got["error"].startswith(error), got
        assert not got["initialized"]
        assert bool(got["marker"]) == ray_started, got
        deadline = time.monotonic() + 30
        while got["marker"] and (left := _ray_processes(set(marked_pids(got["marker"])))):
            assert driver.poll() is None and time.monotonic() < deadline, left
            time.sleep(0.5)
    finally:
        driver.kill()
        driver.communicate()


def test_cli_failing_before_the_copy_exits_with_its_line_and_leaves_no_ray(
    make_database: Callable[[str], str], tmp_path: Path
) -> None:
    source, target = make_database("bg_cli_src"), make_database("bg_cli_dst")
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
    (tmp_path / "a_file").write_text("")
    report = str(tmp_path / "a_file" / "r.json")
    run = subprocess.Popen(
        [sys.executable, "-m", "ray_replicator", "run", "--source", source, "--target", target, "--report", report],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
        cwd=ROOT,
    )
    ray_pids: set[int] = set()
    names: set[str] = set()
    while run.poll() is None:
        try:
            children = {p.pid for p in psutil.Process(run.pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            break
        ray_pids |= children
        names |= set(_ray_processes(children).values())
        time.sleep(0.1)
    out, err = run.communicate()
    done = subprocess.CompletedProcess(run.args, run.returncode, out, err)
    assert_one_line_error(done, 2, "cannot write the report to")
    assert "gcs_server" in names, names  # Ray was starting while the run read its catalog and planned
    deadline = time.monotonic() + 30
    while alive := [p for p in ray_pids if running(p)]:
        assert time.monotonic() < deadline, _ray_processes(set(alive))
        time.sleep(0.5)
