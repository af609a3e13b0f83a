"""The filex operators: one window of a fusion job, on YARN or in the worker itself.

``FilexSubmitOperator`` runs ``filex submit JOB --set window.start=… --set window.end=…``
with the window taken from the run's data interval, streams every line filex prints into
the task log, records the YARN application id in XCom (key ``application_id``, as soon as
filex prints it; the last ``application_…`` id printed wins), the tracking URL (key
``tracking_url``, behind the task's "YARN application" link) and the manifest URL (key
``manifest``), returns the application id (``return_value``) and fails the task when filex
exits non-zero. When Airflow kills the task (mark failed/success, SIGTERM,
``execution_timeout``), ``on_kill`` kills the YARN application with ``filex kill`` and then
stops the client. With ``deferrable=True`` it submits with ``--detach`` and waits in the
triggerer (:class:`~filex_airflow.triggers.FilexApplicationTrigger`), freeing the worker slot
while YARN runs; the outcome and the XComs are the same.

``FilexRunOperator`` runs ``filex run`` (embedded mode: the fusion runs on the Airflow worker,
no YARN), for small jobs and clusters without YARN.

Both read the ``filex`` connection (``filex_conn_id``, :class:`~filex_airflow.hooks.FilexHook`)
for the binary, the Hadoop conf dir and the default queue, and, when the run succeeded, put
the manifest on their outlets' events (see :mod:`filex_airflow.outlets`).

Retries and backfills of the same interval are safe: ``filex submit`` re-attaches to an
application of the same job and window that is still running (for instance after the
Airflow worker died) instead of starting a second one, and a finished window that runs
again replaces its output with the same bytes (see docs/SCHEDULING.md).
"""

from __future__ import annotations

import collections
import os
import re
import shlex
import signal
import subprocess
from typing import Any, Mapping, Sequence
from urllib.parse import urlsplit

from filex_airflow.compat import AirflowException, AirflowFailException, BaseOperator
from filex_airflow.connection import DEFAULT_CONN_ID, FilexConnection
from filex_airflow.hooks import FilexHook
from filex_airflow.links import TRACKING_URL, FilexTrackingLink
from filex_airflow.triggers import FilexApplicationTrigger

#: A YARN application id as ``filex submit`` prints it.
APPLICATION_ID = re.compile(r"\bapplication_\d+_\d+\b")

#: The tracking URL in filex submit's state lines (``… RUNNING  tracking URL: http://…``).
TRACKING = re.compile(r"tracking URL: (\S+)")

#: Where filex names the manifest: a line of its own, in `run`'s summary and in the
#: application's diagnostics.
MANIFEST_PREFIX = "manifest: "

#: Exit codes of filex (src/exit.rs).
EXIT_CODES = {
    0: "succeeded",
    1: "the job failed",
    2: "usage or job-file error",
    3: "the application was killed",
    4: "the cluster is unreachable",
    5: "the application does not exist",
}


def _pairs(values: Mapping[str, Any] | Sequence[str] | None) -> list[str]:
    """``{"a": 1}`` or ``["a=1"]`` → ``["a=1"]``."""
    if not values:
        return []
    if isinstance(values, Mapping):
        return [f"{k}={v}" for k, v in values.items()]
    return [str(v) for v in values]


def manifest_in(text: str) -> str | None:
    """The manifest URL named in filex's output or an application's diagnostics (the last)."""
    found = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("diagnostics: "):
            line = line[len("diagnostics: ") :].strip()
        if line.startswith(MANIFEST_PREFIX):
            found = line[len(MANIFEST_PREFIX) :].strip()
    return found


