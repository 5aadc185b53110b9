"""Deployment test DAG: a deferrable ``CarolTaskSensor`` and a deferrable app process, deferred together.

``tests/deployment/test_faults.py`` SIGKILLs the triggerer while both wait in it, starts a new one and
checks both tasks finish from the new triggerer without a retry. The sensor's Carol task id comes in
the run's conf (the test creates the task through the sandbox's admin API).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_carol.operators.apps import CarolRunAppProcessOperator
from airflow_provider_carol.sensors.tasks import CarolTaskSensor

with DAG(
    dag_id="deploy_deferred_restart",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["carol", "deployment-test"],
    params={"carol_task_id": ""},
) as dag:
    CarolTaskSensor(
        task_id="wait_task",
        carol_task_id="{{ params.carol_task_id }}",
        deferrable=True,
        poke_interval=1,
        max_poll_interval=2,
        timeout=3600,
    )
    CarolRunAppProcessOperator(
        task_id="run_process",
        app_name=None,
        process_name="long_process",  # runs until the test completes it
        deferrable=True,
        poll_interval=1,
        max_poll_interval=2,
        timeout=3600,
    )
