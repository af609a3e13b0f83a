"""Hourly fusion of one customer's CDN logs on YARN with filex.

Two DAGs over the same job file:

* ``filex_acme_hourly``: every hour, wait 90 minutes after the hour ends (most vendors have
  delivered by then: UpYun ~1 h), then fuse that hour. Retries and backfills of an hour are
  safe: filex re-attaches to a still-running application of that window, or replaces the
  hour's output with the same bytes.
* ``filex_acme_hourly_late``: the same hours again 26 hours later, for the vendors that
  deliver late (Aliyun, CloudFront: up to 24 h). The re-run replaces each hour's files and
  manifest; nothing is duplicated.

Deploy: ``pip install filex-airflow`` (integration/airflow) on the workers, put the ``filex``
binary on their PATH, and point FILEX_ACME_JOB at the job file and HADOOP_CONF_DIR at the
cluster's configuration.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow import DAG

try:  # Airflow 3 (apache-airflow-providers-standard)
    from airflow.providers.standard.sensors.time_delta import TimeDeltaSensor
except ImportError:  # Airflow 2
    from airflow.sensors.time_delta import TimeDeltaSensor

from filex_airflow import FilexSubmitOperator

JOB = os.environ.get("FILEX_ACME_JOB", "/etc/filex/jobs/acme-hourly.toml")
FILEX = os.environ.get("FILEX_BIN", "filex")
HADOOP_ENV = {"HADOOP_CONF_DIR": os.environ.get("HADOOP_CONF_DIR", "/etc/hadoop/conf")}

DEFAULT_ARGS = {
    "owner": "cdn-logs",
    # exit 1 (job failed) and 4 (cluster unreachable) are retried; exit 2 (job file) is not.
    "retries": 3,
    "retry_delay": timedelta(minutes=10),
    # A stuck hour is killed (on_kill → filex kill) and retried.
    "execution_timeout": timedelta(hours=1),
}


def fusion_dag(dag_id: str, wait: timedelta, description: str) -> DAG:
    with DAG(
        dag_id=dag_id,
        description=description,
        schedule="@hourly",
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
            yarn_queue="fusion",
            yarn_tags=["customer:acme"],
            defines={"filex.workers.max": 16},
            filex_bin=FILEX,
            env=HADOOP_ENV,
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
