"""Event triggers against the sandbox over HTTP: one event per Carol event, filters, and the watermark.

A watcher trigger runs forever, so each test drives ``run()`` one event at a time. "Nothing more fires"
is checked as: the trigger polled Carol twice more after the last event and the next event is still
pending. A restart is a second trigger built from the first one's serialised kwargs with the same
state store: the stand-in below keeps values as JSON, the way Airflow's asset state store keeps them
in the metadata DB (the deployment test uses Airflow's real store through the triggerer).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

try:  # Airflow 3.2+: trigger kwargs go through the task SDK's serde
    from airflow.sdk.serde import deserialize, serialize
except ImportError:  # Airflow 2.11-3.1
    from airflow.serialization.serialized_objects import BaseSerialization

    serialize, deserialize = BaseSerialization.serialize, BaseSerialization.deserialize
from airflow.providers.common.compat.triggers import BaseEventTrigger
from airflow.triggers.base import TriggerEvent

from airflow_provider_carol.exceptions import CarolConfigError
from airflow_provider_carol.hooks.carol import CarolHook
from airflow_provider_carol.triggers.events import CarolStagingEventTrigger, CarolTaskEventTrigger
from tests.dagutil import await_until

RUNNING = [{"status": "RUNNING", "after": 0}]
TASK_POLLS = ("POST", "/api/v1/queries/filter")
STAGING_POLLS = ("GET", "/api/v1/connectors/stats/all")


class JsonStateStore:
    """Stands in for Airflow's asset state store accessor: ``aget``/``aset`` of JSON values by key."""

    def __init__(self) -> None:
        self.rows: dict[str, str] = {}

    async def aget(self, key: str, default: Any = None) -> Any:
        return json.loads(self.rows[key]) if key in self.rows else default

    async def aset(self, key: str, value: Any) -> None:
        self.rows[key] = json.dumps(value)


def rebuilt(trigger: BaseEventTrigger, store: JsonStateStore | None) -> Any:
    """What the triggerer does: serialise the kwargs, import the class, construct, inject the store."""
    classpath, kwargs = trigger.serialize()
    assert classpath == f"airflow_provider_carol.triggers.events.{type(trigger).__name__}"
    wire = json.loads(json.dumps(serialize(kwargs)))
    fresh = type(trigger)(**deserialize(wire))
    fresh.asset_state_store = store
    return fresh


def polls(sandbox: Any, kind: tuple[str, str]) -> int:
    return len(sandbox.requests(*kind))


class Watch:
    """One running watcher trigger: its next event as a pending task, and its poll count."""

    def __init__(self, trigger: Any, sandbox: Any, kind: tuple[str, str]) -> None:
        self.events: AsyncIterator[TriggerEvent] = trigger.run()
        self.sandbox, self.kind = sandbox, kind
        self.pending: asyncio.Task[TriggerEvent] | None = None

    def _next(self) -> asyncio.Task[TriggerEvent]:
        if self.pending is None:
            self.pending = asyncio.ensure_future(self.events.__anext__())
        return self.pending

    async def started(self) -> None:
        """Wait until the trigger has made its first poll (its watermark is set from then on)."""
        self._next()
        await await_until(lambda: polls(self.sandbox, self.kind) >= 1, "the first poll")
        await self.quiet()

    async def event(self) -> dict[str, Any]:
        task = self._next()
        event = await asyncio.wait_for(task, 60)
        self.pending = None
        return event.payload

    async def quiet(self) -> None:
        """Two more polls go by and no event fires."""
        task = self._next()
        seen = polls(self.sandbox, self.kind)
        await await_until(lambda: polls(self.sandbox, self.kind) >= seen + 2, "two more polls")
        await asyncio.sleep(0)
        assert not task.done(), task.result()

    async def close(self) -> None:
        if self.pending is not None:
            self.pending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await self.pending
        await self.events.aclose()  # type: ignore[attr-defined]


