"""The filex operators in a real Airflow (`airflow dags test`, SQLite metadata DB; Airflow 2.10
and 3) against the mini cluster (`scripts/cluster.sh start`): a run that succeeds and its retry
(same bytes), a run that fails (the task fails and filex's message is in the task log), the
deferrable mode (`dags test` runs the trigger in line: success with the same XComs and the
outlet's event naming the manifest; a failing job fails the task), `FilexRunOperator`
(embedded), a task killed
while its application runs (the application ends KILLED), and a retry after the worker died
without on_kill (it re-attaches to the running application). The last two stall a worker
through FILEX_FAULT_STALL_AT, so FILEX_BIN must be built with `--features fault-injection`."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest

from conftest import PROJECT, airflow_cli

pytestmark = pytest.mark.cluster

# The corpus window: 2026-10-01T08:00+08:00 = 00:00 UTC, one hour; an @hourly run whose
# logical date is that hour has it as its data interval.
WINDOW_START = "2026-10-01T08:00:00+08:00"
LOGICAL_DATE = "2026-10-01T00:00:00+00:00"


def cluster_env() -> dict[str, str]:
    conf = pathlib.Path(
        os.environ.get("FILEX_CLUSTER_DIR", PROJECT / "target" / "cluster")
    ) / "conf"
    env_file = conf / "cluster.env"
    if os.environ.get("FILEX_AIRFLOW_UNIT_ONLY") == "1":
        pytest.skip("FILEX_AIRFLOW_UNIT_ONLY=1")
    assert env_file.exists(), f"no {env_file}: start the cluster with scripts/cluster.sh start"
    env = {"HADOOP_CONF_DIR": str(conf), "YARN_CONF_DIR": str(conf)}
    for line in env_file.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            env[k] = v
    return env


def http(method: str, url: str, data: bytes | None = None) -> bytes:
    req = urllib.request.Request(url, data=data, method=method)
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.read()


def webhdfs_put(base: str, path: str, data: bytes) -> None:
    # The NameNode answers 307 with the DataNode to write to; urllib does not follow a PUT.
    url = f"{base}/webhdfs/v1{path}?op=CREATE&user.name=root&overwrite=true"
    req = urllib.request.Request(url, method="PUT")
    opener = urllib.request.build_opener(NoRedirect())
    try:
        opener.open(req, timeout=60)
        raise AssertionError("WebHDFS CREATE did not redirect")
    except urllib.error.HTTPError as e:
        assert e.code == 307, e
        location = e.headers["Location"]
    http("PUT", location, data)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003
        return None


def webhdfs_get(base: str, path: str) -> bytes:
    return http("GET", f"{base}/webhdfs/v1{path}?op=OPEN&user.name=root")


def app_state(env: dict[str, str], app: str) -> str:
    doc = json.loads(http("GET", f"{env['FILEX_RM_WEBAPP']}/ws/v1/cluster/apps/{app}"))
    return doc["app"]["state"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    env = cluster_env()
    filex = os.environ["FILEX_BIN"]
    assert os.access(filex, os.X_OK), f"{filex}: build it with cargo build --bin filex"
    local = tmp_path_factory.mktemp("corpus")
    subprocess.run(
        [filex, "gen", "--out", str(local), "--seed", "7", "--hours", "1", "--rate", "3",
         "--start", WINDOW_START, "--platforms", "upyun,aliyun,nginx"],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    run = uuid.uuid4().hex[:10]
    root = f"/filex-airflow-it/{run}"
    for f in sorted((local / "shards").rglob("*")):
        if f.is_file():
            webhdfs_put(env["FILEX_WEBHDFS"], f"{root}/{f.relative_to(local)}", f.read_bytes())
    job = (local / "job.toml").read_text()
    hdfs_job = job.replace('shards = "shards/', f'shards = "hdfs://{root}/shards/').replace(
        'root = "output"', f'root = "hdfs://{root}/out"'
    )
    assert hdfs_job != job
    # A name of its own: filex re-attaches to a running application of the same job name and
    # window, and others share this cluster.
    hdfs_job = hdfs_job.replace('name = "demo-hourly"', f'name = "airflow-it-{run}"')
    assert f"airflow-it-{run}" in hdfs_job
    (local / "job-hdfs.toml").write_text(hdfs_job)
    return {
        "env": env,
        "job": str(local / "job-hdfs.toml"),
        "root": root,
        "name": f"airflow-it-{run}",
        # The job's manifests as an outlet, the output root with the NameNode's address.
        "outlet": f"{env['FILEX_NAMENODE']}{root}/out airflow-it-{run}",
    }


def dags_test_env(corpus, dag_id: str, sets: list[str] = (), extra=None) -> dict[str, str]:
    env = {**os.environ, **corpus["env"]}
    env.update(
        FILEX_IT_DAG_ID=dag_id,
        FILEX_IT_JOB=corpus["job"],
        FILEX_IT_SET="\n".join(sets),
        FILEX_LOG="warn",
    )
    env.update(extra or {})
    return env


def dags_test(corpus, dag_id: str, sets: list[str] = (), extra=None) -> subprocess.CompletedProcess:
    if extra and extra.get("FILEX_IT_OUTLET"):
        # `dags test` does not write the DAG to the metadata DB, and Airflow drops events of
        # outlets it has no record of: register the DAG and its outlet first.
        subprocess.run(
            [airflow_cli(), "dags", "reserialize"],
            env=dags_test_env(corpus, dag_id, sets, extra),
            check=True,
            capture_output=True,
            timeout=300,
        )
    return subprocess.run(
        [airflow_cli(), "dags", "test", dag_id, LOGICAL_DATE],
        env=dags_test_env(corpus, dag_id, sets, extra),
        capture_output=True,
        text=True,
        timeout=600,
    )


def task_outcome(dag_id: str) -> tuple[str, dict[str, object]]:
    """(state, xcoms) of the `fuse` task of the run at LOGICAL_DATE, from the metadata DB."""
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    try:  # Airflow 3: the table's model; values are stored as JSON
        from airflow.models.xcom import XComModel as XCom
    except ImportError:  # Airflow 2.10 hands back the deserialized value on a plain query
        from airflow.models import XCom

    with create_session() as session:
        ti = (
            session.query(TaskInstance)
            .filter(TaskInstance.dag_id == dag_id, TaskInstance.task_id == "fuse")
            .one()
        )
        xcoms = {}
        for x in session.query(XCom).filter(XCom.dag_id == dag_id, XCom.task_id == "fuse"):
            value = x.value
            if isinstance(value, str) and value.startswith('"'):
                value = json.loads(value)
            xcoms[x.key] = value
        return ti.state, xcoms


def outlet_events(dag_id: str) -> list[tuple[str, dict]]:
    """(uri, extra) of every Dataset (Airflow 2) / Asset (Airflow 3) event the DAG emitted."""
    from airflow.utils.session import create_session

    try:  # Airflow 3
        from airflow.models.asset import AssetEvent as Event, AssetModel as Model

        key = Event.asset_id
    except ImportError:  # Airflow 2
        from airflow.models.dataset import DatasetEvent as Event, DatasetModel as Model

        key = Event.dataset_id
    with create_session() as session:
        rows = (
            session.query(Model.uri, Event.extra)
            .join(Model, Model.id == key)
            .filter(Event.source_dag_id == dag_id)
            .all()
        )
        return [(uri, dict(extra or {})) for uri, extra in rows]


def partitions(corpus, manifest_url: str) -> dict[str, bytes]:
    """Every fused file of the window, read back from HDFS via the manifest."""
    base = corpus["env"]["FILEX_WEBHDFS"]
    assert manifest_url.startswith("hdfs://"), manifest_url
    path = "/" + manifest_url[len("hdfs://") :].split("/", 1)[1]
    assert path.startswith(f"{corpus['root']}/out/_manifests/{corpus['name']}/"), path
    manifest = json.loads(webhdfs_get(base, path))
    assert manifest["partitions"], manifest
    return {
        p["path"]: webhdfs_get(base, f"{corpus['root']}/out/{p['path']}")
        for p in manifest["partitions"]
    }


def test_a_run_succeeds_and_its_retry_writes_the_same_bytes(corpus):
    dag_id = "filex_it_ok"
    started = time.monotonic()
    done = dags_test(corpus, dag_id)
    log = done.stdout + done.stderr
    state, xcoms = task_outcome(dag_id)
    assert state == "success", log[-4000:]
    app = xcoms["application_id"]
    assert xcoms["return_value"] == app
    assert app_state(corpus["env"], app) == "FINISHED"
    assert f"Submitted application {app}" in log, "filex's output streams into the task log"
    assert str(xcoms["manifest"]).endswith(".json")
    assert str(xcoms["tracking_url"]).startswith("http"), "behind the task's extra link"
    first = partitions(corpus, xcoms["manifest"])
    first_took = time.monotonic() - started

    # A retry (or backfill) of the same interval: a new application, the same bytes.
    done = dags_test(corpus, dag_id)
    state, again = task_outcome(dag_id)
    assert state == "success", (done.stdout + done.stderr)[-4000:]
    assert again["application_id"] != app
    assert again["manifest"] == xcoms["manifest"]
    assert partitions(corpus, again["manifest"]) == first
    print(f"first run {first_took:.1f} s")


def test_a_failing_run_fails_the_task_with_filex_message(corpus):
    dag_id = "filex_it_fail"
    done = dags_test(
        corpus, dag_id, ["source.0.shards=hdfs://127.0.0.1:9/nowhere/%Y%m%d/%H%M/*.gz"]
    )
    log = done.stdout + done.stderr
    state, xcoms = task_outcome(dag_id)
    assert state == "failed", log[-4000:]
    assert "filex submit exited with 1 (the job failed)" in log, log[-4000:]
    assert "127.0.0.1:9" in log, "filex's diagnostics name the address"
    assert app_state(corpus["env"], xcoms["application_id"]) == "FINISHED"  # FAILED final status


def test_a_deferred_run_frees_the_worker_and_succeeds_with_the_same_xcoms(corpus):
    dag_id = "filex_it_deferred"
    done = dags_test(
        corpus, dag_id, extra={"FILEX_IT_DEFERRABLE": "1", "FILEX_IT_OUTLET": corpus["outlet"]}
    )
    log = done.stdout + done.stderr
    state, xcoms = task_outcome(dag_id)
    assert state == "success", log[-4000:]
    app = xcoms["application_id"]
    assert xcoms["return_value"] == app
    assert f"Deferring until application {app} ends" in log, log[-4000:]
    assert "detached; follow it with: filex status" in log, "submitted with --detach"
    assert app_state(corpus["env"], app) == "FINISHED"
    assert str(xcoms["tracking_url"]).startswith("http"), xcoms
    assert partitions(corpus, xcoms["manifest"]), "the manifest of the window"
    # The outlet's event names the window's manifest.
    uri = corpus["outlet"].replace(" ", "/_manifests/")
    events = outlet_events(dag_id)
    assert [u for u, _ in events] == [uri], events
    assert events[0][1]["manifest"] == xcoms["manifest"]
    assert events[0][1]["application_id"] == app


def test_a_deferred_run_that_fails_fails_the_task(corpus):
    dag_id = "filex_it_deferred_fail"
    done = dags_test(
        corpus,
        dag_id,
        ["source.0.shards=hdfs://127.0.0.1:9/nowhere/%Y%m%d/%H%M/*.gz"],
        extra={"FILEX_IT_DEFERRABLE": "1", "FILEX_IT_OUTLET": corpus["outlet"]},
    )
    log = done.stdout + done.stderr
    state, xcoms = task_outcome(dag_id)
    assert state == "failed", log[-4000:]
    app = xcoms["application_id"]
    assert f"application {app} ended FINISHED FAILED (the job failed)" in log, log[-4000:]
    assert "127.0.0.1:9" in log, "the diagnostics reach the task log"
    assert outlet_events(dag_id) == [], "no event for a window that did not publish"


def test_the_run_operator_fuses_the_window_in_the_worker(corpus):
    dag_id = "filex_it_run"
    done = dags_test(
        corpus, dag_id, extra={"FILEX_IT_OPERATOR": "run", "FILEX_IT_OUTLET": corpus["outlet"]}
    )
    log = done.stdout + done.stderr
    state, xcoms = task_outcome(dag_id)
    assert state == "success", log[-4000:]
    assert "application_id" not in xcoms, "embedded: no YARN application"
    assert xcoms["return_value"] == xcoms["manifest"]
    assert partitions(corpus, xcoms["manifest"])
    assert [e["manifest"] for _, e in outlet_events(dag_id)] == [xcoms["manifest"]]


class Running:
    """`airflow dags test` in the background, its output collected line by line."""

    def __init__(self, corpus, dag_id: str, extra=None) -> None:
        self.proc = subprocess.Popen(
            [airflow_cli(), "dags", "test", dag_id, LOGICAL_DATE],
            env=dags_test_env(corpus, dag_id, extra=extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(
            target=lambda: self.lines.extend(self.proc.stdout), daemon=True
        )
        self.reader.start()

    def log(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 120) -> str:
        """The first line containing `pattern`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            found = [l for l in self.log().splitlines() if pattern in l]
            if found:
                return found[0]
            time.sleep(0.5)
        raise AssertionError(f"no {pattern!r} in: {self.log()[-4000:]}")

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)
        self.proc.wait(timeout=180)
        self.reader.join(10)


