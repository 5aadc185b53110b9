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

from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_carol.exceptions import CarolConfigError
from airflow_provider_carol.hooks.carol_async import CarolAsyncHook
from airflow_provider_carol.hooks.core.validate import optional_string, required_string
from airflow_provider_carol.hooks.listings import RecordCounts, Watermark, epoch_ms, task_query
from airflow_provider_carol.hooks.tasks.models import TERMINAL_STATUSES, CarolTask, CarolTaskState
from airflow_provider_carol.triggers.event_base import (
    STAGING_EVENT,
    TASK_EVENT,
    CarolEventTriggerBase,
    Found,
    filter_strings,
)


class CarolTaskEventTrigger(CarolEventTriggerBase[Watermark]):
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
        wanted = [CarolTaskState.of(s).value for s in filter_strings("statuses", statuses)]
        if not set(wanted) <= TERMINAL_STATUSES:
            raise CarolConfigError(
                f"statuses must be terminal ({', '.join(sorted(TERMINAL_STATUSES))}), got {statuses!r}."
            )
        self.statuses = sorted(wanted or TERMINAL_STATUSES)
        self.task_types = filter_strings("task_types", task_types)
        self.task_names = filter_strings("task_names", task_names)
        self.app_names = filter_strings("app_names", app_names)

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


class CarolStagingEventTrigger(CarolEventTriggerBase[RecordCounts]):
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
        self.staging = required_string("staging", staging)
        self.connector_id = optional_string("connector_id", connector_id)

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