def task_trigger(**kwargs: Any) -> CarolTaskEventTrigger:
    return CarolTaskEventTrigger(poll_interval=0.1, max_poll_interval=1.0, **kwargs)


async def test_task_trigger_fires_once_per_finished_task_and_not_for_older_ones(carol_sandbox):
    old = carol_sandbox.create_task(RUNNING, name="nightly")
    carol_sandbox.finish_task(old)  # ended before the watcher started: start_from="now" skips it
    store = JsonStateStore()
    watch = Watch(rebuilt(task_trigger(task_names=["nightly"]), store), carol_sandbox, TASK_POLLS)
    await watch.started()
    first = carol_sandbox.create_task(RUNNING, name="nightly", task_type="EXECUTE_AI_PROCESS")
    await watch.quiet()  # RUNNING is no event
    carol_sandbox.finish_task(first, "FAILED", error="boom")
    assert await watch.event() == {
        "event": "carol_task",
        "carol_task_id": first,
        "status": "FAILED",
        "task_type": "EXECUTE_AI_PROCESS",
        "task_name": "nightly",
        "app_name": None,
        "ended_at": carol_sandbox.task(first)["mdmLastUpdated"],
        "error": "boom",
    }
    second = carol_sandbox.create_task(RUNNING, name="nightly")
    third = carol_sandbox.create_task(RUNNING, name="nightly")
    carol_sandbox.finish_task(second)
    carol_sandbox.finish_task(third, "CANCELED")
    fired = [await watch.event(), await watch.event()]
    # Oldest first; two tasks ended in the same millisecond come in id order (the watermark's tie-break).
    ended = {second: "COMPLETED", third: "CANCELED"}
    in_order = sorted(ended, key=lambda t: (carol_sandbox.task(t)["mdmLastUpdated"], t))
    assert [(e["carol_task_id"], e["status"]) for e in fired] == [(t, ended[t]) for t in in_order]
    await watch.quiet()  # each task fired exactly once
    await watch.close()


async def test_task_trigger_filters_by_status_type_name_and_app(carol_sandbox):
    trigger = task_trigger(
        statuses=["COMPLETED"], task_types=["EXECUTE_AI_PROCESS"], app_names=[carol_sandbox.app_name]
    )
    watch = Watch(rebuilt(trigger, JsonStateStore()), carol_sandbox, TASK_POLLS)
    await watch.started()
    other_app = carol_sandbox.create_task(RUNNING, task_type="EXECUTE_AI_PROCESS", app_name="other_app")
    other_type = carol_sandbox.create_task(RUNNING, app_name=carol_sandbox.app_name)
    ours = {"task_type": "EXECUTE_AI_PROCESS", "app_name": carol_sandbox.app_name}
    failed = carol_sandbox.create_task(RUNNING, **ours)
    wanted = carol_sandbox.create_task(RUNNING, **ours)
    for task_id in (other_app, other_type):
        carol_sandbox.finish_task(task_id)
    carol_sandbox.finish_task(failed, "FAILED")
    await watch.quiet()
    carol_sandbox.finish_task(wanted)
    event = await watch.event()
    assert (event["carol_task_id"], event["app_name"], event["status"]) == (
        wanted,
        carol_sandbox.app_name,
        "COMPLETED",
    )
    await watch.quiet()
    await watch.close()


