"""Move an ERP's orders into Carol in one batch: a Parquet archive file plus open orders from its database.

1. ``seed_erp`` stands in for your ERP: it creates the ``erp_orders`` table (open orders) in the SQLite
   database of the ``sql_conn_id`` connection and writes the closed-period orders to a Parquet archive.
   In your own pipeline the table and the file already exist: drop this task, and the query then runs
   on any common-sql connection (Postgres, MySQL, MSSQL, ...).
2. ``connector`` gets or creates the Carol connector ``connector_name``; ``schema`` creates (or updates)
   the ``orders`` staging schema, inferred from the archive file, crosswalk ``id``.
3. ``start_batch`` plans ONE Carol batch over both sources (the file and the SQL query); the mapped
   ``send`` tasks send their planned sequence ranges; ``end_batch`` sends the batch summary only once
   every chunk of both sources was acknowledged.
4. ``count_in_bigquery`` reads the staged rows back through BigQuery (``stg_<connector>_orders``; every
   row carries this run's id in ``load_id``) and ``check_count`` fails unless BigQuery holds exactly the
   records the batch sent, each once.

Connections (environment variables are enough):

- ``carol_default``: Carol (``make demo`` points it at ``carol-sandbox --bigquery``);
- ``carol_erp_sqlite`` (the ``sql_conn_id`` param; any common-sql connection works for the query), e.g.
  ``AIRFLOW_CONN_CAROL_ERP_SQLITE='{"conn_type": "sqlite", "host": "/tmp/carol_ingest_erp/erp.db"}'``.
  ``seed_erp`` creates the database file's directory.

The archive file goes to ``<temp dir>/carol_ingest_erp/<run id>/`` (tasks of a run must share a disk, as
with the LocalExecutor). On a real tenant, Carol loads staging into BigQuery asynchronously: run
``count_in_bigquery`` once Carol has processed the batch (clear it and ``check_count`` to re-check).
"""

from __future__ import annotations

import re
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_carol.operators.bigquery import CarolBigQueryOperator
from airflow_provider_carol.operators.connectors import CarolCreateConnectorOperator
from airflow_provider_carol.operators.staging import (
    CarolEndBatchOperator,
    CarolStagingSchemaOperator,
    CarolStagingSendOperator,
    CarolStartBatchOperator,
)

EXAMPLE_SQLITE_CONN = '{"conn_type": "sqlite", "host": "/tmp/carol_ingest_erp/erp.db"}'
CUSTOMERS = ("ACME Ltda", "Padaria Central", "Oficina Sul", "Mercado Norte", "Farmacia Leste")
OPEN_ORDERS_SQL = (
    "SELECT id, customer, amount, ordered_at, status, :load_id AS load_id FROM erp_orders "
    "WHERE status = 'open' ORDER BY id"
)


def order(order_id: int, status: str, load_id: str) -> dict[str, Any]:
    """One generated order (deterministic, so a retried run sends the same rows)."""
    day = datetime(2024, 1, 1) + timedelta(days=order_id % 365)
    return {
        "id": order_id,
        "customer": CUSTOMERS[order_id % len(CUSTOMERS)],
        "amount": round(10 + (order_id * 37 % 1000) / 4, 2),
        "ordered_at": day.strftime("%Y-%m-%d"),
        "status": status,
        "load_id": load_id,
    }


