"""Test-only DAG: CarolTrackTasksOperator reprocessing within its budget, deferred and polling.

``flaky`` fails once and completes after one reprocess; ``ok`` completes (listed twice on purpose);
``doomed`` fails on every run, so ``track_doomed`` (max_reprocess=1) must fail naming it.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_carol.operators.tasks import CarolTrackTasksOperator
from tests.dagutil import create_sandbox_task, steps

with DAG(dag_id="test_tasks_track", schedule=None, start_date=datetime(2024, 1, 1), catchup=False) as dag:

    @task(multiple_outputs=True)
    def create() -> dict[str, str]:
        return {
            "flaky": create_sandbox_task(steps("FAILED", 1), reprocess_schedule=steps("COMPLETED", 1)),
            "ok": create_sandbox_task(steps("COMPLETED", 1)),
            "doomed": create_sandbox_task(steps("FAILED", 0.5), error="bad input file"),
        }

    created = create()
    track_ok = CarolTrackTasksOperator(
        task_id="track_ok",
        task_ids=[created["flaky"], created["ok"], created["ok"]],
        max_reprocess=2,
        deferrable=True,
        poll_interval=0.3,
        timeout=60,
    )
    track_doomed = CarolTrackTasksOperator(
        task_id="track_doomed",
        task_ids=[created["doomed"], created["ok"]],
        max_reprocess=1,
        deferrable=False,
        poll_interval=0.3,
        timeout=60,
        trigger_rule="all_done",
    )
    track_ok >> track_doomed
