"""Test-only DAGs for durable long work: a process whose worker dies, a tracking whose worker dies, and
the Carol task cancelled when ``execution_timeout`` fires (running and deferred).

``pre_execute`` is ``tests.dagutil.crash_test_hooks`` (the pid the test kills; the task state store a
``dag.test()`` retry is handed). Task ids and processes come from ``dag_run.conf``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_carol.operators.apps import CarolRunAppProcessOperator
from airflow_provider_carol.operators.tasks import CarolTrackTasksOperator
from tests.dagutil import crash_test_hooks

COMMON = {"schedule": None, "start_date": datetime(2024, 1, 1), "catchup": False}

with DAG(dag_id="test_durable_app", render_template_as_native_obj=True, **COMMON) as app_dag:
    CarolRunAppProcessOperator(
        task_id="run",
        app_name=None,
        process_name="{{ dag_run.conf.get('process', 'long_process') }}",
        deferrable=False,
        poll_interval=0.2,
        max_poll_interval=0.5,
        pre_execute=crash_test_hooks,
    )

with DAG(dag_id="test_durable_track", render_template_as_native_obj=True, **COMMON) as track_dag:
    CarolTrackTasksOperator(
        task_id="track",
        task_ids="{{ dag_run.conf['task_ids'] }}",
        max_reprocess=1,
        deferrable=False,
        poll_interval=0.2,
        max_poll_interval=0.5,
        pre_execute=crash_test_hooks,
    )

with DAG(dag_id="test_durable_timeouts", **COMMON) as timeout_dag:
    for deferrable in (False, True):
        CarolRunAppProcessOperator(
            task_id="deferred" if deferrable else "running",
            app_name=None,
            process_name="long_process",
            deferrable=deferrable,
            poll_interval=0.2,
            max_poll_interval=0.5,
            execution_timeout=timedelta(seconds=6),
        )