async def test_task_watermark_survives_a_new_trigger_instance(carol_sandbox):
    """Restart: events before the stop never fire again; those during the gap fire once afterwards."""
    store = JsonStateStore()
    original = task_trigger(task_names=["restartable"])
    watch = Watch(rebuilt(original, store), carol_sandbox, TASK_POLLS)
    await watch.started()
    before = [carol_sandbox.create_task(RUNNING, name="restartable") for _ in range(3)]
    for task_id in before:
        carol_sandbox.finish_task(task_id)
    # Oldest first; two tasks ended in the same millisecond come in id order (the watermark's tie-break).
    in_order = sorted(before, key=lambda t: (carol_sandbox.task(t)["mdmLastUpdated"], t))
    assert [(await watch.event())["carol_task_id"] for _ in before] == in_order
    await watch.close()

    during = carol_sandbox.create_task(RUNNING, name="restartable")  # while no trigger runs
    carol_sandbox.finish_task(during)
    again = Watch(rebuilt(original, store), carol_sandbox, TASK_POLLS)
    assert (await again.event())["carol_task_id"] == during
    after = carol_sandbox.create_task(RUNNING, name="restartable")
    carol_sandbox.finish_task(after)
    assert (await again.event())["carol_task_id"] == after
    await again.quiet()
    await again.close()
    assert list(store.rows) == [original.watermark_key]


async def test_without_a_state_store_a_restart_starts_from_now_again(carol_sandbox):
    original = task_trigger(task_names=["memoryless"])
    watch = Watch(rebuilt(original, None), carol_sandbox, TASK_POLLS)
    await watch.started()
    fired = carol_sandbox.create_task(RUNNING, name="memoryless")
    carol_sandbox.finish_task(fired)
    assert (await watch.event())["carol_task_id"] == fired
    await watch.close()
    again = Watch(rebuilt(original, None), carol_sandbox, TASK_POLLS)
    await again.started()  # the fired task is not fired again (nor anything else)
    await again.close()


async def test_start_from_beginning_fires_for_tasks_that_ended_before(carol_sandbox):
    ended = carol_sandbox.create_task(RUNNING, name="history")
    carol_sandbox.finish_task(ended)
    trigger = task_trigger(task_names=["history"], start_from="beginning")
    watch = Watch(rebuilt(trigger, JsonStateStore()), carol_sandbox, TASK_POLLS)
    assert (await watch.event())["carol_task_id"] == ended
    await watch.quiet()
    await watch.close()


def staging_trigger(staging: str = "orders", **kwargs: Any) -> CarolStagingEventTrigger:
    return CarolStagingEventTrigger(staging, **{"poll_interval": 0.1, "max_poll_interval": 1.0, **kwargs})


def grown(sandbox: Any, count: int, previous: int, connector_id: str | None = None) -> dict[str, Any]:
    return {
        "event": "carol_staging_records",
        "staging": "orders",
        "connector_id": connector_id or sandbox.connector_id,
        "count": count,
        "previous_count": previous,
        "delta": count - previous,
    }


async def test_staging_trigger_fires_when_its_staging_grows_also_across_a_restart(carol_sandbox):
    carol_sandbox.complete_batch("orders", 5)  # before the watcher: counted from, not fired
    store = JsonStateStore()
    trigger = staging_trigger()
    watch = Watch(rebuilt(trigger, store), carol_sandbox, STAGING_POLLS)
    await watch.started()
    carol_sandbox.complete_batch("customers", 3)  # another staging
    await watch.quiet()
    carol_sandbox.complete_batch("orders", [{"id": 1}, {"id": 2}])
    assert await watch.event() == grown(carol_sandbox, 7, 5)
    await watch.quiet()
    await watch.close()

    carol_sandbox.complete_batch("orders", 7)  # while no trigger runs: fires once afterwards
    again = Watch(rebuilt(trigger, store), carol_sandbox, STAGING_POLLS)
    assert await again.event() == grown(carol_sandbox, 14, 7)
    await again.quiet()
    await again.close()
    assert store.rows == {trigger.watermark_key: json.dumps({"counts": {carol_sandbox.connector_id: 14}})}