class _FilexOperator(BaseOperator):
    """What both operators share: the job and window, the connection, running filex with its
    output in the task log, XComs, exit codes, outlets and ``on_kill``."""

    subcommand = ""

    template_fields: Sequence[str] = (
        "job",
        "window_start",
        "window_end",
        "settings",
        "defines",
        "env",
    )
    ui_color = "#e8f1fb"

    def __init__(
        self,
        *,
        job: str,
        window_start: str = "{{ data_interval_start.isoformat() }}",
        window_end: str = "{{ data_interval_end.isoformat() }}",
        settings: Mapping[str, Any] | Sequence[str] | None = None,
        defines: Mapping[str, Any] | Sequence[str] | None = None,
        filex_conn_id: str | None = DEFAULT_CONN_ID,
        filex_bin: str | None = None,
        env: Mapping[str, str] | None = None,
        append_env: bool = True,
        kill_timeout: float = 120.0,
        full: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.full = full
        self.job = job
        self.window_start = window_start
        self.window_end = window_end
        self.settings = settings
        self.defines = defines
        self.filex_conn_id = filex_conn_id
        self.filex_bin = filex_bin
        self.env = env
        self.append_env = append_env
        self.kill_timeout = kill_timeout
        self.application_id: str | None = None
        self.manifest: str | None = None
        self._conn: FilexConnection | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._killed = False

    def connection(self) -> FilexConnection:
        """The ``filex`` connection (``filex_conn_id``; none: filex's defaults)."""
        if self._conn is None:
            self._conn = (
                FilexHook(filex_conn_id=self.filex_conn_id).get_conn()
                if self.filex_conn_id
                else FilexConnection()
            )
        return self._conn

    def binary(self, conn: FilexConnection) -> str:
        return self.filex_bin or conn.binary

    def _job_args(self) -> list[str]:
        argv = [self.job]
        if self.window_start:
            argv += ["--set", f"window.start={self.window_start}"]
        if self.window_end:
            argv += ["--set", f"window.end={self.window_end}"]
        for s in _pairs(self.settings):
            argv += ["--set", s]
        for d in _pairs(self.defines):
            argv += ["-D", d]
        if self.full:
            argv.append("--full")
        return argv

    def _environment(self) -> dict[str, str]:
        extra = {k: str(v) for k, v in (self.env or {}).items()}
        return {**os.environ, **extra} if self.append_env else extra

    def _stream(self, argv: list[str], context: Any) -> tuple[int, list[str]]:
        """Runs filex with its output in the task log and the XComs it names pushed;
        (exit code, its last lines)."""
        ti = context["ti"]
        self.log.info("Running %s", shlex.join(argv))
        # A session of its own: a signal meant for the task reaches filex only through
        # on_kill, which kills the application first.
        self._proc = proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self._environment(),
            text=True,
            errors="replace",
            bufsize=1,
            start_new_session=True,
        )
        tail: collections.deque[str] = collections.deque(maxlen=12)
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.rstrip("\n")
                self.log.info("%s", line)
                tail.append(line)
                ids = APPLICATION_ID.findall(line)
                if ids and ids[-1] != self.application_id:
                    self.application_id = ids[-1]
                    ti.xcom_push(key="application_id", value=self.application_id)
                url = TRACKING.search(line)
                if url:
                    ti.xcom_push(key=TRACKING_URL, value=url.group(1))
                manifest = manifest_in(line)
                if manifest:
                    self.manifest = manifest
                    ti.xcom_push(key="manifest", value=manifest)
            code = proc.wait()
        except BaseException:
            # Interrupted here (SIGTERM handler, timeout): never leave the application behind.
            if proc.poll() is None:
                self.on_kill()
            raise
        return code, list(tail)

    def _failure(self, code: int, tail: Sequence[str]) -> Exception:
        meaning = EXIT_CODES.get(code, "unexpected exit code")
        message = (
            f"filex {self.subcommand} exited with {code} ({meaning})"
            + (f", application {self.application_id}" if self.application_id else "")
            + ":\n"
            + "\n".join(tail)
        )
        if code == 2:
            # A wrong job file or flag does not get better by retrying.
            return AirflowFailException(message)
        return AirflowException(message)

    def _publish(self, context: Any) -> None:
        """Puts the window's manifest on the events of this task's outlets."""
        events = context.get("outlet_events") if hasattr(context, "get") else None
        if events is None or not self.outlets:
            return
        extra = {
            "manifest": self.manifest,
            "application_id": self.application_id,
            "window_start": self.window_start,
            "window_end": self.window_end,
        }
        for outlet in self.outlets:
            uri = getattr(outlet, "uri", None)
            if uri is None:
                continue
            # The job file may name the output root with or without the NameNode's address.
            if self.manifest and not urlsplit(self.manifest).path.startswith(
                urlsplit(uri).path.rstrip("/") + "/"
            ):
                self.log.warning("outlet %s does not hold the manifest %s", uri, self.manifest)
            events[outlet].extra = extra

    def _run(self, argv: list[str], context: Any) -> None:
        code, tail = self._stream(argv, context)
        if code != 0:
            raise self._failure(code, tail)

    def on_kill(self) -> None:
        if self._killed:
            return
        self._killed = True
        proc = self._proc
        if self.application_id:
            self.log.info("Killing YARN application %s", self.application_id)
            conn = self._conn or FilexConnection()
            try:
                done = subprocess.run(
                    [self.binary(conn), "kill", self.application_id, *conn.conf_args()],
                    env=self._environment(),
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    text=True,
                    timeout=self.kill_timeout,
                )
                for line in (done.stdout + done.stderr).splitlines():
                    self.log.info("filex kill: %s", line)
            except (OSError, subprocess.TimeoutExpired) as e:
                self.log.error("filex kill %s: %s", self.application_id, e)
        if proc is not None and proc.poll() is None:
            # filex kills its application on SIGTERM too (before it printed an id, this
            # is the only way) and waits for the ResourceManager to confirm.
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=self.kill_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class FilexSubmitOperator(_FilexOperator):
    """Runs one window of a filex job on YARN with ``filex submit``.

    :param job: path of the job file (TOML) on the worker.
    :param window_start: start of the window, RFC 3339; default the data interval's start.
    :param window_end: end of the window (exclusive); default the data interval's end.
    :param settings: more ``--set key=value`` overrides, a dict or ``["key=value", …]``.
    :param defines: ``-D key=value`` Hadoop / ``filex.*`` settings, a dict or a list.
    :param yarn_queue: YARN queue (``--queue``); default the connection's ``queue``.
    :param yarn_tags: extra application tags (``--tag``).
    :param force_new: start a new application even if one of the same window is running.
    :param filex_conn_id: the ``filex`` connection (binary, conf dir, queue); ``None``: none.
    :param filex_bin: the filex executable; default the connection's ``binary``, else ``filex``.
    :param env: environment of filex (e.g. ``HADOOP_CONF_DIR``); added to the worker's own
        environment unless ``append_env`` is false.
    :param kill_timeout: seconds ``on_kill`` waits for ``filex kill`` and for the client.
    :param full: recompute every partition of the window (``--full``); by default a re-run
        recomputes only the partitions whose shards changed since the window's last run.
    :param deferrable: submit with ``--detach`` and wait in the triggerer, not in a worker slot.
    :param poll_interval: deferrable mode: seconds between two ``filex status`` calls.
    """

    subcommand = "submit"
    template_fields: Sequence[str] = (*_FilexOperator.template_fields, "yarn_queue", "yarn_tags")
    operator_extra_links = (FilexTrackingLink(),)

    def __init__(
        self,
        *,
        yarn_queue: str | None = None,
        yarn_tags: Sequence[str] | None = None,
        force_new: bool = False,
        deferrable: bool = False,
        poll_interval: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.yarn_queue = yarn_queue
        self.yarn_tags = yarn_tags
        self.force_new = force_new
        self.deferrable = deferrable
        self.poll_interval = poll_interval

    def command(self, conn: FilexConnection | None = None) -> list[str]:
        """The ``filex submit`` command line (after templates are rendered)."""
        conn = conn or FilexConnection()
        argv = [self.binary(conn), "submit", *self._job_args()]
        queue = self.yarn_queue or conn.queue
        if queue:
            argv += ["--queue", queue]
        for t in self.yarn_tags or ():
            argv += ["--tag", t]
        if self.force_new:
            argv.append("--force-new")
        argv += conn.conf_args()
        if self.deferrable:
            argv.append("--detach")
        return argv

    def execute(self, context: Any) -> str | None:
        conn = self.connection()
        self._run(self.command(conn), context)
        if not self.deferrable:
            self.log.info("filex submit: succeeded (application %s)", self.application_id)
            self._publish(context)
            return self.application_id
        if not self.application_id:
            raise AirflowException("filex submit --detach printed no application id")
        self.log.info("Deferring until application %s ends", self.application_id)
        self.defer(
            trigger=FilexApplicationTrigger(
                application_id=self.application_id,
                filex_bin=self.binary(conn),
                conf_args=conn.conf_args(),
                env={k: str(v) for k, v in (self.env or {}).items()},
                poll_interval=self.poll_interval,
            ),
            method_name="execute_complete",
        )
        return None  # not reached: defer() raises

    def execute_complete(self, context: Any, event: dict[str, Any]) -> str:
        """Resumes a deferred task: succeeds only when the application SUCCEEDED."""
        ti = context["ti"]
        self.application_id = app = event["application_id"]
        ti.xcom_push(key="application_id", value=app)
        if event.get("status") != "ended":
            raise AirflowException(f"waiting for application {app}: {event.get('message')}")
        report = event["report"]
        if report.get("tracking_url"):
            ti.xcom_push(key=TRACKING_URL, value=report["tracking_url"])
        diagnostics = str(report.get("diagnostics") or "").strip()
        for line in diagnostics.splitlines():
            self.log.info("diagnostics: %s", line)
        self.manifest = manifest_in(diagnostics)
        if self.manifest:
            ti.xcom_push(key="manifest", value=self.manifest)
        state, final = report.get("state"), report.get("final_status")
        if state == "FINISHED" and final == "SUCCEEDED":
            self.log.info("application %s FINISHED SUCCEEDED", app)
            self._publish(context)
            return app
        code = 3 if state == "KILLED" else 1
        raise AirflowException(
            f"application {app} ended {state} {final} ({EXIT_CODES[code]}):\n{diagnostics}"
        )


class FilexRunOperator(_FilexOperator):
    """Runs one window of a filex job on the Airflow worker with ``filex run`` (embedded mode).

    Takes the job, window, ``settings``, ``defines``, ``filex_conn_id`` (binary, conf dir),
    ``filex_bin``, ``env``, ``kill_timeout`` and ``full`` of :class:`FilexSubmitOperator`, and:

    :param threads: worker threads (``--threads``; default filex's: the number of cores).
    :param memory: memory budget, e.g. ``"2G"`` (``--memory``; default filex's, 1G).
    :param task_size: compressed input per map task, e.g. ``"64M"`` (``--task-size``).
    :param workers: run tasks in this many worker processes (``--workers``).

    Pushes the manifest URL (``manifest``) and returns it; ``on_kill`` stops filex (SIGTERM:
    nothing is published).
    """

    subcommand = "run"

    def __init__(
        self,
        *,
        threads: int | None = None,
        memory: str | None = None,
        task_size: str | None = None,
        workers: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.threads = threads
        self.memory = memory
        self.task_size = task_size
        self.workers = workers

    def command(self, conn: FilexConnection | None = None) -> list[str]:
        """The ``filex run`` command line (after templates are rendered)."""
        conn = conn or FilexConnection()
        argv = [self.binary(conn), "run", *self._job_args()]
        for flag, value in (
            ("--threads", self.threads),
            ("--memory", self.memory),
            ("--task-size", self.task_size),
            ("--workers", self.workers),
        ):
            if value is not None:
                argv += [flag, str(value)]
        # The task log is not a terminal: periodic lines, not a progress bar.
        argv.append("--no-progress")
        return argv + conn.conf_args()

    def execute(self, context: Any) -> str | None:
        self._run(self.command(self.connection()), context)
        self.log.info("filex run: succeeded (manifest %s)", self.manifest)
        self._publish(context)
        return self.manifest
