"""Long-task methods of :class:`~airflow_provider_carol.hooks.carol.CarolHook` (mixed into it).

Carol runs app processes, reprocessing and loads as long tasks polled through ``GET v1/tasks/{id}``.
Cancel and fail are safe to resend (a terminal task ignores them); reprocess and log lines are not,
so those POSTs are never retried once they may have reached Carol.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_carol.exceptions import CarolApiError, CarolConfigError, CarolError
from airflow_provider_carol.hooks import endpoints
from airflow_provider_carol.hooks.endpoints import quote_segment
from airflow_provider_carol.hooks.models import CarolTask, CarolTaskLogEntry

if TYPE_CHECKING:
    from airflow_provider_carol.hooks.config import CarolConnectionConfig

#: Carol's log levels, and the Python names that map onto them (as the reference SDK maps them).
LOG_LEVELS = {
    "TRACE": "TRACE",
    "DEBUG": "DEBUG",
    "INFO": "INFO",
    "WARN": "WARN",
    "WARNING": "WARN",
    "ERROR": "ERROR",
    "CRITICAL": "ERROR",
    "FATAL": "ERROR",
}


def task_ui_url(config: CarolConnectionConfig, task_id: str | None = None) -> str:
    """The Carol UI page of a long task: ``{scheme}://{host}[:port]/{tenant}/carol-ui/tasks/{task_id}``.

    ``host`` is the connection's API host (``{organization}.{environment}`` unless overridden), the
    default port is left out, and an org-level connection has no tenant segment. Without ``task_id``
    the URL is the tenant's task list. Pure: no request is made, so links cost nothing.
    """
    default_port = {"https": 443, "http": 80}.get(config.scheme)
    host = f"[{config.host}]" if ":" in config.host else config.host
    base = f"{config.scheme}://{host}" + ("" if config.port == default_port else f":{config.port}")
    parts = [base]
    if config.tenant and not config.org_level:
        parts.append(quote_segment(config.tenant))
    parts.append("carol-ui/tasks")
    if task_id:
        parts.append(quote_segment(task_id))
    return "/".join(parts)


def task_from_answer(body: Any, task_id: str, what: str) -> CarolTask:
    """Parse a task JSON answer; a body that is not a task is a clear :class:`CarolApiError`."""
    try:
        return CarolTask.from_api(body, task_id=task_id)
    except ValueError as exc:
        raise CarolApiError(f"Carol {what} of task {task_id!r} answered with {exc}") from None


def log_entries_payload(task_id: str, entries: Iterable[Any]) -> list[dict[str, str]]:
    """Validate log entries into Carol's JSON array; a bad entry is named by its index before sending.

    An entry is a :class:`CarolTaskLogEntry`, a mapping with ``message`` (and optional ``level``),
    or a ``(level, message)`` pair.
    """
    payload = []
    for index, entry in enumerate(entries):
        if isinstance(entry, CarolTaskLogEntry):
            level, message = entry.level, entry.message
        elif isinstance(entry, Mapping):
            level = entry.get("level", entry.get("mdmLogLevel", "INFO"))
            message = entry.get("message", entry.get("mdmLogMessage"))
        elif isinstance(entry, (tuple, list)) and len(entry) == 2:
            level, message = entry
        else:
            raise CarolConfigError(
                f"Task log entry {index}: expected a mapping or (level, message), got {type(entry).__name__}."
            )
        carol_level = LOG_LEVELS.get(str(level or "INFO").upper())
        if carol_level is None:
            raise CarolConfigError(
                f"Task log entry {index}: level {level!r} is not one of {', '.join(sorted(LOG_LEVELS))}."
            )
        if message is None:
            raise CarolConfigError(f"Task log entry {index}: 'message' is missing.")
        payload.append({"mdmTaskId": task_id, "mdmLogMessage": str(message), "mdmLogLevel": carol_level})
    return payload


class TasksHookMixin:
    """Long-task part of CarolHook; relies on the host class's ``call_api``/``config``/``log``."""

    if TYPE_CHECKING:
        config: CarolConnectionConfig
        log: Any

        def call_api(self, path: str, method: str | None = None, **kwargs: Any) -> Any: ...

    def get_task(self, task_id: str) -> CarolTask:
        """The task's current state (``GET v1/tasks/{id}``, retried on transient errors)."""
        body = self.call_api(endpoints.TASK_GET.path(task_id=_required(task_id)))
        return task_from_answer(body, task_id, "GET")

    def cancel_task(self, task_id: str, *, force: bool = False) -> CarolTask:
        """Ask Carol to cancel the task; returns its state afterwards (a finished task stays as it is)."""
        body = self.call_api(
            endpoints.TASK_CANCEL.path(task_id=_required(task_id)),
            "POST",
            params={"force": "true" if force else "false"},
            idempotent=True,  # cancelling twice is harmless
        )
        return self._task_or_refetch(body, task_id)

    def fail_task(self, task_id: str, message: str = "") -> CarolTask:
        """Mark the task FAILED with ``message`` (sent as a query parameter, encoded by the client)."""
        body = self.call_api(
            endpoints.TASK_FAIL.path(task_id=_required(task_id)),
            "POST",
            params={"message": message},
            idempotent=True,  # failing a failed task changes nothing
        )
        return self._task_or_refetch(body, task_id)

    def reprocess_task(self, task_id: str) -> CarolTask:
        """Start the task again; never resent automatically (a duplicate would run it twice)."""
        body = self.call_api(endpoints.TASK_REPROCESS.path(task_id=_required(task_id)), "POST")
        return self._task_or_refetch(body, task_id)

    def get_task_logs(self, task_id: str) -> list[CarolTaskLogEntry]:
        """The task's Carol log lines, oldest first."""
        body = self.call_api(endpoints.TASK_LOGS_GET.path(task_id=_required(task_id)))
        if isinstance(body, dict):  # tolerate a paged answer
            body = body.get("hits") or body.get("logs") or []
        return [CarolTaskLogEntry.from_api(item) for item in body if isinstance(item, dict)]

    def add_task_logs(self, task_id: str, entries: Iterable[Any]) -> bool:
        """Append log lines to the task in ONE request (a JSON array); returns Carol's ``success``.

        Entries are validated first, so a bad level or a missing message sends nothing. Not retried
        after it may have reached Carol, so a line is never written twice.
        """
        payload = log_entries_payload(_required(task_id), entries)
        if not payload:
            return True
        body = self.call_api(endpoints.TASK_LOGS_ADD.path(task_id=task_id), "POST", json=payload)
        return bool(body.get("success", True)) if isinstance(body, dict) else True

    def task_logs_tail(self, task_id: str, lines: int = 20) -> list[str]:
        """The last ``lines`` log lines as text; a failure to read them is returned as a line, not raised.

        Used in failure messages, where a log read error must not hide the task's own failure.
        """
        if lines <= 0:
            return []
        try:
            return [str(entry) for entry in self.get_task_logs(task_id)[-lines:]]
        except CarolError as exc:
            return [f"(Carol logs unavailable: {exc})"]

    def task_url(self, task_id: str | None = None) -> str:
        """The Carol UI URL of the task (see :func:`task_ui_url`); no request is made."""
        return task_ui_url(self.config, task_id)

    def wait_for_task(
        self,
        task_id: str,
        *,
        poll_interval: float = 5.0,
        max_poll_interval: float = 60.0,
        timeout: float | None = None,
    ) -> CarolTask:
        """Poll until the task is terminal (interval grows x1.5 up to the cap); blocks a worker slot.

        Raises ``TimeoutError`` after ``timeout`` seconds. Unknown statuses are logged once.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        interval, seen_unknown = poll_interval, set()
        while True:
            task = self.get_task(task_id)
            if task.state.is_terminal:
                return task
            if not task.state.is_known and task.state.value not in seen_unknown:
                seen_unknown.add(task.state.value)
                self.log.warning(
                    "Carol task %s reports unknown status %r; still waiting.", task_id, task.status
                )
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"Carol task {task_id} still {task.status} after {timeout} s.")
            pause = interval if deadline is None else max(0.0, min(interval, deadline - time.monotonic()))
            time.sleep(pause)
            interval = min(interval * 1.5, max(max_poll_interval, poll_interval))

    def _task_or_refetch(self, body: Any, task_id: str) -> CarolTask:
        """Action POSTs may answer with the task or with nothing; fetch it in the latter case."""
        if isinstance(body, dict) and body.get("mdmTaskStatus"):
            return task_from_answer(body, task_id, "action")
        return self.get_task(task_id)


def _required(task_id: Any) -> str:
    if not isinstance(task_id, str) or not task_id.strip():
        raise CarolConfigError(f"A Carol task id must be a non-empty string, got {task_id!r}.")
    return task_id.strip()


__all__ = ["LOG_LEVELS", "TasksHookMixin", "log_entries_payload", "task_from_answer", "task_ui_url"]
