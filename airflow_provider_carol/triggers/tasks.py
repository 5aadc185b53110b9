"""Triggers that wait for Carol long tasks inside the triggerer, so no worker slot is held.

Both talk to Carol only through :class:`CarolAsyncHook`, carry plain JSON kwargs, enforce an absolute
wall-clock ``end_time`` (so a timeout survives a move to another triggerer), poll with a growing
interval, and yield exactly one event. The event format and its validation live here too, so the
sensor and the operators read events the same way.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_carol.exceptions import CarolApiError, CarolConnectionError, CarolError
from airflow_provider_carol.hooks import client
from airflow_provider_carol.hooks.carol_async import CarolAsyncHook
from airflow_provider_carol.hooks.models import TERMINAL_STATUSES, CarolTask, CarolTaskState

TIMEOUT = "timeout"
BACKOFF = 1.5
#: Consecutive polls that may fail transiently (after the hook's own retries) before the error escapes.
MAX_TRANSIENT_POLL_ERRORS = 3
ON_KILL_TIMEOUT = 30.0
_CONCURRENT_POLLS = 8


def _transient(exc: CarolError) -> bool:
    if isinstance(exc, CarolConnectionError):
        return True
    return isinstance(exc, CarolApiError) and exc.status_code in client.RETRYABLE_STATUSES


class _Poller:
    """Interval growth, deadline and transient-error budget shared by both triggers."""

    def __init__(
        self, trigger: BaseTrigger, poll_interval: float, max_poll_interval: float, end_time: float | None
    ) -> None:
        self.trigger, self.end_time = trigger, end_time
        self.interval, self.cap = poll_interval, max(poll_interval, max_poll_interval)
        self.errors = 0
        self.unknown: set[str] = set()

    def timed_out(self) -> bool:
        return self.end_time is not None and time.time() >= self.end_time

    async def sleep(self) -> None:
        pause = self.interval
        if self.end_time is not None:
            pause = max(0.0, min(pause, self.end_time - time.time()))
        await asyncio.sleep(pause)
        self.interval = min(self.interval * BACKOFF, self.cap)

    async def poll(self, hook: CarolAsyncHook, task_id: str) -> CarolTask | None:
        """One GET: the task, or None after a tolerated transient failure; unknown statuses logged once."""
        try:
            task = await hook.get_task(task_id)
        except CarolError as exc:
            self.errors += 1
            if not _transient(exc) or self.errors > MAX_TRANSIENT_POLL_ERRORS:
                raise
            self.trigger.log.warning("Polling Carol task %s failed (%s); will poll again.", task_id, exc)
            return None
        self.errors = 0
        if not task.state.is_known and task.status not in self.unknown:
            self.unknown.add(task.status)
            self.trigger.log.warning(
                "Carol task %s reports unknown status %r; still waiting.", task_id, task.status
            )
        return task


async def fetch_logs_tail(hook: CarolAsyncHook, task_id: str, lines: int) -> list[str]:
    """The last ``lines`` Carol log lines of the task; a failure to read them is reported, not raised."""
    if lines <= 0:
        return []
    try:
        entries = await hook.get_task_logs(task_id)
    except CarolError as exc:
        return [f"(Carol logs unavailable: {exc})"]
    return [str(entry) for entry in entries[-lines:]]


class CarolTaskTrigger(BaseTrigger):
    """Wait for one Carol long task to reach COMPLETED, FAILED or CANCELED (or ``end_time``).

    Event: ``{"status": COMPLETED|FAILED|CANCELED|timeout, "carol_task_id", "error", "logs_tail"}``.

    :param carol_task_id: the long task to watch.
    :param carol_conn_id: the ``carol`` connection.
    :param end_time: wall-clock epoch seconds after which a ``timeout`` event is sent (None: never).
    :param poll_interval: first pause between polls, seconds; grows x1.5 up to ``max_poll_interval``.
    :param max_poll_interval: cap of the pause between polls, seconds.
    :param cancel_on_kill: cancel the Carol task when a user kills the deferred Airflow task.
    :param logs_tail: how many Carol log lines to attach to a FAILED/CANCELED event.
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
    ) -> None:
        super().__init__()
        if not isinstance(carol_task_id, str) or not carol_task_id:
            raise ValueError(f"carol_task_id must be a non-empty string, got {carol_task_id!r}.")
        if poll_interval <= 0 or max_poll_interval <= 0:
            raise ValueError("poll_interval and max_poll_interval must be positive.")
        self.carol_task_id = carol_task_id
        self.carol_conn_id = carol_conn_id
        self.end_time = None if end_time is None else float(end_time)
        self.poll_interval = float(poll_interval)
        self.max_poll_interval = float(max_poll_interval)
        self.cancel_on_kill = bool(cancel_on_kill)
        self.logs_tail = int(logs_tail)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "carol_task_id": self.carol_task_id,
                "carol_conn_id": self.carol_conn_id,
                "end_time": self.end_time,
                "poll_interval": self.poll_interval,
                "max_poll_interval": self.max_poll_interval,
                "cancel_on_kill": self.cancel_on_kill,
                "logs_tail": self.logs_tail,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until terminal or ``end_time``; yield one event. Non-transient errors propagate.

        The event is yielded after the HTTP client is closed: a single-event trigger is usually never
        resumed after its yield, so nothing may still need the event loop at that point.
        """
        async with CarolAsyncHook(self.carol_conn_id) as hook:
            event = await self._wait(hook)
        yield TriggerEvent(event)

    async def _wait(self, hook: CarolAsyncHook) -> dict[str, Any]:
        poller = _Poller(self, self.poll_interval, self.max_poll_interval, self.end_time)
        while True:
            task = await poller.poll(hook, self.carol_task_id)
            if task is not None and task.state.is_terminal:
                tail = (
                    await fetch_logs_tail(hook, task.task_id, self.logs_tail) if task.state.is_failed else []
                )
                return self._event(task.status, task.error_message, tail)
            if poller.timed_out():
                status = task.status if task is not None else "unknown"
                return self._event(TIMEOUT, f"still {status} at the deadline", [])
            await poller.sleep()

    def _event(self, status: str, error: str | None, tail: list[str]) -> dict[str, Any]:
        return {"status": status, "carol_task_id": self.carol_task_id, "error": error, "logs_tail": tail}

    async def on_kill(self) -> None:
        """Cancel the Carol task when the user kills the deferred task (never on cleanup/restart)."""
        if not self.cancel_on_kill:
            return
        async with CarolAsyncHook(self.carol_conn_id) as hook:
            task = await asyncio.wait_for(hook.cancel_task(self.carol_task_id), ON_KILL_TIMEOUT)
        self.log.info("Asked Carol to cancel task %s; it is now %s.", self.carol_task_id, task.status)


class CarolTrackTasksTrigger(BaseTrigger):
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
    ) -> None:
        super().__init__()
        if not carol_task_ids:
            raise ValueError("carol_task_ids must not be empty.")
        self.carol_task_ids = list(dict.fromkeys(str(t) for t in carol_task_ids))
        self.carol_conn_id = carol_conn_id
        self.awaiting = dict(awaiting or {})
        self.end_time = None if end_time is None else float(end_time)
        self.poll_interval = float(poll_interval)
        self.max_poll_interval = float(max_poll_interval)
        self.cancel_on_kill = bool(cancel_on_kill)
        self.state = state

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "state": self.state,
                "carol_task_ids": self.carol_task_ids,
                "carol_conn_id": self.carol_conn_id,
                "awaiting": self.awaiting,
                "end_time": self.end_time,
                "poll_interval": self.poll_interval,
                "max_poll_interval": self.max_poll_interval,
                "cancel_on_kill": self.cancel_on_kill,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll every task until a decision is needed or ``end_time``; yield one event (client closed)."""
        async with CarolAsyncHook(self.carol_conn_id) as hook:
            event = await self._wait(hook)
        yield TriggerEvent(event)

    async def _wait(self, hook: CarolAsyncHook) -> dict[str, Any]:
        poller = _Poller(self, self.poll_interval, self.max_poll_interval, self.end_time)
        awaiting, restarted, statuses = dict(self.awaiting), [], {}
        limit = asyncio.Semaphore(_CONCURRENT_POLLS)

        async def one(task_id: str) -> CarolTask | None:
            async with limit:
                return await poller.poll(hook, task_id)

        while True:
            for task in filter(None, await asyncio.gather(*(one(t) for t in self.carol_task_ids))):
                statuses[task.task_id] = task.status
                if task.task_id in awaiting and (
                    not task.state.is_failed or task.started != awaiting[task.task_id]
                ):
                    del awaiting[task.task_id]
                    restarted.append(task.task_id)
            decide = self._needs_decision(statuses, awaiting)
            if decide or poller.timed_out():
                status = "changed" if decide else TIMEOUT
                return {"status": status, "statuses": statuses, "restarted": restarted, "state": self.state}
            await poller.sleep()

    def _needs_decision(self, statuses: dict[str, str], awaiting: dict[str, str | None]) -> bool:
        states = {t: CarolTaskState.of(statuses.get(t)) for t in self.carol_task_ids}
        if any(s.is_failed and t not in awaiting for t, s in states.items()):
            return True
        return all(s.value in TERMINAL_STATUSES and t not in awaiting for t, s in states.items())

    async def on_kill(self) -> None:
        """Cancel every watched Carol task when the user kills the deferred task, if asked to."""
        if not self.cancel_on_kill:
            return
        async with CarolAsyncHook(self.carol_conn_id) as hook:
            for task_id in self.carol_task_ids:
                await asyncio.wait_for(hook.cancel_task(task_id), ON_KILL_TIMEOUT)


def read_task_event(event: Any, carol_task_id: str | None = None) -> dict[str, Any]:
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
