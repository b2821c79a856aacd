"""Fault injection for the CLI fault tests, loaded only when tests put this directory on PYTHONPATH (the driver
and every Ray worker it starts inherit it). RR_INJECT=<fault>:<where>:<dir>:

- raise:<Class.method>:-  the method raises ValueError in Ray workers, or in the driver for `driver-raise`
- die:<Class.method>:-  the Ray worker calling the method SIGKILLs itself, as the OOM killer or a lost node would
  end it: every attempt, so Ray's retries are used up however fast a range copies
- driver-raise:<Class.method>:-
- hold:<Class.method>:<dir>  the first call (in any process) creates <dir>/held and waits for <dir>/release, then
  runs the method: the test takes the server down meanwhile and releases the call into the outage.

Methods are on ray_replicator.engines.postgres classes. Nothing here runs unless RR_INJECT is set.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

_SPEC = os.environ.get("RR_INJECT", "")
_MODULE = "ray_replicator.engines.postgres"


def _in_ray_worker() -> bool:
    return any("default_worker.py" in part for part in sys.argv)


def _apply(module: Any) -> None:
    fault, where, folder = _SPEC.split(":", 2)
    cls_name, method = where.split(".")
    cls = getattr(module, cls_name)
    original = getattr(cls, method)

    def raising(*args: Any, **kwargs: Any) -> Any:
        raise ValueError(f"injected fault in {where}")

    def dying(*args: Any, **kwargs: Any) -> Any:
        os.kill(os.getpid(), signal.SIGKILL)

    def holding(*args: Any, **kwargs: Any) -> Any:
        held = Path(folder) / "held"
        try:
            os.close(os.open(held, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return original(*args, **kwargs)
        while not (Path(folder) / "release").exists():
            time.sleep(0.05)
        return original(*args, **kwargs)

    worker = _in_ray_worker()
    if (fault == "raise" and worker) or (fault == "driver-raise" and not worker):
        setattr(cls, method, raising)
    elif fault == "die" and worker:
        setattr(cls, method, dying)
    elif fault == "hold":
        setattr(cls, method, holding)


class _Hook(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != _MODULE:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        loader: Any = spec.loader
        run = loader.exec_module

        def exec_module(module: Any) -> None:
            run(module)
            _apply(module)

        loader.exec_module = exec_module
        return spec


if _SPEC:
    sys.meta_path.insert(0, _Hook())
