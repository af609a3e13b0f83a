"""Fast tests of the operators, the hook, the trigger and the provider info against a stand-in
`filex` script (no cluster), in the Airflow of the venv (2.10 or 3)."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import threading
import time

import pytest
from airflow.exceptions import TaskDeferred

from filex_airflow import (
    FilexApplicationTrigger,
    FilexHook,
    FilexRunOperator,
    FilexSubmitOperator,
    FilexTrackingLink,
    filex_manifest_outlet,
)
from filex_airflow.compat import AirflowException, AirflowFailException
from filex_airflow.connection import FilexConnection
from filex_airflow.provider import get_provider_info

PACKAGE = pathlib.Path(__file__).resolve().parent.parent

FAKE = r"""#!/bin/sh
# Stand-in for filex: `submit` and `run` print like filex, `kill` records its argument,
# `status ID --json` reports RUNNING on the first call, then $FAKE_STATE/$FAKE_FINAL.
if [ "$1" = kill ]; then echo "$2" >> "$FAKE_KILLS"; echo "Killed application $2"; exit 0; fi
if [ "$1" = status ]; then
  printf '%s\n' "$@" > "$FAKE_ARGS"
  n=$(($(cat "$FAKE_POLLS" 2>/dev/null || echo 0) + 1)); echo "$n" > "$FAKE_POLLS"
  if [ -n "$FAKE_STATUS_RC" ] && [ "$n" -le "${FAKE_STATUS_FAILS:-99}" ]; then
    echo "filex: status failed" >&2; exit "$FAKE_STATUS_RC"; fi
  state=RUNNING final=UNDEFINED
  if [ "$n" -ge 2 ]; then state="${FAKE_STATE:-FINISHED}" final="${FAKE_FINAL:-SUCCEEDED}"; fi
  printf '{"application_id": "%s", "state": "%s", "final_status": "%s", "progress": 1.0,
    "tracking_url": "http://rm:8088/cluster/app/%s",
    "diagnostics": "timeline: submitted +0.0s\\nmanifest: hdfs://nn/out/_manifests/j/w.json"}\n' \
    "$2" "$state" "$final" "$2"
  exit 0
fi
printf '%s\n' "$@" > "$FAKE_ARGS"
if [ "$1" = run ]; then
  echo "job: $2"; echo "manifest: file:///out/_manifests/j/w.json"; exit "${FAKE_RC:-0}"
fi
echo "Submitted application application_1700000000000_0001"
echo "Attaching to running application application_1700000000000_0002 of job j"
echo "    0.4 s  application_1700000000000_0002 RUNNING  tracking URL: http://rm:8088/proxy/application_1700000000000_0002/"
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
    monkeypatch.setenv("FAKE_POLLS", str(tmp_path / "polls"))
    return tmp_path


