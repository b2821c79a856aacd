"""Start a local Ray the way a run does, print how to find it, then wait to be killed (run as a subprocess)."""

from __future__ import annotations

import json
import os
import sys
import time

import ray

from ray_replicator.local_ray import MARKER_ENV, TOKEN_ENV, ensure_ray


@ray.remote
def pid() -> int:
    return os.getpid()


def main() -> None:
    ensure_ray(None, 1)
    ray.get(pid.remote())  # a worker is up, so its sockets are there too
    node = ray._private.worker._global_node
    print(
        json.dumps(
            {
                "gcs": ray.get_runtime_context().gcs_address,
                "marker": os.environ[MARKER_ENV],
                "token": os.environ[TOKEN_ENV],
                "session_dir": node.get_session_dir_path(),
            }
        ),
        flush=True,
    )
    time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 600)


if __name__ == "__main__":
    main()
