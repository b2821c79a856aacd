"""Airflow DAGs that replace a hand-written MSSQL -> PostgreSQL pipeline with ray-replicator.

Two ways, pick one:

- `ray_replicator_job` submits `ray-replicator run` to a Ray cluster with `JobSubmissionClient` and waits for it.
  Airflow workers need only `ray[default]` (no database drivers); the copy runs on the cluster, which must have
  ray-replicator installed (docker/Dockerfile, cluster/aws.yaml, cluster/rayjob.yaml). Passwords come from
  Airflow Connections and reach the job as environment variables read through `password_env`, never on a
  command line; note that Ray shows a job's runtime_env to anyone who can open its dashboard, so keep the
  dashboard private (token auth, no public port) or set the variables on the head node instead.
- `ray_replicator_in_process` calls `ray_replicator.replicate(...)` inside the Airflow task: the task's process is
  the Ray driver (local Ray on the Airflow worker, or a cluster given by RAY_ADDRESS). Simpler, but the Airflow
  worker then needs ray-replicator, its drivers and the CPU.

Both fail the Airflow task when the copy or its verification fails, and push the run report to XCom.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.decorators import dag, task
from airflow.exceptions import AirflowException
from airflow.hooks.base import BaseHook

RAY_DASHBOARD = "http://ray-head.internal:8265"
SOURCE = "mssql://replicator@sqlserver.internal:1433/StackOverflow2010?encrypt=yes"
TARGET = "postgresql://replicator@postgres.internal:5432/stackoverflow"
SOURCE_CONN_ID = "so2010_mssql"
TARGET_CONN_ID = "warehouse_postgres"
JOB_TIMEOUT = timedelta(hours=4)

JOB_TOML = f"""
tables = ["dbo.*"]
schema_map = {{ dbo = "public" }}
existing = "truncate"
verify = "checksums"
report_path = "report.json"

[source]
url = "{SOURCE}"
password_env = "SRC_PASSWORD"

[target]
url = "{TARGET}"
password_env = "DST_PASSWORD"
"""


def _on_demand_dag(dag_id: str) -> Any:
    """Both DAGs run when triggered, one run at a time, never backfilled."""
    return dag(
        dag_id=dag_id,
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        tags=["ray-replicator"],
    )


def _passwords() -> dict[str, str]:
    return {
        "SRC_PASSWORD": BaseHook.get_connection(SOURCE_CONN_ID).password or "",
        "DST_PASSWORD": BaseHook.get_connection(TARGET_CONN_ID).password or "",
    }


@_on_demand_dag("ray_replicator_job")
def ray_replicator_job() -> None:
    @task(execution_timeout=JOB_TIMEOUT + timedelta(minutes=10))
    def replicate_on_ray_cluster() -> dict[str, Any]:
        import tempfile

        from ray.job_submission import JobStatus, JobSubmissionClient

        # RAY_AUTH_TOKEN must be set for the Airflow worker when the cluster uses token auth.
        client = JobSubmissionClient(RAY_DASHBOARD)
        with tempfile.TemporaryDirectory() as workdir:
            Path(workdir, "job.toml").write_text(JOB_TOML)
            job_id = client.submit_job(
                entrypoint="ray-replicator run --config job.toml --json-logs && cat report.json",
                runtime_env={"working_dir": workdir, "env_vars": _passwords()},
                metadata={"airflow_dag": "ray_replicator_job"},
            )
        deadline = time.monotonic() + JOB_TIMEOUT.total_seconds()
        status = client.get_job_status(job_id)
        while status not in {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED}:
            if time.monotonic() > deadline:
                client.stop_job(job_id)
                raise AirflowException(f"Ray job {job_id} did not finish within {JOB_TIMEOUT}; stopped it")
            time.sleep(15)
            status = client.get_job_status(job_id)
        logs = client.get_job_logs(job_id)
        print(logs[-20000:])
        if status != JobStatus.SUCCEEDED:
            raise AirflowException(f"Ray job {job_id} ended {status}; its log is above")
        report_start = logs.rfind('{\n  "run_id"')
        return json.loads(logs[report_start:]) if report_start >= 0 else {"job_id": job_id}

    replicate_on_ray_cluster()


@_on_demand_dag("ray_replicator_in_process")
def ray_replicator_in_process() -> None:
    @task(execution_timeout=JOB_TIMEOUT)
    def replicate_here() -> dict[str, Any]:
        import os

        from ray_replicator import replicate

        os.environ.update(_passwords())
        report = replicate(
            {
                "source": {"url": SOURCE, "password_env": "SRC_PASSWORD"},
                "target": {"url": TARGET, "password_env": "DST_PASSWORD"},
                "tables": ["dbo.*"],
                "schema_map": {"dbo": "public"},
                "existing": "truncate",
                "verify": "checksums",
                "report_path": None,
            }
        )
        if report.status != "ok":
            raise AirflowException(f"ray-replicator: {report.status}: {'; '.join(report.errors)[:2000]}")
        return report.to_json()

    replicate_here()


ray_replicator_job()
ray_replicator_in_process()
