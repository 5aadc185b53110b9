"""Run a Carol app process from Airflow: read the app's settings, start a process, wait without a worker.

``settings`` puts the app's settings (a flat dict) in XCom; ``run_process`` starts the app's
``main_process`` and defers until its long task finishes, so no worker slot is held meanwhile (the
"Carol task" link shows the task in the Carol UI as soon as it starts); ``report`` uses both results.
The app is the connection's ``app_name`` extra. Runs against the Carol sandbox or a real tenant.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, task

from airflow_provider_carol.operators.apps import CarolAppSettingsOperator, CarolRunAppProcessOperator

with DAG(
    dag_id="carol_app_process",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["carol", "example"],
    doc_md=__doc__,
) as dag:
    settings = CarolAppSettingsOperator(task_id="settings", app_name=None)
    run_process = CarolRunAppProcessOperator(
        task_id="run_process",
        app_name=None,  # the connection's app_name
        process_name="main_process",
        deferrable=True,
        poll_interval=1,
        timeout=3600,
    )

    @task
    def report(app_settings: dict, carol_task_id: str) -> dict:
        """What the run used and produced (setting values, never secrets)."""
        return {"target_staging": app_settings.get("target_staging"), "carol_task_id": carol_task_id}

    report(settings.output, run_process.output)
