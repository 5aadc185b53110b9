"""Run a Carol app process from Airflow: read the app's settings, start a process, wait without a worker.

``settings`` puts the app's settings (a flat dict) in XCom; ``run_process`` starts the app's
``main_process`` and defers until its long task finishes, so no worker slot is held meanwhile (the
"Carol task" link shows the task in the Carol UI as soon as it starts); ``report`` uses both results and
ships its task log to the app process's Carol task (``on_execute_callback=carol_log_task(...)``), so the
run's outcome shows up in Carol's task log too. The app is the connection's ``app_name`` extra. Runs
against the Carol sandbox or a real tenant.

Shipping task logs needs Carol remote logging on the workers (see docs/logging.md)::

    AIRFLOW__LOGGING__REMOTE_LOGGING=True
    AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER=carol://carol_default
    AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS=airflow_provider_carol.log.config.LOGGING_CONFIG

Without it the DAG runs the same and the lines stay in the Airflow task log.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_carol.log import carol_log_task
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

    # The Carol task id is run_process's return value: route report's log lines to that task.
    @task(on_execute_callback=carol_log_task(from_task="run_process", key="return_value"))
    def report(app_settings: dict, carol_task_id: str) -> dict:
        """What the run used and produced (setting values, never secrets); logged into the Carol task."""
        import logging

        log = logging.getLogger("carol_app_process")
        log.info("App process finished: Carol task %s", carol_task_id)
        log.info("Target staging from the app settings: %s", app_settings.get("target_staging"))
        return {"target_staging": app_settings.get("target_staging"), "carol_task_id": carol_task_id}

    report(settings.output, run_process.output)
