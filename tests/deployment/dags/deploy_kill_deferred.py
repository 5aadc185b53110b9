"""Deployment test DAG: a deferred app process and a deferred sensor, then killed by a user.

``tests/deployment/test_faults.py`` marks both task instances failed through the REST API while they
are deferred: the trigger of the app process (which started its Carol task, ``cancel_on_kill=True``)
cancels that task; the sensor's (``cancel_on_kill=False``: it only watches) leaves its task alone.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_carol.operators.apps import CarolRunAppProcessOperator
from airflow_provider_carol.sensors.tasks import CarolTaskSensor

with DAG(
    dag_id="deploy_kill_deferred",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["carol", "deployment-test"],
    params={"carol_task_id": ""},
) as dag:
    CarolRunAppProcessOperator(
        task_id="run_process",
        app_name=None,
        process_name="long_process",
        deferrable=True,
        poll_interval=1,
        max_poll_interval=2,
    )
    CarolTaskSensor(
        task_id="watch_task",
        carol_task_id="{{ params.carol_task_id }}",
        deferrable=True,
        poke_interval=1,
        max_poll_interval=2,
        timeout=3600,
    )
