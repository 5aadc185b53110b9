"""Test-only DAG: a streamed send whose process is SIGKILLed part-way, then run again for the same run.

The records come from the NDJSON file named in ``dag_run.conf["path"]`` (streamed in chunks, so the
kill lands with chunks acknowledged, in flight and not yet read). ``pre_execute`` is
``tests.dagutil.crash_test_hooks`` (the pid to kill; the state store handed to the retry).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_carol.operators.staging import CarolStagingSendOperator
from tests.dagutil import crash_test_hooks

CHUNK = 5_000

with DAG(
    dag_id="test_reliability_resume", schedule=None, start_date=datetime(2024, 1, 1), catchup=False
) as dag:
    CarolStagingSendOperator(
        task_id="send",
        staging_name="resume",
        path="{{ dag_run.conf['path'] }}",
        chunk_size=CHUNK,
        max_in_flight=2,
        retries=1,
        retry_delay=timedelta(seconds=0),
        pre_execute=crash_test_hooks,
    )
