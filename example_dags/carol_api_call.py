"""Raw Carol API calls as tasks: who am I connected as, and which connectors exist.

Runs against the Carol sandbox (``make demo``) or a real tenant through the ``carol_default``
connection.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_carol.operators.api import CarolApiOperator

with DAG(
    dag_id="carol_api_call",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["carol", "example"],
    doc_md=__doc__,
) as dag:
    tenant = CarolApiOperator(task_id="current_tenant", path="v1/tenants/current")
    connectors = CarolApiOperator(
        task_id="list_connectors",
        path="v1/connectors",
        query_params={"offset": 0, "pageSize": 50, "sortOrder": "ASC"},
    )

    @task
    def report(tenant_info: dict, connector_page: dict) -> dict:
        """Summarise what the two calls returned (names only, nothing secret)."""
        names = sorted(hit.get("mdmName", "?") for hit in connector_page.get("hits", []))
        return {"tenant": tenant_info.get("mdmName"), "connectors": names}

    report(tenant.output, connectors.output)
