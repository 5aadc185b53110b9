"""Test-only DAGs for the fault matrix (tests/reliability): one DAG per Carol-calling operator.

Each DAG holds the operator under test as its only Carol-calling task, with ``retries=0``, so a cell
shows what the hook and operator do on their own. Inputs that change per run (a Carol task id) come
from ``dag_run.conf``.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_carol.operators.api import CarolApiOperator
from airflow_provider_carol.operators.apps import CarolAppSettingsOperator, CarolRunAppProcessOperator
from airflow_provider_carol.operators.bigquery import CarolBigQueryOperator
from airflow_provider_carol.operators.connectors import CarolCreateConnectorOperator
from airflow_provider_carol.operators.duckdb import CarolDuckDBOperator
from airflow_provider_carol.operators.staging import (
    CarolEndBatchOperator,
    CarolStagingSchemaOperator,
    CarolStagingSendOperator,
    CarolStartBatchOperator,
)
from airflow_provider_carol.operators.tasks import CarolTrackTasksOperator
from airflow_provider_carol.sensors.tasks import CarolTaskSensor

RECORDS = [{"id": i, "name": f"row {i}", "tags": ["a", "b"], "nested": {"n": i}} for i in range(600)]
CHUNK = 100  # 6 intake requests per send
# The large-chunk send reads an NDJSON file of hard-to-compress records (written by the test, path in
# dag_run.conf): ~1 MB gzipped per request, so a connection dropped before the server reads the body is
# seen by the client mid-upload.
LARGE_RECORDS = 4_000
LARGE_CHUNK = 2_000
TASK_ID = "{{ dag_run.conf['carol_task_id'] }}"


def _dag(dag_id: str) -> DAG:
    return DAG(
        dag_id=f"test_reliability_{dag_id}",
        schedule=None,
        start_date=datetime(2024, 1, 1),
        catchup=False,
        default_args={"retries": 0},
    )


with _dag("api_get") as api_get:
    CarolApiOperator(task_id="call", path="v1/tenants/current")

with _dag("api_post") as api_post:
    CarolApiOperator(
        task_id="call",
        path="v1/connectors",
        json={"mdmName": "matrix_api_post", "mdmGroupName": "Others", "mdmLabel": {"en-US": "m"}},
    )

with _dag("connector") as connector:
    CarolCreateConnectorOperator(task_id="call", name="matrix_connector")

with _dag("app_settings") as app_settings:
    CarolAppSettingsOperator(task_id="call", app_name=None)

with _dag("app_process") as app_process:
    CarolRunAppProcessOperator(
        task_id="call", app_name=None, process_name="main_process", deferrable=False, poll_interval=0.2
    )

with _dag("sensor_poke") as sensor_poke:
    CarolTaskSensor(task_id="call", carol_task_id=TASK_ID, deferrable=False, poke_interval=0.2, timeout=60)

with _dag("sensor_deferred") as sensor_deferred:
    CarolTaskSensor(
        task_id="call",
        carol_task_id=TASK_ID,
        deferrable=True,
        poke_interval=0.2,
        max_poll_interval=0.5,
        timeout=60,
    )

with _dag("track_tasks") as track_tasks:
    CarolTrackTasksOperator(
        task_id="call", task_ids=[TASK_ID], max_reprocess=1, deferrable=False, poll_interval=0.2, timeout=60
    )

with _dag("staging_send") as staging_send:
    CarolStagingSendOperator(
        task_id="call", staging_name="matrix", data=RECORDS, chunk_size=CHUNK, max_in_flight=2
    )

with _dag("staging_send_large") as staging_send_large:
    CarolStagingSendOperator(
        task_id="call",
        staging_name="matrix_large",
        path="{{ dag_run.conf['path'] }}",
        chunk_size=LARGE_CHUNK,
        max_in_flight=1,
    )

with _dag("staging_schema") as staging_schema:
    CarolStagingSchemaOperator(
        task_id="call", staging_name="matrix_schema", crosswalk=["id"], data=RECORDS[:20]
    )

# One batch planned across two mapped sends; "call" is the end operator that sends the summary.
with _dag("planned_batch") as planned_batch:
    start = CarolStartBatchOperator(
        task_id="start_batch", partitions=[{"data": RECORDS[:300]}, {"data": RECORDS[300:]}], chunk_size=CHUNK
    )
    sends = CarolStagingSendOperator.partial(
        task_id="send", staging_name="matrix_planned", max_in_flight=2
    ).expand_kwargs(start.output)
    CarolEndBatchOperator(task_id="call", plan=start.output["plan"], results=sends.output)

with _dag("bigquery") as bigquery:
    CarolBigQueryOperator(task_id="call", sql="SELECT 1 AS x")

# DuckDB with no BigQuery source: its Carol calls are the intake chunks and the summary of the result.
with _dag("duckdb") as duckdb_send:
    CarolDuckDBOperator(
        task_id="call",
        sql="SELECT range AS id, 'row ' || range AS name FROM range(50)",
        staging_name="matrix_duck",
    )
