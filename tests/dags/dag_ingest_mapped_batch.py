"""Test DAG: one Carol batch across mapped send tasks (files planned up front), then its summary.

``dag_run.conf["files"]`` lists the Parquet/CSV/NDJSON partitions; the test writes them at run time.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_carol.operators.connectors import CarolCreateConnectorOperator
from airflow_provider_carol.operators.staging import (
    CarolEndBatchOperator,
    CarolStagingSchemaOperator,
    CarolStagingSendOperator,
    CarolStartBatchOperator,
)

with DAG(
    dag_id="test_ingest_mapped_batch",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    render_template_as_native_obj=True,
) as dag:
    connector = CarolCreateConnectorOperator(task_id="connector", name="erp", label="ERP")
    schema = CarolStagingSchemaOperator(
        task_id="schema",
        staging_name="customers",
        crosswalk=["id"],
        path="{{ dag_run.conf['files'][0] }}",
        connector_id=connector.output,
    )
    start = CarolStartBatchOperator(
        task_id="start_batch",
        partitions="{{ dag_run.conf['files'] }}",
        connector_id=connector.output,
        chunk_size=100,
    )
    send = CarolStagingSendOperator.partial(
        task_id="send", staging_name="customers", max_in_flight=2
    ).expand_kwargs(start.output)
    end = CarolEndBatchOperator(task_id="end_batch", plan=start.output["plan"], results=send.output)
    schema >> start
