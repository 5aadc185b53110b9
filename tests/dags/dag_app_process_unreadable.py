"""Test-only DAG: an app process whose start Carol accepts with an answer naming no task, on a task with
retries: it must fail once, without a retry (a retry would start the process a second time)."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_carol.operators.apps import CarolRunAppProcessOperator

with DAG(
    dag_id="test_app_process_unreadable", schedule=None, start_date=datetime(2024, 1, 1), catchup=False
) as dag:
    CarolRunAppProcessOperator(
        task_id="run",
        app_name=None,
        process_name="main_process",
        deferrable=False,
        poll_interval=0.3,
        retries=2,
        retry_delay=timedelta(seconds=0),
    )
