"""Deployment test DAG for the UI: a deferred ``CarolTaskSensor``, then a task whose log goes to Carol too.

``tests/deployment/test_ui.py`` opens the sensor's task instance in Chromium while it is deferred (the
"Carol task" link) and ``report``'s log view once the run is done. ``report`` routes its log lines to
the Carol task the sensor waited on (``carol_log_task(from_task="wait_task")``: the sensor returns
``{"carol_task_id", "status"}``), so the same lines land in that Carol task's log through the
deployment's remote logging. The Carol task id comes in the run's conf.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, task

from airflow_provider_carol.log import carol_log_task
from airflow_provider_carol.sensors.tasks import CarolTaskSensor

with DAG(
    dag_id="deploy_ui",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["carol", "deployment-test"],
    params={"carol_task_id": ""},
) as dag:
    wait_task = CarolTaskSensor(
        task_id="wait_task",
        carol_task_id="{{ params.carol_task_id }}",
        deferrable=True,
        poke_interval=1,
        max_poll_interval=2,
        timeout=3600,
    )

    @task(on_execute_callback=carol_log_task(from_task="wait_task", key="return_value"))
    def report(outcome: dict[str, str]) -> dict[str, str]:
        """Log what the sensor saw (a stdlib logger and the task's own logger), as a report task would."""
        import logging

        log = logging.getLogger("deploy_ui")
        log.info("Carol task %s ended %s", outcome["carol_task_id"], outcome["status"])
        log.warning("UI check: this warning is in the Airflow log and in the Carol task log")
        log.info("UI check: report done")
        return outcome

    report(wait_task.output)
