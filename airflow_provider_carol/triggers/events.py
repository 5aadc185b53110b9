"""Event triggers for event-driven scheduling: ``Asset(..., watchers=[AssetWatcher(name, trigger)])``.

* :class:`CarolTaskEventTrigger` fires once per Carol long task that reaches a terminal status and
  matches its filters (task type, task name, app, statuses);
* :class:`CarolStagingEventTrigger` fires each time Carol's record count of a staging table grows
  (connector stats, per connector).

Both poll Carol through :class:`CarolAsyncHook` (the hooks' transport: auth, retries, error mapping)
and run for as long as the asset is watched. What was already fired is a **watermark derived from
Carol's data** (the task's ``mdmLastUpdated``, ties broken by id; the staging's record count per
connector), kept in Airflow's **asset state store** (Airflow 3.3: ``self.asset_state_store``, a row
of the metadata DB per asset and key), so a new trigger instance, after a triggerer restart or on
another triggerer, carries on where the last one stopped. The watermark is written *before* each event
is yielded: an event is never fired twice; a triggerer killed in the instant between that write and
Airflow storing the event loses that one event (docs/event-driven.md). Without a state store
(Airflow < 3.3, or a trigger run outside an AssetWatcher) the watermark lives in memory and a restart
starts again from ``start_from``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Generic, Protocol, TypeVar

from airflow.providers.common.compat.triggers import BaseEventTrigger
from airflow.triggers.base import TriggerEvent

from airflow_provider_carol import compat
from airflow_provider_carol.exceptions import CarolConfigError, CarolError
from airflow_provider_carol.hooks.carol_async import CarolAsyncHook
from airflow_provider_carol.hooks.core.transport import RetryPolicy
from airflow_provider_carol.hooks.listings import RecordCounts, Watermark, epoch_ms, task_query
from airflow_provider_carol.hooks.tasks.models import TERMINAL_STATUSES, CarolTask, CarolTaskState
from airflow_provider_carol.hooks.tasks.polling import BACKOFF, is_transient

#: Where a new trigger (no watermark stored yet) starts: after what Carol already has, or before it.
START_FROM = ("now", "beginning")
TASK_EVENT = "carol_task"
STAGING_EVENT = "carol_staging_records"


#: A trigger's watermark (what it already fired), plain JSON for the asset state store.
M = TypeVar("M", Watermark, RecordCounts)
#: What one poll found: per new Carol event, the watermark once it fired and its payload. A None
#: payload moves the watermark without firing (a staging whose count went down).
Found = list[tuple[M, dict[str, Any] | None]]


class StateStore(Protocol):
    """What the triggers use of Airflow's asset state store accessor (``self.asset_state_store``)."""

    async def aget(self, key: str, default: Any = None) -> Any: ...

    async def aset(self, key: str, value: Any) -> None: ...


