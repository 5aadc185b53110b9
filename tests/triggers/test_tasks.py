"""Carol task triggers: serialise -> construct -> run against the sandbox, kill, timeout, dropped polls."""

from __future__ import annotations

import asyncio
import itertools
import json
import time

import pytest

try:  # Airflow 3.2+: trigger kwargs go through the task SDK's serde
    from airflow.sdk.serde import deserialize, serialize
except ImportError:  # Airflow 3.1: through BaseSerialization (airflow.models.trigger.Trigger.encrypt_kwargs)
    from airflow.serialization.serialized_objects import BaseSerialization

    serialize, deserialize = BaseSerialization.serialize, BaseSerialization.deserialize
from airflow.triggers.base import TriggerEvent

from airflow_provider_carol import compat
from airflow_provider_carol.exceptions import CarolError, CarolNotFound
from airflow_provider_carol.triggers.tasks import (
    CarolTaskTrigger,
    CarolTrackTasksTrigger,
    failure_message,
    read_task_event,
)
from tests.dagutil import await_until

RUN_THEN_COMPLETE = [{"status": "RUNNING", "after": 0}, {"status": "COMPLETED", "after": 1}]
RUN_THEN_FAIL = [{"status": "RUNNING", "after": 0}, {"status": "FAILED", "after": 0.5}]
RUNNING_LONG = [{"status": "RUNNING", "after": 0}]  # until the test sets another status


def polls_of(sandbox, task_id: str) -> list[dict]:
    return sandbox.requests(method="GET", path=f"/api/v1/tasks/{task_id}")


def rebuilt(trigger):
    """What the triggerer does: serialise the kwargs with Airflow's serde, import the class, construct."""
    classpath, kwargs = trigger.serialize()
    assert classpath == f"airflow_provider_carol.triggers.tasks.{type(trigger).__name__}"
    wire = json.loads(json.dumps(serialize(kwargs)))
    return type(trigger)(**deserialize(wire))


async def events(trigger) -> list[TriggerEvent]:
    return [event async for event in trigger.run()]


async def test_round_trip_trigger_reports_completion(carol_sandbox):
    task_id = carol_sandbox.create_task(RUN_THEN_COMPLETE)
    trigger = rebuilt(CarolTaskTrigger(task_id, end_time=time.time() + 30, poll_interval=0.2))
    assert (
        trigger.serialize()
        == CarolTaskTrigger(task_id, end_time=trigger.end_time, poll_interval=0.2).serialize()
    )
    assert await events(trigger) == [
        TriggerEvent({"status": "COMPLETED", "carol_task_id": task_id, "error": None, "logs_tail": []})
    ]


async def test_failed_task_event_carries_carols_error_and_the_log_tail(carol_sandbox):
    task_id = carol_sandbox.create_task(RUN_THEN_FAIL, error="disk full on node 3")
    from airflow_provider_carol.hooks.carol import CarolHook

    CarolHook().add_task_logs(task_id, [("INFO", f"step {i}") for i in range(5)])
    [event] = await events(rebuilt(CarolTaskTrigger(task_id, poll_interval=0.2, logs_tail=3)))
    payload = read_task_event(event.payload, task_id)
    assert payload["status"] == "FAILED" and payload["error"] == "disk full on node 3"
    assert len(payload["logs_tail"]) == 3 and "disk full on node 3" in payload["logs_tail"][-1]
    message = failure_message(task_id, "FAILED", payload["error"], payload["logs_tail"])
    assert "disk full on node 3" in message and "step 4" in message


async def test_canceled_task_is_terminal(carol_sandbox):
    task_id = carol_sandbox.create_task(
        [{"status": "RUNNING", "after": 0}, {"status": "CANCELED", "after": 0.3}]
    )
    [event] = await events(CarolTaskTrigger(task_id, poll_interval=0.2))
    assert event.payload["status"] == "CANCELED"


async def test_end_time_in_the_past_yields_timeout_without_waiting(carol_sandbox):
    task_id = carol_sandbox.create_task(RUNNING_LONG)
    [event] = await events(CarolTaskTrigger(task_id, end_time=time.time() - 1, poll_interval=3600))
    assert event.payload["status"] == "timeout" and "RUNNING" in event.payload["error"]
    assert len(polls_of(carol_sandbox, task_id)) == 1  # one look, then the deadline: no hour-long pause
    assert carol_sandbox.task(task_id)["cancel_count"] == 0  # a timeout is not a kill


async def test_still_running_task_keeps_the_trigger_waiting(carol_sandbox):
    task_id = carol_sandbox.create_task(RUNNING_LONG)
    pending = asyncio.ensure_future(CarolTaskTrigger(task_id, poll_interval=0.2).run().__anext__())
    await await_until(lambda: len(polls_of(carol_sandbox, task_id)) >= 4, "4 polls")
    polls = polls_of(carol_sandbox, task_id)[:4]
    assert not pending.done()
    pending.cancel()
    gaps = [later["time"] - earlier["time"] for earlier, later in itertools.pairwise(polls)]
    # Each pause is at least the growing interval (0.2, 0.3, 0.45 s); a busy machine only lengthens it.
    assert all(gap >= 0.2 * 1.5**index * 0.9 for index, gap in enumerate(gaps)), gaps


async def test_on_kill_cancels_the_carol_task_and_cleanup_does_not(carol_sandbox):
    task_id = carol_sandbox.create_task(RUNNING_LONG)
    trigger = rebuilt(CarolTaskTrigger(task_id, cancel_on_kill=True, poll_interval=0.2))
    running = asyncio.ensure_future(trigger.run().__anext__())
    await await_until(lambda: polls_of(carol_sandbox, task_id), "the trigger's first poll")
    running.cancel()
    await trigger.cleanup()
    assert carol_sandbox.task(task_id)["mdmTaskStatus"] == "RUNNING"
    await trigger.on_kill()
    task = carol_sandbox.task(task_id)
    assert (task["mdmTaskStatus"], task["cancel_count"]) == ("CANCELED", 1)


