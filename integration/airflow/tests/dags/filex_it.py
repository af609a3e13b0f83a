"""DAG used by the cluster tests: one filex operator, configured from the environment.

FILEX_IT_DAG_ID      dag id (one per test, so runs do not replace each other)
FILEX_IT_JOB         job file; FILEX_IT_SET: extra `--set` pairs, one per line
FILEX_IT_OPERATOR    `submit` (FilexSubmitOperator, default) or `run` (FilexRunOperator)
FILEX_IT_DEFERRABLE  `1`: FilexSubmitOperator(deferrable=True), polling every second
FILEX_IT_OUTLET      `OUTPUT_ROOT JOB_NAME`: the job's manifests as the task's outlet
FILEX_IT_FULL        `1`: full=True (recompute the window even where an earlier run left it)
FILEX_BIN            the filex binary; HADOOP_CONF_DIR reaches filex through the environment
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow import DAG

from filex_airflow import FilexRunOperator, FilexSubmitOperator, filex_manifest_outlet
from filex_airflow.compat import CronDataIntervalTimetable

outlet = os.environ.get("FILEX_IT_OUTLET", "").split()
common = dict(
    task_id="fuse",
    job=os.environ.get("FILEX_IT_JOB", "/nonexistent/job.toml"),
    settings=[s for s in os.environ.get("FILEX_IT_SET", "").splitlines() if s],
    filex_bin=os.environ.get("FILEX_BIN", "filex"),
    kill_timeout=60,
    full=os.environ.get("FILEX_IT_FULL") == "1",
    outlets=[filex_manifest_outlet(*outlet)] if outlet else [],
)

with DAG(
    dag_id=os.environ.get("FILEX_IT_DAG_ID", "filex_it"),
    # Hourly data intervals in Airflow 2 and 3 alike (3's "@hourly" has none).
    schedule=CronDataIntervalTimetable("@hourly", timezone="UTC"),
    start_date=pendulum.datetime(2026, 9, 1, tz="UTC"),
    catchup=False,
    default_args={"retries": 0, "execution_timeout": timedelta(minutes=10)},
) as dag:
    if os.environ.get("FILEX_IT_OPERATOR", "submit") == "run":
        FilexRunOperator(threads=2, memory="256M", **common)
    else:
        FilexSubmitOperator(
            defines={"filex.workers.max": 2, "filex.worker.memory-mb": 512},
            deferrable=os.environ.get("FILEX_IT_DEFERRABLE") == "1",
            poll_interval=1.0,
            **common,
        )
