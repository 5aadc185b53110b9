"""Send records to Carol, query them back in BigQuery, combine them in DuckDB, send the result to Carol.

``send_orders`` ingests generated orders into the ``orders`` staging table. In BigQuery, Carol's staging
tables are named ``stg_<connector name>_<staging>`` in the tenant's dataset; ``totals`` aggregates them
with GoogleSQL (small result, to XCom). ``by_region`` reads the table through the Storage Read API into an
in-memory DuckDB as Arrow, joins it with a local targets file and sends the result straight into the
``orders_by_region`` staging table. Runs against ``carol-sandbox --bigquery`` (which mirrors staging into a
local BigQuery emulator) or a real tenant: set the ``connector_name`` param to your connector's name.
"""

from __future__ import annotations

import csv
import tempfile
from datetime import datetime
from pathlib import Path

from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_carol.operators.bigquery import CarolBigQueryOperator
from airflow_provider_carol.operators.duckdb import CarolDuckDBOperator
from airflow_provider_carol.operators.staging import CarolStagingSendOperator

REGIONS = ("north", "south", "east", "west")
ORDERS_TABLE = "stg_{{ params.connector_name }}_orders"

with DAG(
    dag_id="carol_query_duckdb",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["carol", "example", "bigquery"],
    params={"connector_name": "sandbox_connector", "orders": 200},
    doc_md=__doc__,
) as dag:

    @task
    def make_orders(params: dict | None = None) -> list[dict]:
        """Generated orders: ids 1..N, a region each, an amount."""
        count = int((params or {}).get("orders", 200))
        return [{"id": i, "region": REGIONS[i % 4], "amount": round(i * 1.5, 2)} for i in range(1, count + 1)]

    @task
    def write_targets() -> str:
        """A local CSV of per-region targets (a file the DuckDB step joins with the Carol data)."""
        path = Path(tempfile.mkdtemp(prefix="carol-targets-")) / "targets.csv"
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["region", "target"])
            writer.writerows([(region, 5000) for region in REGIONS])
        return str(path)

    send_orders = CarolStagingSendOperator(task_id="send_orders", staging_name="orders", data=make_orders())

    totals = CarolBigQueryOperator(
        task_id="totals",
        sql=f"SELECT region, COUNT(*) AS orders, SUM(amount) AS amount FROM {ORDERS_TABLE} "
        "WHERE amount >= @min_amount GROUP BY region ORDER BY region",
        parameters={"min_amount": 0.0},
    )

    by_region = CarolDuckDBOperator(
        task_id="by_region",
        tables={"orders": {"table": ORDERS_TABLE, "columns": ["id", "region", "amount"]}},
        files={"targets": write_targets()},
        sql="SELECT o.region, COUNT(*) AS orders, SUM(o.amount) AS amount, SUM(o.amount) >= t.target AS met "
        "FROM orders o JOIN targets t USING (region) GROUP BY o.region, t.target ORDER BY o.region",
        staging_name="orders_by_region",
    )

    send_orders >> totals >> by_region
