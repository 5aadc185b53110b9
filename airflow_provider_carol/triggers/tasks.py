"""Triggers that wait for Carol long tasks inside the triggerer, so no worker slot is held.

Both talk to Carol only through :class:`CarolAsyncHook` and wait with the hooks' one waiting policy
(:mod:`~airflow_provider_carol.hooks.tasks.polling`): an absolute wall-clock ``end_time`` (so a timeout
survives a move to another triggerer), a growing poll interval, unknown statuses logged once and a
budget for transient poll errors. They carry plain JSON kwargs, including the hook's retry settings
(``hook_params``), and yield exactly one event. The event format and its validation live here too, so
the sensor and the operators read events the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_carol import compat
from airflow_provider_carol.exceptions import (
    CarolApiError,
    CarolAuthError,
    CarolConfigError,
    CarolConnectionError,
    CarolError,
    CarolInvalidRequest,
    CarolNotFound,
    CarolTaskFailed,
)
from airflow_provider_carol.hooks.carol_async import CarolAsyncHook
from airflow_provider_carol.hooks.core.retry import RetryPolicy
from airflow_provider_carol.hooks.core.validate import required_string
from airflow_provider_carol.hooks.tasks.models import TERMINAL_STATUSES
from airflow_provider_carol.hooks.tasks.polling import (
    DEFAULT_UNKNOWN_STATUS_TIMEOUT,
    WaitPolicy,
)

TIMEOUT = "timeout"
ERROR = "error"
ON_KILL_TIMEOUT = 30.0
#: Errors an ``error`` event may name; the worker raises the same type, so the deferred path and the
#: poking path fail the same way for the same Carol answers.
EVENT_ERRORS: dict[str, type[CarolError]] = {
    cls.__name__: cls
    for cls in (
        CarolError,
        CarolApiError,
        CarolAuthError,
        CarolConnectionError,
        CarolInvalidRequest,
        CarolNotFound,
        CarolTaskFailed,
    )
}


def error_event(carol_task_id: str | None, exc: CarolError) -> dict[str, Any]:
    """The event a trigger yields when the wait ends in an error (the worker re-raises it)."""
    name = type(exc).__name__ if type(exc).__name__ in EVENT_ERRORS else "CarolError"
    return {
        "status": ERROR,
        "carol_task_id": carol_task_id,
        "error": str(exc),
        "error_type": name,
        "logs_tail": [],
    }


def raise_event_error(event: dict[str, Any]) -> None:
    """Raise the error an ``error`` event carries, as the type the trigger saw."""
    raise EVENT_ERRORS.get(str(event.get("error_type")), CarolError)(str(event.get("error")))


class _CarolTrigger(BaseTrigger):
    """What both triggers share: the connection, the hook's retry settings, the waiting policy."""

    def __init__(
        self,
        carol_conn_id: str,
        *,
        end_time: float | None,
        poll_interval: float,
        max_poll_interval: float,
        cancel_on_kill: bool,
        hook_params: Mapping[str, object] | None,
        unknown_status_timeout: float | None,
    ) -> None:
        super().__init__()
        self.carol_conn_id = carol_conn_id
        self.end_time = None if end_time is None else float(end_time)
        self.poll_interval = float(poll_interval)
        self.max_poll_interval = float(max_poll_interval)
        self.cancel_on_kill = bool(cancel_on_kill)
        compat.warn_trigger_on_kill_unsupported(self.cancel_on_kill)
        # Validated now, in the worker, so a bad value fails before the task defers.
        self.hook_params = RetryPolicy.from_dict(hook_params).as_dict()
        self.unknown_status_timeout = (
            None if unknown_status_timeout is None else float(unknown_status_timeout)
        )
        self.policy = WaitPolicy(
            self.poll_interval,
            self.max_poll_interval,
            self.end_time,
            unknown_status_timeout=self.unknown_status_timeout,
        )

    def _common(self) -> dict[str, Any]:
        return {
            "carol_conn_id": self.carol_conn_id,
            "end_time": self.end_time,
            "poll_interval": self.poll_interval,
            "max_poll_interval": self.max_poll_interval,
            "cancel_on_kill": self.cancel_on_kill,
            "hook_params": self.hook_params,
            "unknown_status_timeout": self.unknown_status_timeout,
        }

    def hook(self) -> CarolAsyncHook:
        """A fresh async hook with the serialised retry settings."""
        return CarolAsyncHook(self.carol_conn_id, **self.hook_params)  # type: ignore[arg-type]

    async def _cancel(self, task_ids: list[str]) -> None:
        async with self.hook() as hook:
            await asyncio.wait_for(
                hook.cancel_tasks(task_ids, "the deferred Airflow task was killed", self.log),
                ON_KILL_TIMEOUT * max(1, len(task_ids)),
            )


