"""Deployment test DAG: a staging send while Carol answers 503 for a while.

The test queues more 503 answers on the intake endpoint than the hook's own retries absorb, so the
first try fails and Airflow's retry finishes the batch: every record once, one exact summary.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from airflow_provider_carol.operators.staging import CarolStagingSendOperator

with DAG(
    dag_id="deploy_carol_unavailable",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["carol", "deployment-test"],
) as dag:

    @task
    def extract() -> list[dict]:
        return [{"id": i, "name": f"supplier {i}"} for i in range(1, 1001)]

    CarolStagingSendOperator(
        task_id="send",
        staging_name="suppliers",
        data=extract(),
        chunk_size=100,
        max_in_flight=1,
        retries=2,
        retry_delay=timedelta(seconds=2),
    )
