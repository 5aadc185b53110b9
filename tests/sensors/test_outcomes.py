"""One table of Carol answers, run through both ways of waiting: the deferred path (trigger, then
``execute_complete``) and the poking path (``poke``) must end the same way for the same answers.

Every row ends the wait: a terminal status, a status nobody knows that lasts ``unknown_status_timeout``,
a task that vanished (404). Outcomes are compared as (result) or (exception type, message).
"""

from __future__ import annotations

import asyncio

import pytest
from airflow.providers.common.compat.sdk import PokeReturnValue

from airflow_provider_carol.exceptions import CarolError, CarolNotFound, CarolTaskFailed
from airflow_provider_carol.sensors.tasks import CarolTaskSensor
from airflow_provider_carol.triggers.tasks import CarolTaskTrigger
from tests.dagutil import task_context

RUNNING = [{"status": "RUNNING", "after": 0}]

# (row id, Carol status the task is put in or None for "no such task", error, expected outcome)
ROWS = [
    ("completed", "COMPLETED", None, ("ok", "COMPLETED")),
    ("failed", "FAILED", "disk full", (CarolTaskFailed, "ended FAILED: disk full")),
    ("canceled", "CANCELED", None, (CarolTaskFailed, "ended CANCELED")),
    ("cancelled-spelling", "CANCELLED", None, (CarolTaskFailed, "ended CANCELED")),
    ("unknown-status", "REBALANCING", None, (CarolTaskFailed, "status 'REBALANCING', which this provider")),
    ("vanished", None, None, (CarolNotFound, "HTTP 404")),
]


def outcome(call) -> tuple[object, str]:
    """What ``call()`` ended with: ("ok", status) or (exception type, message)."""
    try:
        result = call()
    except CarolError as exc:
        return type(exc), str(exc)
    if isinstance(result, PokeReturnValue):
        result = result.xcom_value
    return "ok", result["status"]


def sensor_for(task_id: str) -> CarolTaskSensor:
    return CarolTaskSensor(
        task_id="wait", carol_task_id=task_id, poke_interval=0.1, unknown_status_timeout=0, logs_tail=3
    )


def task_in(sandbox, status: str | None, error: str | None) -> str:
    if status is None:
        return "no-such-task"
    task_id = sandbox.create_task(RUNNING)
    sandbox.set_task_status(task_id, status, error=error)
    return task_id


@pytest.mark.parametrize(
    ("status", "error", "expected"), [row[1:] for row in ROWS], ids=[row[0] for row in ROWS]
)
def test_deferred_and_poking_paths_end_the_same_way(carol_sandbox, status, error, expected):
    task_id = task_in(carol_sandbox, status, error)

    poked = outcome(lambda: sensor_for(task_id).poke(task_context()))

    trigger = CarolTaskTrigger(task_id, poll_interval=0.1, unknown_status_timeout=0, logs_tail=3)
    event = asyncio.run(trigger.run().__anext__())
    deferred = outcome(lambda: sensor_for(task_id).execute_complete(task_context(), event.payload))

    assert poked == deferred  # same type, same message (Carol's error, the URL and the log tail)
    kind, text = poked
    assert kind == expected[0] and expected[1] in text, poked