def require_fault_injection() -> None:
    """Fails unless FILEX_BIN has the test hooks (FILEX_FAULT_*) the stalling tests need."""
    filex = os.environ["FILEX_BIN"]
    version = subprocess.run([filex, "--version"], check=True, capture_output=True, text=True)
    assert "+fault-injection" in version.stdout, (
        f"{filex} ({version.stdout.strip()}) lacks the test hooks: "
        "build it with cargo build --bin filex --features fault-injection"
    )


def app_in(line: str) -> str:
    return "application_" + line.split("application_", 1)[1].split()[0]


def test_killing_the_task_kills_the_application(corpus):
    require_fault_injection()
    dag_id = "filex_it_kill"
    # The first map task stalls, so the application keeps running until killed.
    # --full: earlier tests fused this window already, and a re-run would read no shard.
    task = Running(corpus, dag_id, extra={"FILEX_FAULT_STALL_AT": "map:0:0", "FILEX_IT_FULL": "1"})
    app = app_in(task.wait_for(" RUNNING"))
    time.sleep(2)
    # What Airflow's task runner does to a task it kills (mark failed, timeout, shutdown).
    task.signal(signal.SIGTERM)
    log = task.log()
    assert app_state(corpus["env"], app) == "KILLED", log[-4000:]
    assert f"Killing YARN application {app}" in log, log[-4000:]
    state, xcoms = task_outcome(dag_id)
    assert xcoms.get("application_id") == app
    assert state in ("failed", "up_for_retry"), (state, log[-4000:])


def test_a_retry_after_the_worker_died_reattaches(corpus):
    require_fault_injection()
    dag_id = "filex_it_retry"
    # --full: earlier tests fused this window already, and a re-run would read no shard.
    first = Running(corpus, dag_id, extra={"FILEX_FAULT_STALL_AT": "map:0:0", "FILEX_IT_FULL": "1"})
    app = app_in(first.wait_for(" RUNNING"))
    # The worker dies without running on_kill: the application keeps running.
    first.signal(signal.SIGKILL)
    assert app_state(corpus["env"], app) == "RUNNING"
    retry = Running(corpus, dag_id)
    line = retry.wait_for("Attaching to running application")
    assert app_in(line) == app, line
    retry.wait_for(" RUNNING")
    retry.signal(signal.SIGTERM)
    assert app_state(corpus["env"], app) == "KILLED", retry.log()[-4000:]
    _, xcoms = task_outcome(dag_id)
    assert xcoms.get("application_id") == app
