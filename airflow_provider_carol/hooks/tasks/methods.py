"""Carol long tasks: the calls as flows, and the methods both hooks expose for them.

Each operation is written once as a flow (:mod:`~airflow_provider_carol.hooks.core.transport`);
:class:`TaskMethods` runs it with the sync hook, :class:`AsyncTaskMethods` with the async hook, so the
triggerer polls exactly as a worker does. Cancel and fail are safe to resend (a terminal task ignores
them); reprocess and log lines are not, so those POSTs are never resent once they may have reached Carol.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from airflow_provider_carol.exceptions import CarolApiError, CarolError, CarolUnexpectedAnswer
from airflow_provider_carol.hooks.core import endpoints
from airflow_provider_carol.hooks.core.answers import describe, field_names
from airflow_provider_carol.hooks.core.async_driver import CarolAsyncHookBase
from airflow_provider_carol.hooks.core.config import CarolConnectionConfig
from airflow_provider_carol.hooks.core.endpoints import quote_segment
from airflow_provider_carol.hooks.core.sync_driver import CarolHookBase
from airflow_provider_carol.hooks.core.transport import Call, Flow, Sleep, parallel
from airflow_provider_carol.hooks.core.types import Json, LoggerLike
from airflow_provider_carol.hooks.core.validate import required_string
from airflow_provider_carol.hooks.tasks.logs import LogEntry, log_entries_payload
from airflow_provider_carol.hooks.tasks.models import CarolTask, CarolTaskLogEntry
from airflow_provider_carol.hooks.tasks.polling import (
    DEFAULT_UNKNOWN_STATUS_TIMEOUT,
    Waiter,
    WaitPolicy,
)
from airflow_provider_carol.hooks.tasks.tracker import has_restarted, needs_decision


# ---------------------------------------------------------------------------------------------- pure helpers
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


def task_from_answer(body: Json, task_id: str, what: str) -> CarolTask:
    """Parse a task JSON answer; a body that is not a task is a clear :class:`CarolApiError`."""
    try:
        return CarolTask.from_api(body, task_id=task_id)
    except ValueError as exc:
        raise CarolApiError(f"Carol {what} of task {task_id!r} answered with {exc}") from None


def required(task_id: object) -> str:
    """A task id, stripped; anything else is a :class:`CarolConfigError` before any request."""
    return required_string("carol_task_id", task_id)


@dataclass(frozen=True)
class WaitOutcome:
    """How a wait for one task ended: its last state seen, and whether the deadline ended it (an unknown
    status lasting ``unknown_status_timeout`` raises :class:`CarolTaskFailed` instead)."""

    task: CarolTask | None
    timed_out: bool

    @property
    def last_status(self) -> str:
        """The last status seen, or ``unknown`` when no poll was answered."""
        return self.task.status if self.task is not None else "unknown"


@dataclass(frozen=True)
class WatchOutcome:
    """How a watch over several tasks ended (see :func:`watch_tasks`)."""

    statuses: dict[str, str]
    restarted: list[str] = field(default_factory=list)
    timed_out: bool = False


# ---------------------------------------------------------------------------------------------- flows
def get_task(task_id: str) -> Flow[CarolTask]:
    """``GET v1/tasks/{id}``."""
    task_id = required(task_id)
    body = yield Call.to(endpoints.TASK_GET, path_params={"task_id": task_id})
    return task_from_answer(body, task_id, "GET")


def _task_or_refetch(body: Json, task_id: str) -> Flow[CarolTask]:
    """Action POSTs may answer with the task or with nothing; fetch it in the latter case."""
    if isinstance(body, dict) and body.get("mdmTaskStatus"):
        return task_from_answer(body, task_id, "action")
    return (yield from get_task(task_id))


def cancel_task(task_id: str, *, force: bool = False) -> Flow[CarolTask]:
    """Cancel the task; its state afterwards (cancelling twice is harmless, so it is resent)."""
    task_id = required(task_id)
    body = yield Call.to(
        endpoints.TASK_CANCEL,
        path_params={"task_id": task_id},
        params={"force": "true" if force else "false"},
        idempotent=True,
    )
    return (yield from _task_or_refetch(body, task_id))


def fail_task(task_id: str, message: str = "") -> Flow[CarolTask]:
    """Mark the task FAILED with ``message`` (a query parameter, encoded by the HTTP client)."""
    task_id = required(task_id)
    body = yield Call.to(
        endpoints.TASK_FAIL, path_params={"task_id": task_id}, params={"message": message}, idempotent=True
    )
    return (yield from _task_or_refetch(body, task_id))


def reprocess_task(task_id: str) -> Flow[CarolTask]:
    """Start the task again; never resent automatically (a duplicate would run it twice)."""
    task_id = required(task_id)
    body = yield Call.to(endpoints.TASK_REPROCESS, path_params={"task_id": task_id})
    return (yield from _task_or_refetch(body, task_id))


def get_task_logs(task_id: str) -> Flow[list[CarolTaskLogEntry]]:
    """The task's Carol log lines, oldest first (a paged answer is tolerated)."""
    body = yield Call.to(endpoints.TASK_LOGS_GET, path_params={"task_id": required(task_id)})
    if isinstance(body, dict):
        body = body.get("hits") or body.get("logs") or []
    if not isinstance(body, list):
        raise CarolUnexpectedAnswer(
            f"Carol's log lines of task {task_id!r} are not a list ({describe(body)}).",
            endpoint=str(endpoints.TASK_LOGS_GET),
            fields=field_names(body),
        )
    return [CarolTaskLogEntry.from_api(item) for item in body if isinstance(item, dict)]