async def test_staging_trigger_fires_per_connector_and_filters_by_connector(carol_sandbox):
    other = CarolHook().get_or_create_connector("elsewhere")
    everywhere = Watch(rebuilt(staging_trigger(), JsonStateStore()), carol_sandbox, STAGING_POLLS)
    its_stats = ("GET", f"/api/v1/connectors/{other}/stats")  # one connector: its own stats
    only_other = Watch(
        rebuilt(staging_trigger(connector_id=other), JsonStateStore()), carol_sandbox, its_stats
    )
    await everywhere.started()
    await only_other.started()
    carol_sandbox.complete_batch("orders", 2)  # the sandbox connector, not "elsewhere"
    assert await everywhere.event() == grown(carol_sandbox, 2, 0)
    await only_other.quiet()
    carol_sandbox.complete_batch("orders", 4, connector_id=other)
    assert await everywhere.event() == grown(carol_sandbox, 4, 0, other)
    assert await only_other.event() == grown(carol_sandbox, 4, 0, other)
    await everywhere.quiet()
    for watch in (everywhere, only_other):
        await watch.close()


async def test_a_dropped_staging_fires_again_once_it_grows(carol_sandbox):
    watch = Watch(rebuilt(staging_trigger(), JsonStateStore()), carol_sandbox, STAGING_POLLS)
    await watch.started()
    carol_sandbox.complete_batch("orders", 3)
    assert await watch.event() == grown(carol_sandbox, 3, 0)
    CarolHook().call_api(
        "v2/staging/tables/orders/drop", "DELETE", params={"connectorId": carol_sandbox.connector_id}
    )
    await watch.quiet()  # gone from the stats: the watermark goes down to 0, nothing fires
    carol_sandbox.complete_batch("orders", 2)
    assert await watch.event() == grown(carol_sandbox, 2, 0)
    await watch.close()


async def test_start_from_beginning_fires_for_records_already_there(carol_sandbox):
    carol_sandbox.complete_batch("orders", 4)
    watch = Watch(
        rebuilt(staging_trigger(start_from="beginning"), JsonStateStore()), carol_sandbox, STAGING_POLLS
    )
    assert await watch.event() == grown(carol_sandbox, 4, 0)
    await watch.quiet()
    await watch.close()


async def test_a_transient_poll_failure_is_polled_again(carol_sandbox):
    trigger = staging_trigger(max_poll_interval=0.2, hook_params={"retry_limit": 0})
    watch = Watch(rebuilt(trigger, JsonStateStore()), carol_sandbox, STAGING_POLLS)
    await watch.started()
    carol_sandbox.add_fault(STAGING_POLLS[1], method="GET", status=503, times=2)
    carol_sandbox.complete_batch("orders", 1)
    assert await watch.event() == grown(carol_sandbox, 1, 0)
    assert len(carol_sandbox.requests(path=STAGING_POLLS[1], status=503)) == 2
    await watch.close()


def test_watermark_keys_follow_the_filters_not_the_polling_settings():
    key = task_trigger(task_names=["a"]).watermark_key
    assert key == CarolTaskEventTrigger(task_names=["a"], poll_interval=5).watermark_key
    assert key != task_trigger(task_names=["b"]).watermark_key
    assert CarolStagingEventTrigger("x").watermark_key != CarolStagingEventTrigger("y").watermark_key
    assert (
        CarolStagingEventTrigger("x").watermark_key
        != CarolStagingEventTrigger("x", connector_id="c").watermark_key
    )


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: CarolTaskEventTrigger(statuses=["RUNNING"]), "statuses"),
        (lambda: CarolTaskEventTrigger(task_names=[""]), "task_names"),
        (lambda: CarolTaskEventTrigger(start_from="yesterday"), "start_from"),
        (lambda: CarolTaskEventTrigger(poll_interval=0), "poll_interval"),
        (lambda: CarolStagingEventTrigger(""), "staging"),
        (lambda: CarolStagingEventTrigger("x", connector_id=""), "connector_id"),
        (lambda: CarolStagingEventTrigger("x", hook_params={"retry_limit": -1}), "retry_limit"),
    ],
)
def test_bad_arguments_fail_at_parse_time_naming_the_field(build, field):
    with pytest.raises((CarolConfigError, ValueError), match=field):
        build()
