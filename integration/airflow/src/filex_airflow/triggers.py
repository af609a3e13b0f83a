"""``FilexApplicationTrigger``: waits in the triggerer until a YARN application has ended.

The deferrable ``FilexSubmitOperator`` submits with ``filex submit --detach`` and hands the
application id to this trigger, which runs ``filex status APP_ID --json`` (an asyncio
subprocess, so the triggerer's loop never blocks) every ``poll_interval`` seconds and fires one
event when the application reaches FINISHED, FAILED or KILLED, carrying the report. The JSON
is the one ``filex status --json`` prints (docs/SCHEDULING.md); the operator's
``execute_complete`` decides success from it. An application the ResourceManager does not know
(exit 5) or a filex that cannot print the report (exit 2) ends the wait with an error event at
once; a ResourceManager that cannot be reached (exit 4, a failover) is retried until
``max_consecutive_errors`` polls in a row failed.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any, AsyncIterator, Mapping

from airflow.triggers.base import BaseTrigger, TriggerEvent

#: YARN states after which an application never changes again.
FINAL_STATES = frozenset({"FINISHED", "FAILED", "KILLED"})

#: Exit codes of ``filex status`` (src/exit.rs) that no retry can change.
USAGE, NOT_FOUND = 2, 5


class FilexApplicationTrigger(BaseTrigger):
    """Fires when the application ``application_id`` has ended.

    :param application_id: the YARN application id.
    :param filex_bin: the filex executable on the triggerer.
    :param conf_args: extra arguments of every filex call (``--conf-dir DIR``).
    :param env: environment added to the triggerer's own (e.g. ``HADOOP_CONF_DIR``).
    :param poll_interval: seconds between two ``filex status`` calls.
    :param max_consecutive_errors: failed polls in a row (RM unreachable, bad output) after
        which the trigger gives up with an error event.
    :param status_timeout: seconds one ``filex status`` may take.

    Events: ``{"status": "ended", "application_id", "report": {…}}`` or
    ``{"status": "error", "application_id", "message"}``.
    """

    def __init__(
        self,
        application_id: str,
        filex_bin: str = "filex",
        conf_args: list[str] | None = None,
        env: Mapping[str, str] | None = None,
        poll_interval: float = 10.0,
        max_consecutive_errors: int = 10,
        status_timeout: float = 60.0,
    ) -> None:
        super().__init__()
        self.application_id = application_id
        self.filex_bin = filex_bin
        self.conf_args = list(conf_args or [])
        self.env = dict(env or {})
        self.poll_interval = float(poll_interval)
        self.max_consecutive_errors = int(max_consecutive_errors)
        self.status_timeout = float(status_timeout)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "application_id": self.application_id,
                "filex_bin": self.filex_bin,
                "conf_args": self.conf_args,
                "env": self.env,
                "poll_interval": self.poll_interval,
                "max_consecutive_errors": self.max_consecutive_errors,
                "status_timeout": self.status_timeout,
            },
        )

    def _environment(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    async def _filex(self, *args: str, timeout: float) -> tuple[int, str, str]:
        """Runs ``filex ARGS… CONF_ARGS…``; (exit code, stdout, stderr)."""
        proc = await asyncio.create_subprocess_exec(
            self.filex_bin,
            *args,
            *self.conf_args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._environment(),
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except BaseException:  # timeout or cancellation: never leave the child behind
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            raise
        return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")

    async def poll(self) -> dict[str, Any]:
        """One ``filex status --json``: the report, or raises ``_PollError`` (retriable or not)."""
        try:
            code, out, err = await self._filex(
                "status", self.application_id, "--json", timeout=self.status_timeout
            )
        except asyncio.TimeoutError:
            raise _PollError(f"filex status took more than {self.status_timeout:.0f} s", True)
        except OSError as e:
            raise _PollError(f"cannot run {self.filex_bin}: {e}", False)
        detail = (err.strip() or out.strip())[-2000:]
        if code in (USAGE, NOT_FOUND):
            raise _PollError(f"filex status exited with {code}: {detail}", False)
        if code != 0:
            raise _PollError(f"filex status exited with {code}: {detail}", True)
        try:
            report = json.loads(out)
            report["state"]  # noqa: B018 - the one key the wait needs
        except (ValueError, KeyError, TypeError) as e:
            raise _PollError(f"filex status --json printed no report ({e}): {out[:500]}", True)
        return report

    async def run(self) -> AsyncIterator[TriggerEvent]:
        errors = 0
        last_state = None
        while True:
            try:
                report = await self.poll()
            except _PollError as e:
                errors += 1
                if not e.retriable or errors >= self.max_consecutive_errors:
                    yield TriggerEvent(
                        {"status": "error", "application_id": self.application_id, "message": str(e)}
                    )
                    return
                self.log.warning("%s (poll %d of %d)", e, errors, self.max_consecutive_errors)
            else:
                errors = 0
                state = report.get("state")
                if state != last_state:
                    self.log.info(
                        "%s %s %s", self.application_id, state, report.get("tracking_url") or ""
                    )
                    last_state = state
                if state in FINAL_STATES:
                    yield TriggerEvent(
                        {"status": "ended", "application_id": self.application_id, "report": report}
                    )
                    return
            await asyncio.sleep(self.poll_interval)

    async def on_kill(self) -> None:
        """The deferred task was marked failed or cleared (Airflow 3.3+): kill the application.

        Not called on a triggerer restart, when the trigger moves to another triggerer.
        """
        self.log.info("Killing YARN application %s", self.application_id)
        try:
            code, out, err = await self._filex("kill", self.application_id, timeout=120)
            self.log.info("filex kill %s: exit %d %s", self.application_id, code, (out + err).strip())
        except (OSError, asyncio.TimeoutError) as e:
            self.log.error("filex kill %s: %s", self.application_id, e)


class _PollError(Exception):
    def __init__(self, message: str, retriable: bool) -> None:
        super().__init__(message)
        self.retriable = retriable
