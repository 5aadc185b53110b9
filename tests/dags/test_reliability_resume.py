"""Test-only DAG: a streamed send whose process is SIGKILLed half-way, then run again for the same run.

The records come from the NDJSON file named in ``dag_run.conf["path"]`` (streamed in chunks, so the
kill lands with chunks acknowledged, in flight and not yet read). ``pre_execute`` writes the task
process's pid to ``$CAROL_RESUME_PID_FILE`` so the test kills exactly that process.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG

from airflow_provider_carol.operators.staging import CarolStagingSendOperator

CHUNK = 500


def write_pid(context) -> None:
    path = os.environ.get("CAROL_RESUME_PID_FILE")
    if path:
        Path(path).write_text(str(os.getpid()))


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
        pre_execute=write_pid,
    )
