"""Test-only DAG: CarolTaskSensor on tasks that complete, fail, are canceled or outlive the timeout.

Each ``create_*`` task makes a scheduled long task in the sandbox right before its sensor runs, and
the cases run one after another (``all_done``). ``create_completed``'s task stays RUNNING until the test
completes it (tests/sensors/test_tasks.py does so once the sensor has deferred), so the deferral is
certain however slow the machine; on its own the task completes after ``HELD_FOR`` seconds.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_carol.sensors.tasks import CarolTaskSensor
from tests.dagutil import create_sandbox_task, steps

HELD_FOR = 600

with DAG(dag_id="test_tasks_sensor", schedule=None, start_date=datetime(2024, 1, 1), catchup=False) as dag:

    @task(trigger_rule="all_done")
    def create_completed() -> str:
        return create_sandbox_task(steps("COMPLETED", HELD_FOR))

    @task(trigger_rule="all_done")
    def create_failed() -> str:
        return create_sandbox_task(steps("FAILED", 1), error="simulated failure in step 2")

    @task(trigger_rule="all_done")
    def create_canceled() -> str:
        return create_sandbox_task(steps("CANCELED", 1))

    @task(trigger_rule="all_done")
    def create_slow() -> str:
        return create_sandbox_task(steps("COMPLETED", 1.5))

    @task(trigger_rule="all_done")
    def create_timeout() -> str:
        return create_sandbox_task(steps("COMPLETED", 600))

    completed = create_completed()
    completed_deferred = CarolTaskSensor(
        task_id="completed_deferred", carol_task_id=completed, deferrable=True, poke_interval=0.3
    )
    failed = create_failed()
    failed_deferred = CarolTaskSensor(
        task_id="failed_deferred", carol_task_id=failed, deferrable=True, poke_interval=0.3
    )
    canceled = create_canceled()
    canceled_poke = CarolTaskSensor(
        task_id="canceled_poke", carol_task_id=canceled, deferrable=False, mode="poke", poke_interval=0.3
    )
    slow = create_slow()
    completed_poke = CarolTaskSensor(
        task_id="completed_poke", carol_task_id=slow, deferrable=False, poke_interval=0.3
    )
    late = create_timeout()
    timeout_deferred = CarolTaskSensor(
        task_id="timeout_deferred", carol_task_id=late, deferrable=True, poke_interval=0.3, timeout=1.5
    )
    (
        completed
        >> completed_deferred
        >> failed
        >> failed_deferred
        >> canceled
        >> canceled_poke
        >> slow
        >> completed_poke
        >> late
        >> timeout_deferred
    )
