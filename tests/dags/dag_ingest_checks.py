"""Test DAG: a staging send that checks itself first (a dry run, a refused drift, an evolved schema)."""

from __future__ import annotations

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_carol.operators.staging import CarolStagingSchemaOperator, CarolStagingSendOperator

CUSTOMERS = [{"id": i, "name": f"c{i}", "email": f"c{i}@example.com"} for i in range(120)]
RENUMBERED = [{"id": f"C{i}", "name": f"c{i}"} for i in range(40)]

with DAG(dag_id="test_ingest_checks", schedule=None, start_date=datetime(2024, 1, 1), catchup=False) as dag:
    schema = CarolStagingSchemaOperator(
        task_id="schema",
        staging_name="customers",
        crosswalk=["id"],
        fields={"id": "integer", "name": "string"},
    )
    dry_run = CarolStagingSendOperator(
        task_id="dry_run", staging_name="customers", data=CUSTOMERS, chunk_size=50, dry_run=True
    )
    drifted = CarolStagingSendOperator(task_id="drifted", staging_name="customers", data=RENUMBERED)
    evolved = CarolStagingSendOperator(
        task_id="evolved",
        staging_name="customers",
        data=RENUMBERED,
        on_schema_drift="evolve",
        trigger_rule="all_done",
    )
    schema >> dry_run >> drifted >> evolved
