"""ray-replicator: parallel, exact replication of whole databases on Ray."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ray_replicator.config import Settings
    from ray_replicator.report import RunReport

__all__ = ["replicate"]


def replicate(settings: Settings | dict[str, Any]) -> RunReport:
    """Run a replication from Python (Airflow, Dagster, notebooks) with the same config model as the CLI.

    Returns the report without writing it (report.save(path) does); report_path is the CLI's."""
    from ray_replicator.config import Settings as _Settings
    from ray_replicator.pipeline import replicate as _replicate

    model = settings if isinstance(settings, _Settings) else _Settings.model_validate(settings)
    return _replicate(model, will_save_report=False)