class CarolTaskTrigger(_CarolTrigger):
    """Wait for one Carol long task to reach COMPLETED, FAILED or CANCELED (or ``end_time``).

    Event: ``{"status": COMPLETED|FAILED|CANCELED|timeout, "carol_task_id", "error", "logs_tail"}``.

    :param carol_task_id: the long task to watch.
    :param carol_conn_id: the ``carol`` connection.
    :param end_time: wall-clock epoch seconds after which a ``timeout`` event is sent (None: never).
    :param poll_interval: first pause between polls, seconds; grows x1.5 up to ``max_poll_interval``.
    :param max_poll_interval: cap of the pause between polls, seconds.
    :param cancel_on_kill: cancel the Carol task when a user kills the deferred Airflow task.
    :param logs_tail: how many Carol log lines to attach to a FAILED/CANCELED event.
    :param hook_params: the hook's retry settings (``retry_limit``, ``retry_delay``, ``max_retry_wait``).
    :param unknown_status_timeout: seconds an unknown status may last before the wait ends in an error.
    :param timeout_reason: echoed as ``reason`` in a ``timeout`` event (the operator's ``timeout`` or the
        task's ``execution_timeout``), so the worker knows which limit ended the wait.

    An error that ends the wait (the task vanished, refused credentials, an unknown status that lasted
    too long) becomes an ``error`` event naming the error type; the worker raises the same error.
    """

    def __init__(
        self,
        carol_task_id: str,
        carol_conn_id: str = "carol_default",
        *,
        end_time: float | None = None,
        poll_interval: float = 5.0,
        max_poll_interval: float = 60.0,
        cancel_on_kill: bool = False,
        logs_tail: int = 20,
        hook_params: Mapping[str, object] | None = None,
        unknown_status_timeout: float | None = DEFAULT_UNKNOWN_STATUS_TIMEOUT,
        timeout_reason: str = "timeout",
    ) -> None:
        required_string("carol_task_id", carol_task_id)
        super().__init__(
            carol_conn_id,
            end_time=end_time,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            cancel_on_kill=cancel_on_kill,
            hook_params=hook_params,
            unknown_status_timeout=unknown_status_timeout,
        )
        self.carol_task_id = carol_task_id
        self.logs_tail = int(logs_tail)
        self.timeout_reason = str(timeout_reason)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The class path and plain kwargs (the triggerer rebuilds the trigger from them)."""
        kwargs = {
            "carol_task_id": self.carol_task_id,
            **self._common(),
            "logs_tail": self.logs_tail,
            "timeout_reason": self.timeout_reason,
        }
        return f"{type(self).__module__}.{type(self).__qualname__}", kwargs

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until terminal or ``end_time``; yield one event. Non-transient errors propagate.

        The event is yielded after the HTTP client is closed: a single-event trigger is usually never
        resumed after its yield, so nothing may still need the event loop at that point.
        """
        async with self.hook() as hook:
            try:
                event = await self._wait(hook)
            except CarolError as exc:  # the worker raises it again, with the same type
                self.log.error("Waiting for Carol task %s ended in an error: %s", self.carol_task_id, exc)
                event = error_event(self.carol_task_id, exc)
        yield TriggerEvent(event)

    async def _wait(self, hook: CarolAsyncHook) -> dict[str, Any]:
        outcome = await hook.wait_for_task(self.carol_task_id, self.policy)  # an unknown status raises
        task = outcome.task
        if outcome.timed_out or task is None:
            return {
                **self._event(TIMEOUT, f"still {outcome.last_status} at the deadline", []),
                "reason": self.timeout_reason,
            }
        tail = await hook.task_logs_tail(task.task_id, self.logs_tail) if task.state.is_failed else []
        return self._event(task.status, task.error_message, tail)

    def _event(self, status: str, error: str | None, tail: list[str]) -> dict[str, Any]:
        return {"status": status, "carol_task_id": self.carol_task_id, "error": error, "logs_tail": tail}

    async def on_kill(self) -> None:
        """Cancel the Carol task when the user kills the deferred task (never on cleanup/restart)."""
        if self.cancel_on_kill:
            await self._cancel([self.carol_task_id])


