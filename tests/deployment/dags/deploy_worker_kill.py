"""Deployment test DAG: one staging send of a file, slow enough to SIGKILL its Celery worker half-way.

``export`` writes ``params.records`` customers to an NDJSON file in the shared temp dir (both workers
see it, as a shared volume would); ``send`` sends it in ``chunk_size`` chunks, one request at a time.
The test slows the intake with the sandbox's latency fault, kills the worker running ``send`` once some
chunks were acknowledged, and expects Airflow's retry, on the other worker, to complete the batch with
every record stored once and one exact summary.
"""

from __future__ import annotations

import json
import re
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_carol.operators.staging import CarolStagingSendOperator

with DAG(
    dag_id="deploy_worker_kill",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["carol", "deployment-test"],
    params={"records": 3000},
) as dag:

    @task
    def export(params: dict[str, Any] | None = None, run_id: str | None = None) -> str:
        """Write the customers file (deterministic, so a retry sends the same records)."""
        count = int((params or {}).get("records", 3000))
        work = Path(tempfile.gettempdir()) / "deploy_worker_kill"
        work.mkdir(parents=True, exist_ok=True)
        path = work / (re.sub(r"[^A-Za-z0-9_.-]", "_", run_id or "manual") + ".ndjson")
        with path.open("w") as out:
            for i in range(1, count + 1):
                out.write(json.dumps({"id": i, "name": f"customer {i}", "score": i % 97}) + "\n")
        return str(path)

    CarolStagingSendOperator(
        task_id="send",
        staging_name="killed_customers",
        path=export(),
        chunk_size=100,
        max_in_flight=1,
        retries=2,
        retry_delay=timedelta(seconds=2),
    )
