"""Fast tests of FilexSubmitOperator against a stand-in `filex` script (no cluster)."""

from __future__ import annotations

import os
import pathlib
import threading
import time

import pytest
from airflow.exceptions import AirflowException, AirflowFailException
from airflow.models import DagBag

from filex_airflow import FilexSubmitOperator

PACKAGE = pathlib.Path(__file__).resolve().parent.parent

FAKE = r"""#!/bin/sh
# Stand-in for filex: `submit` prints like filex submit, `kill` records its argument.
if [ "$1" = kill ]; then echo "$2" >> "$FAKE_KILLS"; echo "Killed application $2"; exit 0; fi
printf '%s\n' "$@" > "$FAKE_ARGS"
echo "Submitted application application_1700000000000_0001"
echo "Attaching to running application application_1700000000000_0002 of job j"
trap 'echo "filex: interrupted; killing application_1700000000000_0002" >&2; exit 3' TERM
if [ -n "$FAKE_SLEEP" ]; then sleep "$FAKE_SLEEP" >/dev/null 2>&1 & wait $!; fi
echo "application_1700000000000_0002 FINISHED SUCCEEDED in 1.0 s"
echo "diagnostics: timeline: submitted +0.0s"
echo "manifest: hdfs://nn/out/_manifests/j/w.json"
echo "filex: something on stderr" >&2
exit "${FAKE_RC:-0}"
"""


class FakeTI:
    def __init__(self) -> None:
        self.xcom: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.xcom[key] = value


@pytest.fixture
def fake(tmp_path, monkeypatch):
    exe = tmp_path / "filex"
    exe.write_text(FAKE)
    exe.chmod(0o755)
    monkeypatch.setenv("FAKE_ARGS", str(tmp_path / "args"))
    monkeypatch.setenv("FAKE_KILLS", str(tmp_path / "kills"))
    return tmp_path


def operator(fake_dir: pathlib.Path, **kw) -> FilexSubmitOperator:
    return FilexSubmitOperator(
        task_id="fuse",
        job="/jobs/acme.toml",
        window_start="2026-11-05T00:00:00+08:00",
        window_end="2026-11-05T01:00:00+08:00",
        filex_bin=str(fake_dir / "filex"),
        **kw,
    )


def test_command_line():
    op = FilexSubmitOperator(
        task_id="t",
        job="j.toml",
        window_start="S",
        window_end="E",
        settings={"output.gzip_level": 9},
        defines=["filex.workers.max=4"],
        yarn_queue="q",
        yarn_tags=["a", "b"],
        force_new=True,
    )
    assert op.command() == [
        "filex", "submit", "j.toml",
        "--set", "window.start=S", "--set", "window.end=E",
        "--set", "output.gzip_level=9",
        "-D", "filex.workers.max=4",
        "--queue", "q", "--tag", "a", "--tag", "b", "--force-new",
    ]  # fmt: skip
    # The window defaults to the run's data interval.
    default = FilexSubmitOperator(task_id="d", job="j.toml")
    assert "data_interval_start" in default.window_start
    assert "data_interval_end" in default.window_end


def test_success_pushes_the_last_application_id_and_the_manifest(fake):
    ti = FakeTI()
    app = operator(fake).execute({"ti": ti})
    assert app == "application_1700000000000_0002"
    assert ti.xcom == {
        "application_id": "application_1700000000000_0002",
        "manifest": "hdfs://nn/out/_manifests/j/w.json",
    }
    args = (fake / "args").read_text().splitlines()
    assert args[:2] == ["submit", "/jobs/acme.toml"]
    assert "window.start=2026-11-05T00:00:00+08:00" in args


@pytest.mark.parametrize("rc,exc", [(1, AirflowException), (4, AirflowException), (2, AirflowFailException)])
def test_non_zero_exit_fails_the_task(fake, monkeypatch, rc, exc):
    monkeypatch.setenv("FAKE_RC", str(rc))
    with pytest.raises(exc) as err:
        operator(fake).execute({"ti": FakeTI()})
    text = str(err.value)
    assert f"exited with {rc}" in text
    assert "application_1700000000000_0002" in text
    assert "filex: something on stderr" in text, "stderr reaches the message and the log"
    if rc == 2:
        assert isinstance(err.value, AirflowFailException), "no retry for a job-file error"


def test_on_kill_kills_the_application_then_the_client(fake, monkeypatch):
    monkeypatch.setenv("FAKE_SLEEP", "30")
    op = operator(fake)
    killed_at: list[float] = []

    def kill_when_running() -> None:
        deadline = time.monotonic() + 10
        while op.application_id != "application_1700000000000_0002":
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)
        killed_at.append(time.monotonic())
        op.on_kill()

    # execute() runs on the main thread, as in a task; on_kill comes from elsewhere.
    killer = threading.Thread(target=kill_when_running)
    killer.start()
    with pytest.raises(AirflowException, match="exited with 3"):
        op.execute({"ti": FakeTI()})
    killer.join(10)
    assert killed_at, "no application id seen"
    assert time.monotonic() - killed_at[0] < 10
    assert (fake / "kills").read_text().split() == ["application_1700000000000_0002"]


def test_example_and_test_dags_load():
    bag = DagBag(dag_folder=str(PACKAGE / "example_dags"), include_examples=False)
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == ["filex_acme_hourly", "filex_acme_hourly_late"]
    dag = bag.get_dag("filex_acme_hourly")
    assert [t.task_id for t in dag.topological_sort()] == ["wait_for_late_shards", "fuse"]
    it = DagBag(dag_folder=str(PACKAGE / "tests" / "dags"), include_examples=False)
    assert it.import_errors == {}
    assert os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
