"""Deployment test DAG: one deferred ``CarolTaskSensor`` per Carol task id in the run's conf (mapped).

``tests/deployment/test_capacity.py`` creates the Carol tasks (RUNNING until it completes them),
starts a run with their ids and checks, through the sandbox's request log, that the one triggerer
waits on all of them with one login and a few connections.

The sensors start in the triggerer (Airflow's ``start_from_trigger``): the scheduler defers each mapped
instance straight to ``CarolTaskTrigger``, and the triggerer renders its ``carol_task_id`` from the
run's conf. A sensor that first runs on a worker would defer through the same trigger; starting in the
triggerer only skips that worker round-trip (about 3 s of a worker slot each here), so that a thousand
waits can be put in the triggerer within CI time. When a trigger fires, its sensor resumes on a worker
in ``execute_complete``, as any deferred sensor does.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, task
from airflow.triggers.base import StartTriggerArgs

from airflow_provider_carol.sensors.tasks import CarolTaskSensor


class TriggererStartedCarolTaskSensor(CarolTaskSensor):
    """``CarolTaskSensor`` whose wait starts in the triggerer; the id is rendered there from the conf."""

    start_from_trigger = True
    start_trigger_args = StartTriggerArgs(
        trigger_cls="airflow_provider_carol.triggers.tasks.CarolTaskTrigger",
        trigger_kwargs={
            "carol_task_id": "{{ params.carol_task_ids[ti.map_index] }}",
            "poll_interval": 2.0,
            "max_poll_interval": 5.0,
        },
        next_method="execute_complete",
        next_kwargs=None,
        timeout=None,
    )


with DAG(
    dag_id="deploy_many_sensors",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["carol", "deployment-test"],
    params={"carol_task_ids": []},
) as dag:

    @task
    def carol_task_ids(params: dict) -> list[str]:
        return list(params["carol_task_ids"])

    TriggererStartedCarolTaskSensor.partial(task_id="wait").expand(carol_task_id=carol_task_ids())
