"""The few names that moved between Airflow 2 and Airflow 3, imported once.

Airflow 3 moved the authoring API to ``airflow.sdk`` (``BaseOperator``, ``BaseHook``,
``BaseOperatorLink``, ``Asset``, which replaced ``Dataset``, the timetables) and its exceptions to
``airflow.sdk.exceptions``; Airflow 2.7+ keeps them under
``airflow.models``, ``airflow.hooks.base`` and ``airflow.datasets``. ``CronDataIntervalTimetable`` is here because ``schedule="@hourly"``
means an interval of one hour in Airflow 2 but a point in time in Airflow 3 (whose cron
schedules have data intervals of zero length, which filex rejects as a window).
"""

from __future__ import annotations

try:  # Airflow 3
    from airflow.sdk import Asset as Outlet
    from airflow.sdk import BaseHook, BaseOperator, BaseOperatorLink, CronDataIntervalTimetable

    AIRFLOW_3 = True
except ImportError:  # Airflow 2
    from airflow.datasets import Dataset as Outlet  # type: ignore[no-redef]
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef]
    from airflow.models import BaseOperator, BaseOperatorLink  # type: ignore[no-redef]
    from airflow.timetables.interval import CronDataIntervalTimetable  # type: ignore[no-redef]

    AIRFLOW_3 = False

try:  # Airflow 3 (the names under airflow.exceptions are deprecated aliases there)
    from airflow.sdk.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowNotFoundException,
    )
except ImportError:  # Airflow 2
    from airflow.exceptions import (  # type: ignore[no-redef]
        AirflowException,
        AirflowFailException,
        AirflowNotFoundException,
    )


def xcom_value(ti_key, key: str):  # noqa: ANN001, ANN201
    """The XCom ``key`` of the task instance ``ti_key`` (for operator links)."""
    if AIRFLOW_3:
        from airflow.sdk.execution_time.xcom import XCom
    else:
        from airflow.models import XCom
    return XCom.get_value(ti_key=ti_key, key=key)


__all__ = [
    "AIRFLOW_3",
    "AirflowException",
    "AirflowFailException",
    "AirflowNotFoundException",
    "BaseHook",
    "BaseOperator",
    "BaseOperatorLink",
    "CronDataIntervalTimetable",
    "Outlet",
    "xcom_value",
]
