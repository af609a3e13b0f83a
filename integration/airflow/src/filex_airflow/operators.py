"""``FilexSubmitOperator``: one filex fusion window as a YARN application, from Airflow.

The operator runs ``filex submit JOB --set window.start=… --set window.end=…`` with the
window taken from the run's data interval, streams every line filex prints into the task
log, records the YARN application id in XCom (key ``application_id``, as soon as filex prints
it; the last ``application_…`` id printed wins) and the manifest URL (key ``manifest``),
returns the application id (``return_value``) and fails the task when filex exits non-zero.
When Airflow kills the task (mark failed/success, SIGTERM, ``execution_timeout``),
``on_kill`` kills the YARN application with ``filex kill`` and then stops the client.

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

from airflow.exceptions import AirflowException, AirflowFailException

try:  # Airflow 3
    from airflow.sdk import BaseOperator
except ImportError:  # Airflow 2
    from airflow.models import BaseOperator

#: A YARN application id as ``filex submit`` prints it.
APPLICATION_ID = re.compile(r"\bapplication_\d+_\d+\b")

#: Exit codes of ``filex submit`` (src/exit.rs).
EXIT_CODES = {
    0: "succeeded",
    1: "the job failed",
    2: "usage or job-file error",
    3: "the application was killed",
    4: "the cluster is unreachable",
}


def _pairs(values: Mapping[str, Any] | Sequence[str] | None) -> list[str]:
    """``{"a": 1}`` or ``["a=1"]`` → ``["a=1"]``."""
    if not values:
        return []
    if isinstance(values, Mapping):
        return [f"{k}={v}" for k, v in values.items()]
    return [str(v) for v in values]


class FilexSubmitOperator(BaseOperator):
    """Runs one window of a filex job on YARN with ``filex submit``.

    :param job: path of the job file (TOML) on the worker.
    :param window_start: start of the window, RFC 3339; default the data interval's start.
    :param window_end: end of the window (exclusive); default the data interval's end.
    :param settings: more ``--set key=value`` overrides, a dict or ``["key=value", …]``.
    :param defines: ``-D key=value`` Hadoop / ``filex.*`` settings, a dict or a list.
    :param yarn_queue: YARN queue (``--queue``).
    :param yarn_tags: extra application tags (``--tag``).
    :param force_new: start a new application even if one of the same window is running.
    :param filex_bin: the filex executable.
    :param env: environment of filex (e.g. ``HADOOP_CONF_DIR``); added to the worker's own
        environment unless ``append_env`` is false.
    :param kill_timeout: seconds ``on_kill`` waits for ``filex kill`` and for the client.
    """

    template_fields: Sequence[str] = (
        "job",
        "window_start",
        "window_end",
        "settings",
        "defines",
        "yarn_queue",
        "yarn_tags",
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
        yarn_queue: str | None = None,
        yarn_tags: Sequence[str] | None = None,
        force_new: bool = False,
        filex_bin: str = "filex",
        env: Mapping[str, str] | None = None,
        append_env: bool = True,
        kill_timeout: float = 120.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job = job
        self.window_start = window_start
        self.window_end = window_end
        self.settings = settings
        self.defines = defines
        self.yarn_queue = yarn_queue
        self.yarn_tags = yarn_tags
        self.force_new = force_new
        self.filex_bin = filex_bin
        self.env = env
        self.append_env = append_env
        self.kill_timeout = kill_timeout
        self.application_id: str | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._killed = False

    def command(self) -> list[str]:
        """The ``filex submit`` command line (after templates are rendered)."""
        argv = [self.filex_bin, "submit", self.job]
        if self.window_start:
            argv += ["--set", f"window.start={self.window_start}"]
        if self.window_end:
            argv += ["--set", f"window.end={self.window_end}"]
        for s in _pairs(self.settings):
            argv += ["--set", s]
        for d in _pairs(self.defines):
            argv += ["-D", d]
        if self.yarn_queue:
            argv += ["--queue", self.yarn_queue]
        for t in self.yarn_tags or ():
            argv += ["--tag", t]
        if self.force_new:
            argv.append("--force-new")
        return argv

    def _environment(self) -> dict[str, str]:
        extra = {k: str(v) for k, v in (self.env or {}).items()}
        return {**os.environ, **extra} if self.append_env else extra

    def execute(self, context: Any) -> str | None:
        argv = self.command()
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
        manifest = None
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
                if line.startswith("manifest: "):
                    manifest = line[len("manifest: ") :].strip()
                    ti.xcom_push(key="manifest", value=manifest)
            code = proc.wait()
        except BaseException:
            # Interrupted here (SIGTERM handler, timeout): never leave the application behind.
            if proc.poll() is None:
                self.on_kill()
            raise
        meaning = EXIT_CODES.get(code, "unexpected exit code")
        if code == 0:
            self.log.info("filex submit: %s (application %s)", meaning, self.application_id)
            return self.application_id
        message = (
            f"filex submit exited with {code} ({meaning})"
            + (f", application {self.application_id}" if self.application_id else "")
            + ":\n"
            + "\n".join(tail)
        )
        if code == 2:
            # A wrong job file or flag does not get better by retrying.
            raise AirflowFailException(message)
        raise AirflowException(message)

    def on_kill(self) -> None:
        if self._killed:
            return
        self._killed = True
        proc = self._proc
        if self.application_id:
            self.log.info("Killing YARN application %s", self.application_id)
            try:
                done = subprocess.run(
                    [self.filex_bin, "kill", self.application_id],
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
            # filex submit kills its application on SIGTERM too (before it printed an id, this
            # is the only way) and waits for the ResourceManager to confirm.
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=self.kill_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