async def test_on_kill_leaves_the_task_alone_without_cancel_on_kill(carol_sandbox):
    task_id = carol_sandbox.create_task(RUNNING_LONG)
    await CarolTaskTrigger(task_id).on_kill()
    assert carol_sandbox.task(task_id)["cancel_count"] == 0


async def test_polling_survives_dropped_connections_and_5xx(carol_sandbox):
    task_id = carol_sandbox.create_task(RUN_THEN_COMPLETE)
    path = f"/api/v1/tasks/{task_id}"
    carol_sandbox.add_fault(path, method="GET", drop="before", times=2)
    carol_sandbox.add_fault(path, method="GET", drop="after", times=2)
    carol_sandbox.add_fault(path, method="GET", status=502, times=2, retry_after=0)
    [event] = await events(CarolTaskTrigger(task_id, poll_interval=0.2))
    assert event.payload["status"] == "COMPLETED"
    faults = [r["fault"] for r in carol_sandbox.requests(path=path)]
    assert (
        faults.count("drop_before") == 2 and faults.count("drop_after") == 2 and faults.count("status") == 2
    )


async def test_a_missing_task_ends_the_wait_with_an_error_event_the_worker_raises(carol_sandbox):
    [event] = await events(CarolTaskTrigger("no-such-task", poll_interval=0.2))
    assert (event.payload["status"], event.payload["error_type"]) == ("error", "CarolNotFound")
    assert len(polls_of(carol_sandbox, "no-such-task")) == 1  # a 404 is not polled again
    with pytest.raises(CarolNotFound, match="no-such-task"):
        read_task_event(event.payload, "no-such-task")


async def test_unknown_status_is_logged_once_and_waited_on(carol_sandbox, capsys, caplog):
    task_id = carol_sandbox.create_task([{"status": "REBALANCING", "after": 0}])
    waiting = asyncio.ensure_future(events(CarolTaskTrigger(task_id, poll_interval=0.2)))
    await await_until(lambda: len(polls_of(carol_sandbox, task_id)) >= 3, "3 polls of the unknown status")
    carol_sandbox.set_task_status(task_id, "COMPLETED")
    [event] = await asyncio.wait_for(waiting, 120)
    assert event.payload["status"] == "COMPLETED"
    # Airflow 3 logs through structlog (stdout); 2.11's trigger logger is a stdlib one.
    logged = capsys.readouterr().out if compat.AIRFLOW_V_3_0_PLUS else caplog.text
    assert logged.count("unknown status 'REBALANCING'") == 1


def test_read_task_event_fails_loudly_on_bad_events():
    with pytest.raises(CarolError, match="no usable event"):
        read_task_event(None)
    with pytest.raises(CarolError, match="unknown status 'EXPLODED'"):
        read_task_event({"status": "EXPLODED", "carol_task_id": "t"})
    with pytest.raises(CarolError, match="expected 't1'"):
        read_task_event({"status": "COMPLETED", "carol_task_id": "t2"}, "t1")


async def test_tracking_trigger_wakes_on_a_failure_and_echoes_the_state(carol_sandbox):
    slow = carol_sandbox.create_task(RUNNING_LONG)
    failing = carol_sandbox.create_task(RUN_THEN_FAIL)
    state = {"tracker": {"task_ids": [slow, failing]}, "end_time": None}
    trigger = rebuilt(CarolTrackTasksTrigger([slow, failing, slow], poll_interval=0.2, state=state))
    assert trigger.carol_task_ids == [slow, failing]
    [event] = await events(trigger)
    assert event.payload == {
        "status": "changed",
        "statuses": {slow: "RUNNING", failing: "FAILED"},
        "restarted": [],
        "state": state,
    }


async def test_tracking_trigger_waits_for_a_reprocessed_task_to_restart(carol_sandbox):
    task_id = carol_sandbox.create_task(RUNNING_LONG, reprocess_schedule=RUNNING_LONG)
    failed_run = carol_sandbox.set_task_status(task_id, "FAILED")
    # The operator reprocessed it and awaits a restart: the old FAILED must not wake it ...
    awaiting = {task_id: failed_run["mdmStartDate"]}
    trigger = CarolTrackTasksTrigger([task_id], awaiting=awaiting, poll_interval=0.2)
    waiting = asyncio.ensure_future(trigger.run().__anext__())
    await await_until(lambda: len(polls_of(carol_sandbox, task_id)) >= 3, "3 polls of the old failed run")
    assert not waiting.done()
    # ... nor the new run while it runs, but the new run (a new start date) failing does.
    from airflow_provider_carol.hooks.carol import CarolHook

    await asyncio.to_thread(CarolHook().reprocess_task, task_id)
    seen = len(polls_of(carol_sandbox, task_id))
    await await_until(lambda: len(polls_of(carol_sandbox, task_id)) >= seen + 2, "polls of the new run")
    assert not waiting.done()
    carol_sandbox.set_task_status(task_id, "FAILED")
    event = await asyncio.wait_for(waiting, 120)
    assert event.payload["status"] == "changed" and event.payload["restarted"] == [task_id]


async def test_tracking_trigger_on_kill_cancels_every_watched_task(carol_sandbox):
    ids = [carol_sandbox.create_task(RUNNING_LONG) for _ in range(2)]
    await CarolTrackTasksTrigger(ids, cancel_on_kill=True).on_kill()
    assert [carol_sandbox.task(t)["mdmTaskStatus"] for t in ids] == ["CANCELED", "CANCELED"]
