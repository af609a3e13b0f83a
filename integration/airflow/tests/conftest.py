"""Test setup: a private AIRFLOW_HOME with a SQLite metadata DB, and the mini cluster.

AIRFLOW_HOME must be set before Airflow is first imported, so it is set here at import time
(scripts/test-schedulers.sh sets it too, under target/). The cluster tests need
`scripts/cluster.sh start` and the filex binary (FILEX_BIN, default target/debug/filex); they
fail, not skip, when the cluster is down, unless FILEX_AIRFLOW_UNIT_ONLY=1.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
PACKAGE = HERE.parent
PROJECT = PACKAGE.parent.parent

if "AIRFLOW_HOME" not in os.environ:
    os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="filex-airflow-home-")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(HERE / "dags")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
os.environ.setdefault("FILEX_BIN", str(PROJECT / "target" / "debug" / "filex"))

import pytest  # noqa: E402


def airflow_cli() -> str:
    return str(pathlib.Path(sys.executable).with_name("airflow"))


def pytest_sessionstart(session: pytest.Session) -> None:
    db = pathlib.Path(os.environ["AIRFLOW_HOME"]) / "airflow.db"
    if not db.exists():
        subprocess.run(
            [airflow_cli(), "db", "migrate"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
