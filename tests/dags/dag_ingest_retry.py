"""Test DAG: a send that fails part-way (the sandbox refuses a chunk) and is retried by Airflow.

The retry re-sends the same (batchId, batchIdSequence) pairs, so Carol holds every record once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_carol.operators.staging import CarolStagingSendOperator

with DAG(dag_id="test_ingest_retry", schedule=None, start_date=datetime(2024, 1, 1), catchup=False) as dag:

    @task
    def extract() -> list[dict]:
        return [{"id": i, "name": f"customer {i}", "meta": {"even": i % 2 == 0}} for i in range(1000)]

    CarolStagingSendOperator(
        task_id="send",
        staging_name="customers",
        data=extract(),
        chunk_size=100,
        max_in_flight=1,
        retries=1,
        retry_delay=timedelta(seconds=0),
    )