def operator(fake_dir: pathlib.Path, cls=FilexSubmitOperator, **kw):
    kw.setdefault("filex_conn_id", None)
    return cls(
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
    # full=True recomputes the whole window, for run and submit alike.
    assert FilexSubmitOperator(task_id="f", job="j.toml", full=True).command().count("--full") == 1
    assert FilexRunOperator(task_id="r", job="j.toml", full=True).command().count("--full") == 1
    assert "--full" not in FilexRunOperator(task_id="n", job="j.toml").command()
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
        "tracking_url": "http://rm:8088/proxy/application_1700000000000_0002/",
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


def dag_bag(folder: pathlib.Path):
    try:  # Airflow 3
        from airflow.dag_processing.dagbag import DagBag

        return DagBag(dag_folder=str(folder))
    except ImportError:  # Airflow 2
        from airflow.models import DagBag

        return DagBag(dag_folder=str(folder), include_examples=False)


def test_example_and_test_dags_load():
    bag = dag_bag(PACKAGE / "example_dags")
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == ["filex_acme_hourly", "filex_acme_hourly_late"]
    dag = bag.get_dag("filex_acme_hourly")
    assert [t.task_id for t in dag.topological_sort()] == ["wait_for_late_shards", "fuse"]
    it = dag_bag(PACKAGE / "tests" / "dags")
    assert it.import_errors == {}
    assert os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"


# --- the hook and the connection type -------------------------------------------------------


def test_the_hook_reads_a_filex_connection(monkeypatch):
    extra = {"binary": "/opt/filex", "conf_dir": "/etc/hc", "queue": "fusion",
             "principal": "filex@EXAMPLE.COM", "keytab": "/k/filex.keytab"}  # fmt: skip
    monkeypatch.setenv(
        "AIRFLOW_CONN_FILEX_TEST", json.dumps({"conn_type": "filex", "extra": extra})
    )
    conn = FilexHook(filex_conn_id="filex_test").get_conn()
    assert conn == FilexConnection(**extra)
    op = FilexSubmitOperator(task_id="t", job="j.toml", window_start="S", window_end="E",
                             filex_conn_id="filex_test")  # fmt: skip
    argv = op.command(op.connection())
    assert argv[0] == "/opt/filex"
    assert argv[argv.index("--queue") + 1] == "fusion"
    assert argv[argv.index("--conf-dir") + 1] == "/etc/hc"
    assert not {"filex@EXAMPLE.COM", "/k/filex.keytab"} & set(argv), "filex has no Kerberos flags"
    # What the task says wins over the connection.
    op = FilexSubmitOperator(task_id="t", job="j.toml", filex_conn_id="filex_test",
                             yarn_queue="adhoc", filex_bin="/bin/filex2")  # fmt: skip
    argv = op.command(op.connection())
    assert argv[0] == "/bin/filex2" and argv[argv.index("--queue") + 1] == "adhoc"


def test_a_missing_default_connection_means_filex_defaults_but_another_must_exist(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_FILEX_DEFAULT", raising=False)
    assert FilexHook().get_conn() == FilexConnection()
    with pytest.raises(Exception, match="filex_nowhere"):
        FilexHook(filex_conn_id="filex_nowhere").get_conn()


def test_airflow_registers_the_connection_type_and_the_link():
    info = get_provider_info()
    assert info["package-name"] == "filex-airflow" and info["versions"]
    from airflow.providers_manager import ProvidersManager

    pm = ProvidersManager()
    assert "filex-airflow" in pm.providers, "the apache_airflow_provider entry point"
    assert pm.hooks["filex"].hook_class_name == "filex_airflow.hooks.FilexHook"
    assert pm.hooks["filex"].connection_id_attribute_name == "filex_conn_id"
    behaviour = pm.field_behaviours["filex"]
    assert {"host", "login", "password", "port", "schema"} <= set(behaviour["hidden_fields"])
    widgets = {k for k in pm.connection_form_widgets if k.startswith("extra__filex__")}
    assert widgets == {f"extra__filex__{k}" for k in
                       ("binary", "conf_dir", "queue", "principal", "keytab")}  # fmt: skip
    assert "filex_airflow.links.FilexTrackingLink" in pm.extra_links_class_names


def test_the_link_reads_the_tracking_url_xcom():
    link = FilexTrackingLink()
    assert link.xcom_key == "tracking_url" and link.name == "YARN application"
    import pendulum
    from airflow import DAG
    from airflow.serialization import serialized_objects

    with DAG("links", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
        FilexSubmitOperator(task_id="fuse", job="j.toml")
    # What the webserver / API server sees: the DAG as serialized by the DAG processor.
    serialization = getattr(serialized_objects, "DagSerialization", None)
    serialization = serialization or serialized_objects.SerializedDAG
    task = serialization.from_dict(serialization.to_dict(dag)).get_task("fuse")
    served = task.operator_extra_link_dict["YARN application"]
    # Airflow 3 renders it from the XCom key alone; Airflow 2 calls our get_link.
    assert getattr(served, "xcom_key", None) == "tracking_url", served


# --- deferrable mode ----------------------------------------------------------------------


def test_deferrable_submits_detached_and_defers_to_the_trigger(fake):
    op = operator(fake, deferrable=True, poll_interval=0.1)
    ti = FakeTI()
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({"ti": ti})
    assert (fake / "args").read_text().splitlines()[-1] == "--detach"
    trigger = deferred.value.trigger
    assert isinstance(trigger, FilexApplicationTrigger)
    assert deferred.value.method_name == "execute_complete"
    classpath, kwargs = trigger.serialize()
    assert classpath == "filex_airflow.triggers.FilexApplicationTrigger"
    assert kwargs["application_id"] == "application_1700000000000_0002"
    assert FilexApplicationTrigger(**kwargs).serialize() == (classpath, kwargs)
    assert ti.xcom["application_id"] == "application_1700000000000_0002"


def first_event(trigger: FilexApplicationTrigger) -> dict:
    async def first():
        async for event in trigger.run():
            return event.payload

    return asyncio.run(asyncio.wait_for(first(), 30))


def trigger(fake_dir: pathlib.Path, **kw) -> FilexApplicationTrigger:
    return FilexApplicationTrigger(
        application_id="application_1700000000000_0002",
        filex_bin=str(fake_dir / "filex"),
        conf_args=["--conf-dir", "/etc/hc"],
        poll_interval=0.05,
        **kw,
    )


def test_the_trigger_polls_until_the_application_ends(fake):
    event = first_event(trigger(fake))
    assert event["status"] == "ended"
    assert event["report"]["state"] == "FINISHED"
    assert (fake / "polls").read_text().strip() == "2", "RUNNING, then FINISHED"
    assert (fake / "args").read_text().split() == [
        "status", "application_1700000000000_0002", "--json", "--conf-dir", "/etc/hc"
    ]  # fmt: skip


def test_the_trigger_rides_out_an_unreachable_rm_but_not_an_unknown_application(fake, monkeypatch):
    monkeypatch.setenv("FAKE_STATUS_RC", "4")
    monkeypatch.setenv("FAKE_STATUS_FAILS", "2")
    assert first_event(trigger(fake))["status"] == "ended"
    (fake / "polls").unlink()
    event = first_event(trigger(fake, max_consecutive_errors=2))
    assert event["status"] == "error" and "exited with 4" in event["message"]
    (fake / "polls").unlink()
    monkeypatch.setenv("FAKE_STATUS_RC", "5")
    event = first_event(trigger(fake))
    assert event["status"] == "error" and "exited with 5" in event["message"]
    assert (fake / "polls").read_text().strip() == "1", "not found: no retry"


def report(state: str, final: str) -> dict:
    return {
        "status": "ended",
        "application_id": "application_1700000000000_0002",
        "report": {"state": state, "final_status": final, "tracking_url": "http://rm/app",
                   "diagnostics": "timeline: …\nmanifest: hdfs://nn/out/_manifests/j/w.json"},
    }  # fmt: skip


def test_execute_complete_succeeds_only_on_succeeded(fake):
    ti = FakeTI()
    op = operator(fake, deferrable=True)
    assert op.execute_complete({"ti": ti}, report("FINISHED", "SUCCEEDED")) == (
        "application_1700000000000_0002"
    )
    assert ti.xcom == {
        "application_id": "application_1700000000000_0002",
        "tracking_url": "http://rm/app",
        "manifest": "hdfs://nn/out/_manifests/j/w.json",
    }
    for state, final in [("FINISHED", "FAILED"), ("KILLED", "KILLED"), ("FAILED", "FAILED")]:
        with pytest.raises(AirflowException, match=f"ended {state} {final}"):
            op.execute_complete({"ti": FakeTI()}, report(state, final))
    error = {"status": "error", "application_id": "application_1", "message": "exited with 5"}
    with pytest.raises(AirflowException, match="exited with 5"):
        op.execute_complete({"ti": FakeTI()}, error)


# --- outlets and FilexRunOperator -----------------------------------------------------------


class Events(dict):
    """What Airflow's outlet_events accessor does with an outlet: one object per outlet."""

    def __missing__(self, key):
        self[key] = value = type("Accessor", (), {"extra": None})()
        return value


def test_a_successful_run_puts_the_manifest_on_its_outlets(fake):
    outlet = filex_manifest_outlet("hdfs://nn/out/", "j")
    assert outlet.uri == "hdfs://nn/out/_manifests/j"
    events = Events()
    operator(fake, outlets=[outlet]).execute({"ti": FakeTI(), "outlet_events": events})
    assert events[outlet].extra == {
        "manifest": "hdfs://nn/out/_manifests/j/w.json",
        "application_id": "application_1700000000000_0002",
        "window_start": "2026-11-05T00:00:00+08:00",
        "window_end": "2026-11-05T01:00:00+08:00",
    }


def test_the_run_operator_runs_filex_run_and_returns_the_manifest(fake, monkeypatch):
    ti = FakeTI()
    op = operator(fake, FilexRunOperator, threads=2, memory="512M", defines=["a.b=1"])
    assert op.execute({"ti": ti}) == "file:///out/_manifests/j/w.json"
    assert ti.xcom == {"manifest": "file:///out/_manifests/j/w.json"}
    args = (fake / "args").read_text().splitlines()
    assert args == ["run", "/jobs/acme.toml",
                    "--set", "window.start=2026-11-05T00:00:00+08:00",
                    "--set", "window.end=2026-11-05T01:00:00+08:00",
                    "-D", "a.b=1", "--threads", "2", "--memory", "512M", "--no-progress"]  # fmt: skip
    monkeypatch.setenv("FAKE_RC", "2")
    with pytest.raises(AirflowFailException, match="filex run exited with 2"):
        op.execute({"ti": FakeTI()})