def task_logs_tail(task_id: str, lines: int = 20) -> Flow[list[str]]:
    """The last ``lines`` log lines as text; a failure to read them is returned as a line, not raised.

    Used in failure messages, where a log read error must not hide the task's own failure.
    """
    if lines <= 0:
        return []
    try:
        entries = yield from get_task_logs(task_id)
    except CarolError as exc:
        return [f"(Carol logs unavailable: {exc})"]
    return [str(entry) for entry in entries[-lines:]]


def add_task_logs(task_id: str, entries: Iterable[LogEntry]) -> Flow[bool]:
    """Append log lines in ONE request (a JSON array), validated first; never resent once sent."""
    payload = log_entries_payload(required(task_id), entries)
    if not payload:
        return True
    return (yield from post_task_logs(task_id.strip(), payload))


def post_task_logs(task_id: str, payload: list[dict[str, str]]) -> Flow[bool]:
    """POST log-line payloads already built (:func:`~.logs.log_entries_payload` or the log bridge's);
    resent only when nothing was sent, never after Carol may have stored the lines."""
    body = yield Call.to(endpoints.TASK_LOGS_ADD, path_params={"task_id": task_id}, json=payload)
    return bool(body.get("success", True)) if isinstance(body, dict) else True


def cancel_tasks(task_ids: Iterable[str], why: str, log: LoggerLike) -> Flow[dict[str, str]]:
    """Cancel-on-kill, for the operators and the triggers: ask Carol to cancel each task, best effort.

    Each outcome is logged with ``why``; a failure to cancel one task is logged and the others are still
    cancelled. Returns the statuses Carol answered, by task id.
    """
    statuses: dict[str, str] = {}
    for task_id in task_ids:
        try:
            task = yield from cancel_task(task_id)
        except CarolError as exc:
            log.warning("Could not cancel Carol task %s (%s): %s", task_id, why, exc)
            continue
        statuses[task_id] = task.status
        log.warning("Asked Carol to cancel task %s (%s); it is now %s.", task_id, why, task.status)
    return statuses


def poll_task(task_id: str, waiter: Waiter) -> Flow[CarolTask | None]:
    """One poll under ``waiter``: the task, or None after a tolerated transient failure; a status nobody
    knows that lasted ``unknown_status_timeout`` raises :class:`CarolTaskFailed` (:meth:`Waiter.observe`)."""
    try:
        task = yield from get_task(task_id)
    except CarolError as exc:
        if waiter.tolerate(task_id, exc):
            return None
        raise
    waiter.observe(task)
    return task


def wait_for_task(task_id: str, policy: WaitPolicy, log: LoggerLike) -> Flow[WaitOutcome]:
    """Poll until the task is terminal or the policy's deadline passes."""
    waiter, last = Waiter(policy, log), None
    while True:
        task = yield from poll_task(task_id, waiter)
        last = task or last
        if task is not None and task.state.is_terminal:
            return WaitOutcome(task, timed_out=False)
        if waiter.timed_out():
            return WaitOutcome(last, timed_out=True)
        yield Sleep(waiter.pause())


def watch_tasks(
    task_ids: Sequence[str], awaiting: Mapping[str, str | None], policy: WaitPolicy, log: LoggerLike
) -> Flow[WatchOutcome]:
    """Poll every task until one needs a decision (see :func:`~.tracker.needs_decision`) or the deadline.

    ``awaiting`` maps reprocessed ids to the start date of the run that failed; such a task counts as
    restarted once seen non-failed or with a new start date.
    """
    pacer, waiters = Waiter(policy, log), {t: Waiter(policy, log) for t in task_ids}
    pending, restarted, statuses = dict(awaiting), [], {}
    while True:
        polled = yield from parallel([poll_task(t, waiters[t]) for t in task_ids])
        for task in filter(None, polled):  # a stuck unknown status raised in poll_task
            statuses[task.task_id] = task.status
            if task.task_id in pending and has_restarted(task, pending[task.task_id]):
                del pending[task.task_id]
                restarted.append(task.task_id)
        if needs_decision(task_ids, statuses, pending):
            return WatchOutcome(statuses, restarted)
        if pacer.timed_out():
            return WatchOutcome(statuses, restarted, timed_out=True)
        yield Sleep(pacer.pause())


