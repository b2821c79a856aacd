"""One ray-replicator run on the clock, as every benchmark that times ours does it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ray_replicator.config import Settings

if TYPE_CHECKING:
    from ray_replicator.report import RunReport


def timed_replicate(settings: dict[str, Any]) -> tuple[RunReport, float]:
    """Validate the settings, then run the replication; returns its report and the seconds it took (the
    validation is not timed)."""
    from ray_replicator.pipeline import replicate

    validated = Settings.model_validate(settings)
    started = time.perf_counter()
    report = replicate(validated)
    return report, time.perf_counter() - started
