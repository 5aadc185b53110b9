"""Test DAG: move an ERP table into a Carol staging through any common-sql connection (SQLite here)."""

from __future__ import annotations

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_carol.operators.staging import CarolStagingSendOperator

with DAG(dag_id="test_ingest_sql", schedule=None, start_date=datetime(2024, 1, 1), catchup=False) as dag:
    CarolStagingSendOperator(
        task_id="send_customers",
        staging_name="customers",
        sql="SELECT id, name, balance FROM customers ORDER BY id",
        sql_conn_id="erp_db",
        chunk_size=400,
    )
