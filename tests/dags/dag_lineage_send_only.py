"""Test DAG: one plain staging send, run by tests/test_lineage.py with the OpenLineage provider blocked."""

from __future__ import annotations

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_carol.operators.staging import CarolStagingSendOperator

with DAG(
    dag_id="test_lineage_send_only", schedule=None, start_date=datetime(2024, 1, 1), catchup=False
) as dag:
    CarolStagingSendOperator(task_id="send", staging_name="lin_plain", data=[{"id": i} for i in range(3)])