class CarolTrackTasksTrigger(_CarolTrigger):
    """Wake :class:`CarolTrackTasksOperator` when its tasks need a decision (or at ``end_time``).

    Fires when a task is FAILED/CANCELED and not awaiting a restart (it may need a reprocess), or
    when every task is terminal. ``awaiting`` maps reprocessed task ids to the start date of the run
    that failed; such a task counts as restarted once seen non-failed or with a new start date.
    Event: ``{"status": "changed"|"timeout", "statuses": {id: status}, "restarted": [ids], "state"}``.
    The trigger only watches: reprocessing and budget decisions stay on the worker. ``state`` is the
    operator's bookkeeping, echoed back verbatim in the event (``dag.test()`` in Airflow 3.3.2 drops
    ``defer(kwargs=...)`` when a trigger fires, so the event is the one channel that always arrives).
    """

    def __init__(
        self,
        carol_task_ids: list[str],
        carol_conn_id: str = "carol_default",
        *,
        awaiting: dict[str, str | None] | None = None,
        end_time: float | None = None,
        poll_interval: float = 5.0,
        max_poll_interval: float = 60.0,
        cancel_on_kill: bool = False,
        state: dict[str, Any] | None = None,
        hook_params: Mapping[str, object] | None = None,
        unknown_status_timeout: float | None = DEFAULT_UNKNOWN_STATUS_TIMEOUT,
    ) -> None:
        if not carol_task_ids:
            raise CarolConfigError("carol_task_ids must not be empty.")
        super().__init__(
            carol_conn_id,
            end_time=end_time,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            cancel_on_kill=cancel_on_kill,
            hook_params=hook_params,
            unknown_status_timeout=unknown_status_timeout,
        )
        self.carol_task_ids = list(dict.fromkeys(str(t) for t in carol_task_ids))
        self.awaiting = dict(awaiting or {})
        self.state = state

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The class path and plain kwargs (the triggerer rebuilds the trigger from them)."""
        kwargs = {"state": self.state, "carol_task_ids": self.carol_task_ids, "awaiting": self.awaiting}
        return f"{type(self).__module__}.{type(self).__qualname__}", {**kwargs, **self._common()}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll every task until a decision is needed or ``end_time``; yield one event (client closed)."""
        async with self.hook() as hook:
            try:
                outcome = await hook.watch_tasks(self.carol_task_ids, self.awaiting, self.policy)
            except CarolError as exc:  # the worker raises it again, with the same type
                self.log.error("Watching Carol tasks ended in an error: %s", exc)
                event = {**error_event(None, exc), "state": self.state}
            else:
                event = {
                    "status": TIMEOUT if outcome.timed_out else "changed",
                    "statuses": outcome.statuses,
                    "restarted": outcome.restarted,
                    "state": self.state,
                }
        yield TriggerEvent(event)

    async def on_kill(self) -> None:
        """Cancel every watched Carol task when the user kills the deferred task, if asked to."""
        if self.cancel_on_kill:
            await self._cancel(self.carol_task_ids)


def read_task_event(event: object, carol_task_id: str | None = None) -> dict[str, Any]:
    """Validate a :class:`CarolTaskTrigger` event; ``None``, a foreign id or an unknown status fail loudly."""
    if not isinstance(event, dict) or "status" not in event:
        raise CarolError(f"The Carol task trigger returned no usable event: {event!r}.")
    status = event["status"]
    if status == ERROR:
        raise_event_error(event)
    if status not in TERMINAL_STATUSES and status != TIMEOUT:
        raise CarolError(f"The Carol task trigger returned an unknown status {status!r}: {event!r}.")
    if carol_task_id is not None and event.get("carol_task_id") != carol_task_id:
        raise CarolError(
            f"The Carol task trigger reported task {event.get('carol_task_id')!r}, "
            f"expected {carol_task_id!r}."
        )
    return event


def failure_message(
    carol_task_id: str, status: str, error: str | None, tail: list[str], url: str = ""
) -> str:
    """What a failed Airflow task says: Carol's status and error, the task URL and its log tail."""
    text = f"Carol task {carol_task_id} ended {status}"
    text += f": {error}" if error else "."
    if url:
        text += f" ({url})"
    if tail:
        text += f"\nLast {len(tail)} Carol log line(s):\n" + "\n".join(f"  {line}" for line in tail)
    return text