with DAG(
    dag_id="carol_ingest_erp",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["carol", "example", "staging", "bigquery"],
    params={
        "connector_name": "erp",
        "sql_conn_id": "carol_erp_sqlite",
        "archived_orders": 1500,
        "open_orders": 700,
    },
    doc_md=__doc__,
) as dag:

    @task(multiple_outputs=True)
    def seed_erp(params: dict[str, Any] | None = None, run_id: str | None = None) -> dict[str, Any]:
        """Create the demo ERP: open orders in the SQL database, closed ones in a Parquet archive."""
        import pyarrow as pa
        import pyarrow.parquet as pq
        from airflow.providers.common.compat.sdk import AirflowNotFoundException, BaseHook

        params, run_id = params or {}, run_id or "manual"
        conn_id = params["sql_conn_id"]
        try:
            conn = BaseHook.get_connection(conn_id)
        except AirflowNotFoundException as exc:  # say how to define it
            raise ValueError(
                f"Connection {conn_id!r} (param sql_conn_id) is not defined; e.g. "
                f"export AIRFLOW_CONN_{conn_id.upper()}='{EXAMPLE_SQLITE_CONN}'"
            ) from exc
        # This task (re)creates a table: only ever in a SQLite demo database, never in a real ERP.
        if conn.conn_type != "sqlite" or not conn.host or conn.host == ":memory:":
            raise ValueError(
                f"seed_erp only seeds a SQLite file (connection {conn_id!r} is {conn.conn_type!r}, host "
                f"{conn.host!r}); to load your own ERP, remove seed_erp and point the SQL at your table."
            )
        Path(conn.host).parent.mkdir(parents=True, exist_ok=True)
        archived, open_ = int(params["archived_orders"]), int(params["open_orders"])
        rows = [order(i, "open", run_id) for i in range(archived + 1, archived + open_ + 1)]
        db = conn.get_hook()
        db.run(
            [
                "DROP TABLE IF EXISTS erp_orders",
                "CREATE TABLE erp_orders (id INTEGER PRIMARY KEY, customer TEXT, amount REAL, "
                "ordered_at TEXT, status TEXT)",
            ]
        )
        fields = ["id", "customer", "amount", "ordered_at", "status"]
        db.insert_rows("erp_orders", [[row[f] for f in fields] for row in rows], target_fields=fields)

        work = Path(tempfile.gettempdir()) / "carol_ingest_erp" / re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)
        work.mkdir(parents=True, exist_ok=True)
        archive = work / "orders_archive.parquet"
        pq.write_table(
            pa.Table.from_pylist([order(i, "closed", run_id) for i in range(1, archived + 1)]),
            archive,
            row_group_size=500,
        )
        return {"archive_file": str(archive), "archived_orders": archived, "open_orders": open_}

    erp = seed_erp()
    connector = CarolCreateConnectorOperator(
        task_id="connector", name="{{ params.connector_name }}", label="ERP orders"
    )
    schema = CarolStagingSchemaOperator(
        task_id="schema",
        staging_name="orders",
        crosswalk=["id"],
        path=erp["archive_file"],
        connector_id=connector.output,
    )
    start = CarolStartBatchOperator(
        task_id="start_batch",
        partitions=[
            erp["archive_file"],
            {
                "sql": OPEN_ORDERS_SQL,
                "sql_conn_id": "{{ params.sql_conn_id }}",
                "sql_parameters": {"load_id": "{{ run_id }}"},
            },
        ],
        connector_id=connector.output,
        chunk_size=500,
    )
    send = CarolStagingSendOperator.partial(
        task_id="send", staging_name="orders", max_in_flight=2
    ).expand_kwargs(start.output)
    end = CarolEndBatchOperator(task_id="end_batch", plan=start.output["plan"], results=send.output)

    count = CarolBigQueryOperator(
        task_id="count_in_bigquery",
        sql="SELECT COUNT(*) AS records, COUNT(DISTINCT id) AS ids "
        "FROM stg_{{ params.connector_name }}_orders WHERE load_id = @load_id",
        parameters={"load_id": "{{ run_id }}"},
    )

    @task
    def check_count(rows: list[dict[str, Any]], batch: dict[str, Any], expected: dict[str, Any]) -> dict:
        """Fail unless BigQuery holds every record of the batch exactly once."""
        found = rows[0] if rows else {"records": 0, "ids": 0}
        planned = expected["archived_orders"] + expected["open_orders"]
        if not (found["records"] == found["ids"] == batch["records"] == planned):
            raise ValueError(
                f"BigQuery holds {found['records']} rows ({found['ids']} distinct ids) of this run; "
                f"the batch sent {batch['records']} records and the ERP has {planned} orders."
            )
        return {"records": batch["records"], "bigquery_rows": found["records"], "batch_id": batch["batch_id"]}

    schema >> start
    end >> count
    check_count(count.output, end.output, erp)
