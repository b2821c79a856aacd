"""Start a local Ray in the background as a run does (RayStart), wait for it, then report which worker ran the
warm-up and what a later task finds imported there (run as a subprocess)."""

from __future__ import annotations

import json
import os
import sys
import threading
import time

import ray

from ray_replicator.local_ray import RayStart

MODULES = ["ray_replicator.copy", "ray_replicator.engines.postgres"]


@ray.remote(num_cpus=1)
def imported() -> tuple[int, list[str]]:
    return os.getpid(), [name for name in MODULES if name in sys.modules]


def main() -> None:
    start = RayStart(1, MODULES)
    warmed = ray.get(start.wait())
    time.sleep(2)  # Ray's processes die with the thread that started them, were it to end
    pid, modules = ray.get(imported.remote())
    threads = [t.name for t in threading.enumerate()]
    print(json.dumps({"warmed": warmed, "pid": pid, "modules": modules, "threads": threads}))
    ray.shutdown()


if __name__ == "__main__":
    main()
