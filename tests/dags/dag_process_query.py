"""Test DAGs: Carol's BigQuery processQuery into a data model, deferred, and retried after a failed poll."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_carol.operators.queries import CarolProcessQueryOperator

COMMON = {"schedule": None, "start_date": datetime(2024, 1, 1), "catchup": False}
SQL = "SELECT id, name FROM `stg_erp_customers` WHERE updated >= '{{ ds }}'"

with DAG(dag_id="test_process_query", **COMMON) as dag:
    CarolProcessQueryOperator(
        task_id="process", sql=SQL, data_model="customer", deferrable=True, poll_interval=0.2, timeout=60
    )

with DAG(dag_id="test_process_query_retry", **COMMON) as retry_dag:
    CarolProcessQueryOperator(
        task_id="process",
        sql=SQL,
        data_model="customer",
        deferrable=False,
        poll_interval=0.2,
        retries=1,
        retry_delay=timedelta(0),
    )
