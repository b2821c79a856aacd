"""A driver whose run fails in its preflight, after its catalog and plan, while its local Ray starts in the
background (run as a subprocess): prints the error and what the driver still knows of that Ray, then waits to be
killed, so its reaper stays idle and whatever Ray process is gone was shut down by the run itself."""

from __future__ import annotations

import json
import os
import sys
import time

import ray

from ray_replicator.config import load_settings
from ray_replicator.engines.base import UsageError
from ray_replicator.local_ray import MARKER_ENV
from ray_replicator.pipeline import replicate


def main() -> None:
    source, target, report = sys.argv[1:4]
    settings = load_settings(None, {"source": source, "target": target, "report_path": report})
    try:
        replicate(settings, will_save_report=True)
        error = ""
    except UsageError as exc:
        error = str(exc)
    print(json.dumps({"error": error, "initialized": ray.is_initialized(), "marker": os.environ.get(MARKER_ENV)}))
    sys.stdout.flush()
    time.sleep(600)


if __name__ == "__main__":
    main()
