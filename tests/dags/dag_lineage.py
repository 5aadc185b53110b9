"""Test DAG: every data-moving Carol operator once, for the OpenLineage events tests/test_lineage.py reads.

Records go to the ``lin_orders`` staging (schema first, so the lineage carries it), come back from
BigQuery (the sandbox mirrors staging into the emulator as ``stg_sandbox_connector_lin_orders``), are
copied by CTAS and DML, read through the Storage Read API, combined in DuckDB with a local file and sent
to another staging; a planned batch spreads ``lin_invoices`` over mapped sends. ``dag_run.conf["work"]``
is a directory for the files (the test reads them back).
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_carol.operators.bigquery import CarolBigQueryOperator, CarolBigQueryReadTableOperator
from airflow_provider_carol.operators.duckdb import CarolDuckDBOperator
from airflow_provider_carol.operators.staging import (
    CarolEndBatchOperator,
    CarolStagingSchemaOperator,
    CarolStagingSendOperator,
    CarolStartBatchOperator,
)

ORDERS = [{"id": i, "region": ("north", "south")[i % 2], "amount": i * 1.5} for i in range(1, 41)]
MIRROR = "stg_sandbox_connector_lin_orders"
WORK = "{{ dag_run.conf['work'] }}"

with DAG(dag_id="test_lineage", schedule=None, start_date=datetime(2024, 1, 1), catchup=False) as dag:
    schema = CarolStagingSchemaOperator(
        task_id="schema",
        staging_name="lin_orders",
        crosswalk=["id"],
        fields={"id": "long", "region": "string", "amount": "double"},
    )
    send = CarolStagingSendOperator(task_id="send", staging_name="lin_orders", data=ORDERS, chunk_size=15)
    dry_send = CarolStagingSendOperator(
        task_id="dry_send", staging_name="lin_orders", data=ORDERS, chunk_size=15, dry_run=True
    )
    ctas = CarolBigQueryOperator(
        task_id="ctas", sql=f"CREATE TABLE lin_copy AS SELECT id, region, amount FROM {MIRROR}"
    )
    insert = CarolBigQueryOperator(
        task_id="insert", sql=f"INSERT INTO lin_copy SELECT id + 100, region, amount FROM {MIRROR}"
    )
    to_parquet = CarolBigQueryOperator(
        task_id="to_parquet",
        sql="SELECT region, COUNT(*) AS n FROM lin_copy GROUP BY region",
        output_path=WORK + "/regions.parquet",
    )
    read_table = CarolBigQueryReadTableOperator(
        task_id="read_table", table="lin_copy", output_path=WORK + "/copy.parquet"
    )
    duck_file = CarolDuckDBOperator(
        task_id="duck_file",
        queries={"big": "SELECT id, amount FROM lin_copy WHERE amount > 10"},
        files={"regions": WORK + "/regions.parquet"},
        sql="SELECT r.region, r.n, COUNT(b.id) AS big FROM regions r, big b GROUP BY r.region, r.n",
        output_path=WORK + "/summary.parquet",
    )
    duck_staging = CarolDuckDBOperator(
        task_id="duck_staging",
        tables={"copy": "lin_copy"},
        sql="SELECT region, SUM(amount) AS amount FROM copy GROUP BY region",
        staging_name="lin_by_region",
    )
    start = CarolStartBatchOperator(
        task_id="start_batch",
        partitions=[{"data": ORDERS[:25]}, {"data": ORDERS[25:]}],
        chunk_size=10,
    )
    mapped = CarolStagingSendOperator.partial(
        task_id="mapped_send", staging_name="lin_invoices"
    ).expand_kwargs(start.output)
    end = CarolEndBatchOperator(task_id="end_batch", plan=start.output["plan"], results=mapped.output)

    schema >> dry_send >> send >> ctas >> insert >> to_parquet
    to_parquet >> [read_table, duck_file] >> duck_staging >> start
