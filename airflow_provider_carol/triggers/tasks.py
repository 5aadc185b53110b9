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

from airflow_provider_carol.exceptions import CarolConfigError, CarolError
from airflow_provider_carol.hooks.carol_async import CarolAsyncHook
from airflow_provider_carol.hooks.core.transport import RetryPolicy
from airflow_provider_carol.hooks.tasks.models import TERMINAL_STATUSES
from airflow_provider_carol.hooks.tasks.polling import WaitPolicy

TIMEOUT = "timeout"
ON_KILL_TIMEOUT = 30.0


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
    ) -> None:
        super().__init__()
        self.carol_conn_id = carol_conn_id
        self.end_time = None if end_time is None else float(end_time)
        self.poll_interval = float(poll_interval)
        self.max_poll_interval = float(max_poll_interval)
        self.cancel_on_kill = bool(cancel_on_kill)
        # Validated now, in the worker, so a bad value fails before the task defers.
        self.hook_params = RetryPolicy.from_dict(hook_params).as_dict()
        self.policy = WaitPolicy(self.poll_interval, self.max_poll_interval, self.end_time)

    def _common(self) -> dict[str, Any]:
        return {
            "carol_conn_id": self.carol_conn_id,
            "end_time": self.end_time,
            "poll_interval": self.poll_interval,
            "max_poll_interval": self.max_poll_interval,
            "cancel_on_kill": self.cancel_on_kill,
            "hook_params": self.hook_params,
        }

    def hook(self) -> CarolAsyncHook:
        """A fresh async hook with the serialised retry settings."""
        return CarolAsyncHook(self.carol_conn_id, **self.hook_params)  # type: ignore[arg-type]

    async def _cancel(self, task_ids: list[str]) -> None:
        async with self.hook() as hook:
            for task_id in task_ids:
                task = await asyncio.wait_for(hook.cancel_task(task_id), ON_KILL_TIMEOUT)
                self.log.info("Asked Carol to cancel task %s; it is now %s.", task_id, task.status)


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
    ) -> None:
        if not isinstance(carol_task_id, str) or not carol_task_id:
            raise CarolConfigError(f"carol_task_id must be a non-empty string, got {carol_task_id!r}.")
        super().__init__(
            carol_conn_id,
            end_time=end_time,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            cancel_on_kill=cancel_on_kill,
            hook_params=hook_params,
        )
        self.carol_task_id = carol_task_id
        self.logs_tail = int(logs_tail)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The class path and plain kwargs (the triggerer rebuilds the trigger from them)."""
        kwargs = {"carol_task_id": self.carol_task_id, **self._common(), "logs_tail": self.logs_tail}
        return f"{type(self).__module__}.{type(self).__qualname__}", kwargs

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until terminal or ``end_time``; yield one event. Non-transient errors propagate.

        The event is yielded after the HTTP client is closed: a single-event trigger is usually never
        resumed after its yield, so nothing may still need the event loop at that point.
        """
        async with self.hook() as hook:
            outcome = await hook.wait_for_task(self.carol_task_id, self.policy)
            task = outcome.task
            if outcome.timed_out or task is None:
                status = task.status if task is not None else "unknown"
                event = self._event(TIMEOUT, f"still {status} at the deadline", [])
            else:
                tail = await hook.task_logs_tail(task.task_id, self.logs_tail) if task.state.is_failed else []
                event = self._event(task.status, task.error_message, tail)
        yield TriggerEvent(event)

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
            outcome = await hook.watch_tasks(self.carol_task_ids, self.awaiting, self.policy)
        yield TriggerEvent(
            {
                "status": TIMEOUT if outcome.timed_out else "changed",
                "statuses": outcome.statuses,
                "restarted": outcome.restarted,
                "state": self.state,
            }
        )

    async def on_kill(self) -> None:
        """Cancel every watched Carol task when the user kills the deferred task, if asked to."""
        if self.cancel_on_kill:
            await self._cancel(self.carol_task_ids)


def read_task_event(event: object, carol_task_id: str | None = None) -> dict[str, Any]:
    """Validate a :class:`CarolTaskTrigger` event; ``None``, a foreign id or an unknown status fail loudly."""
    if not isinstance(event, dict) or "status" not in event:
        raise CarolError(f"The Carol task trigger returned no usable event: {event!r}.")
    status = event["status"]
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
