"""Test-only DAG: app processes that fail (deferred), complete while polling, or are started and sensed."""

from __future__ import annotations

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_carol.operators.apps import CarolRunAppProcessOperator
from airflow_provider_carol.sensors.tasks import CarolTaskSensor

with DAG(dag_id="test_tasks_apps", schedule=None, start_date=datetime(2024, 1, 1), catchup=False) as dag:
    failing = CarolRunAppProcessOperator(
        task_id="failing_deferred",
        app_name="{{ conn.carol_default.extra_dejson.app_name }}",
        process_name="failing_process",
        deferrable=True,
        poll_interval=0.3,
    )
    polling = CarolRunAppProcessOperator(
        task_id="main_polling",
        app_name=None,
        process_name="main_process",
        deferrable=False,
        poll_interval=0.3,
        trigger_rule="all_done",
    )
    started = CarolRunAppProcessOperator(
        task_id="start_only", app_name=None, process_name="main_process", wait_for_completion=False
    )
    sensed = CarolTaskSensor(
        task_id="sense", carol_task_id=started.output, deferrable=True, poke_interval=0.3
    )
    failing >> polling >> started >> sensed
