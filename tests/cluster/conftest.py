"""The two-node loopback Ray cluster fixture; the harness itself lives in raycluster.py."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.raycluster import LocalRayCluster


@pytest.fixture
def ray_cluster() -> Iterator[LocalRayCluster]:
    ray_bin = Path(sys.executable).parent / "ray"
    if not ray_bin.exists():
        pytest.skip(f"no `ray` command beside {sys.executable}")
    try:
        import aiohttp  # noqa: F401
        import ray.dashboard  # noqa: F401 - ray[default] brings the dashboard and job server
    except ImportError:
        pytest.skip("ray[default] (dashboard, job submission) is not installed")
    # Two tries: a port found free can be taken by another process before Ray binds it.
    for attempt in (1, 2):
        # Short on purpose: Ray puts unix sockets under it, and socket paths are limited to 107 bytes.
        temp_dir = Path(tempfile.mkdtemp(prefix="rr-ray-", dir="/tmp"))
        cluster = LocalRayCluster(ray_bin=ray_bin, temp_dir=temp_dir)
        try:
            cluster.start()
        except RuntimeError:
            cluster.stop()
            shutil.rmtree(temp_dir, ignore_errors=True)
            if attempt == 2:
                raise
            continue
        try:
            yield cluster
        finally:
            cluster.stop()
            shutil.rmtree(temp_dir, ignore_errors=True)
        return