def _strings(name: str, values: Sequence[str] | str | None) -> list[str]:
    """A filter list: strings only, order kept, duplicates dropped; a bad value names the field."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    if not all(isinstance(v, str) and v.strip() for v in values):
        raise CarolConfigError(f"{name} must be a list of non-empty strings, got {values!r}.")
    return list(dict.fromkeys(v.strip() for v in values))


class _CarolEventTrigger(BaseEventTrigger, Generic[M]):
    """Polling loop, watermark storage and serialisation shared by both event triggers."""

    def __init__(
        self,
        carol_conn_id: str,
        *,
        poll_interval: float,
        max_poll_interval: float,
        start_from: str,
        hook_params: Mapping[str, object] | None,
    ) -> None:
        super().__init__()
        compat.warn_event_triggers_unsupported(type(self).__name__)
        if not isinstance(carol_conn_id, str) or not carol_conn_id:
            raise CarolConfigError(f"carol_conn_id must be a non-empty string, got {carol_conn_id!r}.")
        if not float(poll_interval) > 0 or float(max_poll_interval) < float(poll_interval):
            raise CarolConfigError(
                f"poll_interval must be positive and max_poll_interval at least as long, got "
                f"{poll_interval!r} and {max_poll_interval!r}."
            )
        if start_from not in START_FROM:
            raise CarolConfigError(f"start_from must be one of {START_FROM}, got {start_from!r}.")
        self.carol_conn_id = carol_conn_id
        self.poll_interval = float(poll_interval)
        self.max_poll_interval = float(max_poll_interval)
        self.start_from = start_from
        # Validated now, at DAG parse time, so a bad value fails before the watcher is registered.
        self.hook_params = RetryPolicy.from_dict(hook_params).as_dict()
        self._memory: dict[str, Any] = {}

    # -- what the subclasses define ---------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        """The fields that decide which Carol events this trigger fires for (they key its watermark)."""
        raise NotImplementedError

    def empty_mark(self) -> M:
        """The watermark before anything fired."""
        raise NotImplementedError

    def read_mark(self, raw: object) -> M | None:
        """A stored watermark (None when there is none, or it is not this trigger's kind)."""
        raise NotImplementedError

    async def poll(self, hook: CarolAsyncHook, mark: M) -> Found[M]:
        """Carol's events after ``mark``, oldest first (see :data:`Found`)."""
        raise NotImplementedError

    # -- serialisation ----------------------------------------------------------------------------
    def _common(self) -> dict[str, Any]:
        return {
            "carol_conn_id": self.carol_conn_id,
            "poll_interval": self.poll_interval,
            "max_poll_interval": self.max_poll_interval,
            "start_from": self.start_from,
            "hook_params": self.hook_params,
        }

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The class path and plain kwargs (they identify the watcher's trigger, so keep them stable)."""
        kwargs = {k: v for k, v in self.identity().items() if k != "carol_conn_id"}
        return f"{type(self).__module__}.{type(self).__qualname__}", {**kwargs, **self._common()}

    @property
    def watermark_key(self) -> str:
        """The asset-state-store key of this trigger's watermark (two watchers of one asset differ)."""
        digest = hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:16]
        return f"airflow_provider_carol.{type(self).__name__}.{digest}"

    # -- the watermark ----------------------------------------------------------------------------
    def _store(self) -> StateStore | None:
        return getattr(self, "asset_state_store", None)

    async def load_watermark(self) -> M | None:
        """The stored watermark (None before the first poll); memory when there is no state store."""
        store = self._store()
        if store is None:
            return self.read_mark(self._memory.get(self.watermark_key))
        try:
            return self.read_mark(await store.aget(self.watermark_key, None))
        except ValueError as exc:  # the accessor serves exactly one asset
            raise CarolConfigError(
                f"{type(self).__name__} must watch exactly one asset (one AssetWatcher per trigger): {exc}"
            ) from exc

    async def save_watermark(self, watermark: M) -> None:
        store = self._store()
        if store is None:
            self._memory[self.watermark_key] = watermark.to_json()
        else:
            await store.aset(self.watermark_key, watermark.to_json())

    # -- the loop ---------------------------------------------------------------------------------
    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll Carol forever; yield one event per new Carol event, after storing the new watermark."""
        if self._store() is None:
            self.log.warning(
                "No asset state store (Airflow < 3.3, or not run by an AssetWatcher): the watermark is kept "
                "in memory, so after a restart this trigger starts again from start_from=%r.",
                self.start_from,
            )
        async with CarolAsyncHook(self.carol_conn_id, **self.hook_params) as hook:  # type: ignore[arg-type]
            watermark = await self._start(hook)
            pause = self.poll_interval
            while True:
                try:
                    found = await self.poll(hook, watermark)
                except CarolError as exc:
                    if not is_transient(exc):
                        raise
                    pause = min(pause * BACKOFF, self.max_poll_interval)
                    self.log.warning("Polling Carol failed (%s); polling again in %.0f s.", exc, pause)
                else:
                    pause = self.poll_interval
                    for watermark, payload in found:
                        await self.save_watermark(watermark)  # first: never fired twice
                        if payload is not None:
                            self.log.info("Carol event %s: %s.", payload["event"], self.describe(payload))
                            yield TriggerEvent(payload)
                await asyncio.sleep(pause)

    def describe(self, payload: dict[str, Any]) -> str:
        """The event in a log line (ids and counts only)."""
        raise NotImplementedError

    async def _start(self, hook: CarolAsyncHook) -> M:
        """The stored watermark, or (first start) one past what Carol has now or before everything."""
        stored = await self.load_watermark()
        if stored is not None:
            self.log.info("Resuming after the stored watermark %s.", stored.to_json())
            return stored
        watermark = self.empty_mark()
        if self.start_from == "now":
            found = await self.poll(hook, watermark)
            watermark = found[-1][0] if found else watermark
        await self.save_watermark(watermark)
        self.log.info("First start (start_from=%r): watermark %s.", self.start_from, watermark.to_json())
        return watermark


class CarolTaskEventTrigger(_CarolEventTrigger[Watermark]):
    """Fire once for each Carol long task that ends in one of ``statuses`` and matches the filters.

    Event payload: ``{"event": "carol_task", "carol_task_id", "status", "task_type", "task_name",
    "app_name", "ended_at", "error"}``.

    :param carol_conn_id: the ``carol`` connection.
    :param statuses: terminal statuses to fire on (default COMPLETED, FAILED and CANCELED).
    :param task_types: only tasks of these ``mdmTaskType`` values (empty: any).
    :param task_names: only tasks with these ``mdmTaskName`` values (empty: any).
    :param app_names: only tasks of these Carol apps (``mdmData.carolAppName``; empty: any).
    :param poll_interval: seconds between polls.
    :param max_poll_interval: cap of the pause after failed polls (it grows x1.5 while Carol is down).
    :param start_from: ``now`` (default) ignores tasks that ended before the first poll; ``beginning``
        fires for those too. Only a trigger with no stored watermark looks at it.
    :param hook_params: the hook's retry settings (``retry_limit``, ``retry_delay``, ``max_retry_wait``).
    """

    def __init__(
        self,
        carol_conn_id: str = "carol_default",
        *,
        statuses: Sequence[str] | None = None,
        task_types: Sequence[str] | None = None,
        task_names: Sequence[str] | None = None,
        app_names: Sequence[str] | None = None,
        poll_interval: float = 30.0,
        max_poll_interval: float = 300.0,
        start_from: str = "now",
        hook_params: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(
            carol_conn_id,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            start_from=start_from,
            hook_params=hook_params,
        )
        wanted = [CarolTaskState.of(s).value for s in _strings("statuses", statuses)]
        if not set(wanted) <= TERMINAL_STATUSES:
            raise CarolConfigError(
                f"statuses must be terminal ({', '.join(sorted(TERMINAL_STATUSES))}), got {statuses!r}."
            )
        self.statuses = sorted(wanted or TERMINAL_STATUSES)
        self.task_types = _strings("task_types", task_types)
        self.task_names = _strings("task_names", task_names)
        self.app_names = _strings("app_names", app_names)

    def identity(self) -> dict[str, Any]:
        return {
            "carol_conn_id": self.carol_conn_id,
            "statuses": self.statuses,
            "task_types": self.task_types,
            "task_names": self.task_names,
            "app_names": self.app_names,
        }

    def empty_mark(self) -> Watermark:
        return Watermark()

    def read_mark(self, raw: object) -> Watermark | None:
        return Watermark.from_json(raw)

    def describe(self, payload: dict[str, Any]) -> str:
        return f"task {payload['carol_task_id']} {payload['status']}"

    async def poll(self, hook: CarolAsyncHook, mark: Watermark) -> Found[Watermark]:
        query = task_query(self.statuses, self.task_types, self.task_names, self.app_names)
        found: Found[Watermark] = []
        for task in await hook.tasks_after(query, mark):
            # Carol filtered already; checked again so an index that ignores a filter cannot fire wrongly.
            if self._wanted(task):
                mark = mark.after(epoch_ms(task.last_updated), task.task_id)
                found.append((mark, task_payload(task)))
        return found

    def _wanted(self, task: CarolTask) -> bool:
        app = task_payload(task)["app_name"]
        return (
            task.status in self.statuses
            and (not self.task_types or task.task_type in self.task_types)
            and (not self.task_names or task.name in self.task_names)
            and (not self.app_names or app in self.app_names)
        )


def task_payload(task: CarolTask) -> dict[str, Any]:
    """The event a finished task fires: the ids and facts a downstream task needs."""
    data = task.raw.get("mdmData")
    return {
        "event": TASK_EVENT,
        "carol_task_id": task.task_id,
        "status": task.status,
        "task_type": task.task_type,
        "task_name": task.name,
        "app_name": data.get("carolAppName") if isinstance(data, dict) else None,
        "ended_at": task.last_updated,
        "error": task.error_message,
    }


class CarolStagingEventTrigger(_CarolEventTrigger[RecordCounts]):
    """Fire each time Carol's record count of ``staging`` grows, once per connector whose count grew.

    Polls Carol's connector stats (``GET v1/connectors/{connector_id}/stats``, or
    ``GET v1/connectors/stats/all`` without ``connector_id``). Records that arrive between two polls
    fire one event with their sum as ``delta``; Carol's stats name no batch, so neither does the event.

    Event payload: ``{"event": "carol_staging_records", "staging", "connector_id", "count",
    "previous_count", "delta"}`` (``count``: records Carol holds now; ``previous_count``: at the last
    event, or when the watcher started).

    :param staging: the staging table.
    :param carol_conn_id: the ``carol`` connection.
    :param connector_id: only this connector's records (default: every connector, one event each).
    :param poll_interval: seconds between polls.
    :param max_poll_interval: cap of the pause after failed polls (it grows x1.5 while Carol is down).
    :param start_from: ``now`` (default) counts from what Carol holds at the first poll; ``beginning``
        from zero, so records already there fire once. Only a trigger with no stored watermark looks at it.
    :param hook_params: the hook's retry settings (``retry_limit``, ``retry_delay``, ``max_retry_wait``).
    """

    def __init__(
        self,
        staging: str,
        carol_conn_id: str = "carol_default",
        *,
        connector_id: str | None = None,
        poll_interval: float = 30.0,
        max_poll_interval: float = 300.0,
        start_from: str = "now",
        hook_params: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(
            carol_conn_id,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            start_from=start_from,
            hook_params=hook_params,
        )
        if not isinstance(staging, str) or not staging.strip():
            raise CarolConfigError(f"staging must be a non-empty string, got {staging!r}.")
        if connector_id is not None and (not isinstance(connector_id, str) or not connector_id.strip()):
            raise CarolConfigError(f"connector_id must be a non-empty string or None, got {connector_id!r}.")
        self.staging = staging.strip()
        self.connector_id = connector_id.strip() if connector_id else None

    def identity(self) -> dict[str, Any]:
        return {
            "carol_conn_id": self.carol_conn_id,
            "staging": self.staging,
            "connector_id": self.connector_id,
        }

    def empty_mark(self) -> RecordCounts:
        return RecordCounts()

    def read_mark(self, raw: object) -> RecordCounts | None:
        return RecordCounts.from_json(raw)

    def describe(self, payload: dict[str, Any]) -> str:
        return (
            f"staging {payload['staging']} of connector {payload['connector_id']}: "
            f"{payload['previous_count']} -> {payload['count']} records"
        )

    async def poll(self, hook: CarolAsyncHook, mark: RecordCounts) -> Found[RecordCounts]:
        """One event per connector whose count grew; a count that went down only lowers the watermark.

        A connector the stats no longer show the staging for counts as 0 (the staging was dropped).
        """
        found: Found[RecordCounts] = []
        counts = {
            **dict.fromkeys(mark.counts, 0),
            **await hook.staging_counts(self.staging, self.connector_id),
        }
        for connector_id, count in sorted(counts.items()):
            if self.connector_id not in (None, connector_id):
                continue
            previous = mark.get(connector_id)
            if count == previous:
                continue
            mark = mark.with_count(connector_id, count)
            if count < previous:
                self.log.warning(
                    "Staging %s of connector %s went down from %d to %d records (dropped or deleted); "
                    "firing again once it grows past %d.",
                    self.staging,
                    connector_id,
                    previous,
                    count,
                    count,
                )
                found.append((mark, None))
            else:
                found.append((mark, records_payload(self.staging, connector_id, count, previous)))
        return found


def records_payload(staging: str, connector_id: str, count: int, previous: int) -> dict[str, Any]:
    """The event a grown staging fires: where, how many records now, before, and the difference."""
    return {
        "event": STAGING_EVENT,
        "staging": staging,
        "connector_id": connector_id,
        "count": count,
        "previous_count": previous,
        "delta": count - previous,
    }
