"""Hourly fusion of one customer's CDN logs on YARN with filex.

Two DAGs over the same job file:

* ``filex_acme_hourly``: every hour, wait 90 minutes after the hour ends (most vendors have
  delivered by then: UpYun ~1 h), then fuse that hour. Retries and backfills of an hour are
  safe: filex re-attaches to a still-running application of that window, or replaces the
  hour's output with the same bytes.
* ``filex_acme_hourly_late``: the same hours again 26 hours later, for the vendors that
  deliver late (Aliyun, CloudFront: up to 24 h). The re-run replaces each hour's files and
  manifest; nothing is duplicated.

The fusion is deferrable: ``filex submit --detach``, then the triggerer polls the application,
so an hour on YARN holds no worker slot. Both DAGs name the job's manifests as their outlet
(``<output root>/_manifests/acme-hourly``): a DAG with ``schedule=[ACME_MANIFESTS]`` runs
after each published hour, and its triggering event's ``extra["manifest"]`` names the hour.

Deploy: ``pip install filex-airflow`` (integration/airflow) on the workers and the triggerer,
put the ``filex`` binary there, create the ``filex_default`` connection (type ``filex``:
binary, Hadoop conf dir, queue), point FILEX_ACME_JOB at the job file and
FILEX_ACME_OUTPUT_ROOT at its ``[output] root``.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow import DAG

try:  # Airflow 3 (apache-airflow-providers-standard)
    from airflow.providers.standard.sensors.time_delta import TimeDeltaSensor
    from airflow.sdk import CronDataIntervalTimetable
except ImportError:  # Airflow 2
    from airflow.sensors.time_delta import TimeDeltaSensor
    from airflow.timetables.interval import CronDataIntervalTimetable

from filex_airflow import FilexSubmitOperator, filex_manifest_outlet

JOB = os.environ.get("FILEX_ACME_JOB", "/etc/filex/jobs/acme-hourly.toml")
OUTPUT_ROOT = os.environ.get("FILEX_ACME_OUTPUT_ROOT", "hdfs://namenode:8020/fused/acme")
#: The job's manifests (its name is `acme-hourly`), for data-aware DAGs downstream.
ACME_MANIFESTS = filex_manifest_outlet(OUTPUT_ROOT, "acme-hourly")

DEFAULT_ARGS = {
    "owner": "cdn-logs",
    # exit 1 (job failed) and 4 (cluster unreachable) are retried; exit 2 (job file) is not.
    "retries": 3,
    "retry_delay": timedelta(minutes=10),
    # A stuck hour fails after an hour and is retried. Deferred, the timeout ends the wait,
    # not the application: the retry re-attaches to it (filex kill ends it for good).
    "execution_timeout": timedelta(hours=1),
}


def fusion_dag(dag_id: str, wait: timedelta, description: str) -> DAG:
    with DAG(
        dag_id=dag_id,
        description=description,
        # One-hour data intervals: Airflow 3's "@hourly" has none (a point in time).
        schedule=CronDataIntervalTimetable("@hourly", timezone="UTC"),
        start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
        catchup=True,
        max_active_runs=4,
        default_args=DEFAULT_ARGS,
        tags=["filex", "customer:acme"],
    ) as dag:
        wait_for_shards = TimeDeltaSensor(
            task_id="wait_for_late_shards",
            delta=wait,
            mode="reschedule",
            poke_interval=300,
            timeout=wait + timedelta(hours=6),
        )
        fuse = FilexSubmitOperator(
            task_id="fuse",
            job=JOB,
            # The window is the run's data interval [start, end): one hour.
            # Binary, Hadoop conf dir and default queue: the filex_default connection.
            yarn_queue="fusion",
            yarn_tags=["customer:acme"],
            defines={"filex.workers.max": 16},
            deferrable=True,
            poll_interval=30,
            outlets=[ACME_MANIFESTS],
        )
        wait_for_shards >> fuse
    return dag


hourly = fusion_dag(
    "filex_acme_hourly",
    timedelta(minutes=90),
    "acme: fuse each hour 90 minutes after it ends",
)
late = fusion_dag(
    "filex_acme_hourly_late",
    timedelta(hours=26),
    "acme: fuse each hour again after 26 hours, with the late vendors' shards",
)