# ---------------------------------------------------------------------------------------------- hook methods
class TaskMethods(CarolHookBase):
    """Long-task methods of ``CarolHook`` (each runs one flow above)."""

    def get_task(self, task_id: str) -> CarolTask:
        """The task's current state (``GET v1/tasks/{id}``, retried on transient errors)."""
        return self.run(get_task(task_id))

    def cancel_task(self, task_id: str, *, force: bool = False) -> CarolTask:
        """Ask Carol to cancel the task; returns its state afterwards (a finished task stays as it is)."""
        return self.run(cancel_task(task_id, force=force))

    def cancel_tasks(
        self, task_ids: Iterable[str], why: str, log: LoggerLike | None = None
    ) -> dict[str, str]:
        """Cancel-on-kill: cancel each task, best effort, logging each outcome (see :func:`cancel_tasks`)."""
        return self.run(cancel_tasks(task_ids, why, log or self.log))

    def fail_task(self, task_id: str, message: str = "") -> CarolTask:
        """Mark the task FAILED with ``message``."""
        return self.run(fail_task(task_id, message))

    def reprocess_task(self, task_id: str) -> CarolTask:
        """Start the task again; never resent automatically (a duplicate would run it twice)."""
        return self.run(reprocess_task(task_id))

    def get_task_logs(self, task_id: str) -> list[CarolTaskLogEntry]:
        """The task's Carol log lines, oldest first."""
        return self.run(get_task_logs(task_id))

    def add_task_logs(self, task_id: str, entries: Iterable[LogEntry]) -> bool:
        """Append log lines to the task in ONE request; returns Carol's ``success``.

        Entries are validated first, so a bad level or a missing message sends nothing.
        """
        return self.run(add_task_logs(task_id, entries))

    def task_logs_tail(self, task_id: str, lines: int = 20) -> list[str]:
        """The last ``lines`` log lines as text; a read failure comes back as a line, never raised."""
        return self.run(task_logs_tail(task_id, lines))

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
        unknown_status_timeout: float | None = DEFAULT_UNKNOWN_STATUS_TIMEOUT,
    ) -> CarolTask:
        """Poll until the task is terminal (see :mod:`~.polling`); blocks a worker slot.

        Raises ``TimeoutError`` after ``timeout`` seconds, :class:`CarolTaskFailed` when a status this
        provider does not know lasts ``unknown_status_timeout`` seconds, :class:`CarolNotFound` when the
        task disappears.
        """
        policy = WaitPolicy.within(
            timeout,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            unknown_status_timeout=unknown_status_timeout,
        )
        outcome = self.run(wait_for_task(task_id, policy, self.log))
        if outcome.timed_out or outcome.task is None:
            raise TimeoutError(f"Carol task {task_id} still {outcome.last_status} after {timeout} s.")
        return outcome.task


class AsyncTaskMethods(CarolAsyncHookBase):
    """Long-task methods of ``CarolAsyncHook``: the same flows as :class:`TaskMethods`, awaited."""

    async def get_task(self, task_id: str) -> CarolTask:
        """The task's current state, like ``CarolHook.get_task``."""
        return await self.run(get_task(task_id))

    async def cancel_task(self, task_id: str, *, force: bool = False) -> CarolTask:
        """Ask Carol to cancel the task, like ``CarolHook.cancel_task``."""
        return await self.run(cancel_task(task_id, force=force))

    async def cancel_tasks(
        self, task_ids: Iterable[str], why: str, log: LoggerLike | None = None
    ) -> dict[str, str]:
        """Cancel-on-kill, like ``CarolHook.cancel_tasks``."""
        return await self.run(cancel_tasks(task_ids, why, log or self.log))

    async def get_task_logs(self, task_id: str) -> list[CarolTaskLogEntry]:
        """The task's Carol log lines, oldest first."""
        return await self.run(get_task_logs(task_id))

    async def task_logs_tail(self, task_id: str, lines: int = 20) -> list[str]:
        """The last ``lines`` log lines as text, like ``CarolHook.task_logs_tail``."""
        return await self.run(task_logs_tail(task_id, lines))

    async def wait_for_task(self, task_id: str, policy: WaitPolicy) -> WaitOutcome:
        """Poll until the task is terminal or ``policy.deadline``; the outcome says which."""
        return await self.run(wait_for_task(task_id, policy, self.log))

    async def watch_tasks(
        self, task_ids: Sequence[str], awaiting: Mapping[str, str | None], policy: WaitPolicy
    ) -> WatchOutcome:
        """Poll several tasks until one needs a decision or ``policy.deadline``."""
        return await self.run(watch_tasks(task_ids, awaiting, policy, self.log))
