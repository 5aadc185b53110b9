"""CarolTaskSensor: defers without holding a worker slot, pokes, fails with Carol's error and log tail.

Unit-level tests call ``execute``/``execute_complete`` with a minimal TI double (only ``xcom_push``);
the DAG-level tests run ``tests/dags/dag_tasks_sensor.py`` with ``dag.test()`` against the sandbox.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from airflow.providers.common.compat.sdk import AirflowSensorTimeout, TaskDeferred

from airflow_provider_carol import compat
from airflow_provider_carol.exceptions import CarolError, CarolTaskFailed
from airflow_provider_carol.links.tasks import CarolTaskLink
from airflow_provider_carol.sensors.tasks import CarolTaskSensor
from airflow_provider_carol.triggers.tasks import CarolTaskTrigger
from tests.dagutil import load_dag, run_dag, task_context

RUNNING_LONG = [{"status": "RUNNING", "after": 0}, {"status": "COMPLETED", "after": 60}]
LINK_KEY = CarolTaskLink().xcom_key


def test_sensor_checks_once_then_defers_with_the_link_already_set(carol_sandbox):
    task_id = carol_sandbox.create_task(RUNNING_LONG)
    sensor = CarolTaskSensor(
        task_id="wait",
        carol_task_id=task_id,
        deferrable=True,
        timeout=120,
        poke_interval=0.5,
        cancel_on_kill=True,
    )
    ctx = task_context()
    before = time.time()
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(ctx)
    after = time.time()
    trigger = deferred.value.trigger
    assert isinstance(trigger, CarolTaskTrigger) and deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout is None  # the trigger enforces `timeout` itself
    assert trigger.carol_task_id == task_id and trigger.cancel_on_kill and trigger.poll_interval == 0.5
    assert before + 120 <= trigger.end_time <= after + 120  # the sensor's timeout, as a wall-clock deadline
    assert ctx["ti"].pushed[LINK_KEY].endswith(f"/{carol_sandbox.tenant}/carol-ui/tasks/{task_id}")
    # The worker has returned (no slot held) while the Carol task still runs.
    assert carol_sandbox.task(task_id)["mdmTaskStatus"] == "RUNNING"
    gets = carol_sandbox.requests(path=f"/api/v1/tasks/{task_id}")
    assert len(gets) == 1


def test_deferred_sensor_resumes_from_the_trigger_event(carol_sandbox):
    # RUNNING until the test completes it (a reprocess whose schedule completes at once): a timed
    # schedule could already be COMPLETED when the sensor first looks, on a loaded machine.
    task_id = carol_sandbox.create_task(
        [{"status": "RUNNING", "after": 0}], reprocess_schedule=[{"status": "COMPLETED", "after": 0}]
    )
    sensor = CarolTaskSensor(task_id="wait", carol_task_id=task_id, deferrable=True, poke_interval=0.2)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(task_context())
    token = carol_sandbox.issue_token()["access_token"]
    carol_sandbox.session.post(
        f"{carol_sandbox.url}/api/v1/tasks/{task_id}/reprocess", headers={"Authorization": token}, timeout=30
    ).raise_for_status()
    event = asyncio.run(deferred.value.trigger.run().__anext__())
    assert sensor.execute_complete(task_context(), event.payload) == {
        "carol_task_id": task_id,
        "status": "COMPLETED",
    }


def test_already_finished_task_does_not_defer(carol_sandbox):
    task_id = carol_sandbox.create_task([{"status": "COMPLETED", "after": 0}])
    sensor = CarolTaskSensor(task_id="wait", carol_task_id=task_id, deferrable=True)
    assert sensor.execute(task_context()) == {"carol_task_id": task_id, "status": "COMPLETED"}


def test_already_failed_task_fails_with_carols_error_and_log_tail(carol_sandbox):
    task_id = carol_sandbox.create_task([{"status": "FAILED", "after": 0}], error="quota exceeded")
    sensor = CarolTaskSensor(task_id="wait", carol_task_id=task_id, deferrable=True)
    with pytest.raises(CarolTaskFailed) as failed:
        sensor.execute(task_context())
    text = str(failed.value)
    assert "ended FAILED: quota exceeded" in text and "Carol log line" in text and task_id in text


def test_poke_mode_waits_and_succeeds(carol_sandbox):
    task_id = carol_sandbox.create_task(
        [{"status": "RUNNING", "after": 0}, {"status": "COMPLETED", "after": 1}]
    )
    sensor = CarolTaskSensor(
        task_id="wait", carol_task_id=task_id, deferrable=False, poke_interval=0.2, timeout=30
    )
    assert sensor.execute(task_context()) == {"carol_task_id": task_id, "status": "COMPLETED"}


def test_poke_mode_honours_timeout(carol_sandbox):
    task_id = carol_sandbox.create_task(RUNNING_LONG)
    sensor = CarolTaskSensor(
        task_id="wait", carol_task_id=task_id, deferrable=False, poke_interval=0.2, timeout=0.5
    )
    with pytest.raises(AirflowSensorTimeout):
        sensor.execute(task_context())


def test_poke_mode_fails_on_cancel(carol_sandbox):
    task_id = carol_sandbox.create_task(
        [{"status": "RUNNING", "after": 0}, {"status": "CANCELED", "after": 0.3}]
    )
    sensor = CarolTaskSensor(task_id="wait", carol_task_id=task_id, deferrable=False, poke_interval=0.2)
    with pytest.raises(CarolTaskFailed, match="ended CANCELED"):
        sensor.execute(task_context())


def test_execute_complete_rejects_bad_events_and_maps_timeout():
    sensor = CarolTaskSensor(task_id="wait", carol_task_id="t1", deferrable=True, timeout=10)
    with pytest.raises(CarolError, match="no usable event"):
        sensor.execute_complete(task_context(), None)
    with pytest.raises(CarolError, match="unknown status"):
        sensor.execute_complete(task_context(), {"status": "WHATEVER", "carol_task_id": "t1"})
    with pytest.raises(AirflowSensorTimeout, match="did not finish within 10"):
        sensor.execute_complete(
            task_context(), {"status": "timeout", "carol_task_id": "t1", "error": "still RUNNING"}
        )


def test_an_empty_task_id_is_rejected_before_any_request(carol_sandbox):
    with pytest.raises(CarolError, match="carol_task_id"):
        CarolTaskSensor(task_id="wait", carol_task_id="", deferrable=True).execute(task_context())
    assert carol_sandbox.requests() == []


# ------------------------------------------------------------------------------------- dag.test()
@pytest.fixture
def record_worker_runs(monkeypatch, carol_sandbox):
    """Record, each time a worker run of a task returns, its state and its Carol task's status then.

    When ``completed_deferred`` has deferred, its Carol task (held RUNNING by the DAG) is completed, so
    the trigger, not a schedule racing the machine's load, decides the second worker run.
    A worker run is the task SDK's ``run_task_in_process`` on Airflow 3; on 2.11 ``dag.test()`` calls
    ``TaskInstance._run_raw_task``, which raises ``TaskDeferred`` and runs the trigger inline.
    """
    runs = []

    def record(ti, task, state):
        carol_task_id = getattr(task, "carol_task_id", None)
        carol_status = carol_sandbox.task(carol_task_id)["mdmTaskStatus"] if carol_task_id else None
        runs.append((ti.task_id, getattr(state, "value", state), carol_status))
        if ti.task_id == "completed_deferred" and runs[-1][1:] == ("deferred", "RUNNING"):
            carol_sandbox.set_task_status(carol_task_id, "COMPLETED")

    if not compat.AIRFLOW_V_3_0_PLUS:
        from airflow.models.taskinstance import TaskInstance

        real_raw = TaskInstance._run_raw_task

        def recording_raw(ti, *args, **kwargs):
            try:
                result = real_raw(ti, *args, **kwargs)
            except TaskDeferred:
                record(ti, ti.task, "deferred")
                raise
            except Exception:  # a failed try raises out of 2.11's _run_raw_task once its state is set
                record(ti, ti.task, ti.state)
                raise
            record(ti, ti.task, ti.state)
            return result

        monkeypatch.setattr(TaskInstance, "_run_raw_task", recording_raw)
        return runs

    import airflow.sdk.execution_time.supervisor as supervisor

    real = supervisor.run_task_in_process

    def recording(ti, task):
        result = real(ti=ti, task=task)
        record(ti, result.ti.task, result.ti.state)
        return result

    monkeypatch.setattr(supervisor, "run_task_in_process", recording)
    return runs


@pytest.mark.dag
def test_sensor_dag_outcomes_in_deferred_and_poke_modes(airflow_db, carol_sandbox, record_worker_runs):
    dag_run, tis = run_dag(load_dag("dag_tasks_sensor"))
    states = {task_id: ti.state for task_id, ti in tis.items()}
    assert states == {
        "create_completed": "success",
        "completed_deferred": "success",
        "create_failed": "success",
        "failed_deferred": "failed",
        "create_canceled": "success",
        "canceled_poke": "failed",
        "create_slow": "success",
        "completed_poke": "success",
        "create_timeout": "success",
        "timeout_deferred": "failed",
    }
    assert dag_run.state == "failed"
    carol_ids = tis["create_completed"].xcom_pull(task_ids="create_completed")
    assert tis["completed_deferred"].xcom_pull(task_ids="completed_deferred") == {
        "carol_task_id": carol_ids,
        "status": "COMPLETED",
    }
    link = tis["completed_deferred"].xcom_pull(task_ids="completed_deferred", key=LINK_KEY)
    assert link.endswith(f"/carol-ui/tasks/{carol_ids}")
    # No worker slot while deferred: the worker run ended in state "deferred" while Carol was still
    # RUNNING, and the task finished in a second worker run after the trigger fired.
    runs = [(state, carol) for task_id, state, carol in record_worker_runs if task_id == "completed_deferred"]
    assert runs == [("deferred", "RUNNING"), ("success", "COMPLETED")]
    timeout_runs = [r for r in record_worker_runs if r[0] == "timeout_deferred"]
    assert [state for _, state, _ in timeout_runs] == ["deferred", "failed"]
    assert carol_sandbox.task(tis["create_timeout"].xcom_pull(task_ids="create_timeout"))[
        "mdmTaskStatus"
    ] == ("RUNNING")  # the sensor gave up but, not having been killed, left the Carol task alone
