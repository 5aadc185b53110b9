"""Test-only DAG: task log lines (``self.log`` and a stdlib logger) routed to a Carol long task.

``start`` pushes the Carol task id (from ``dag_run.conf``) under ``LOG_TASK_ID_KEY``; ``work`` declares
with ``carol_log_task(from_task="start")`` that its lines go there; ``fixed`` names the task itself.
``test_log_bridge_env``'s task announces nothing: ``LONGTASKID`` routes it.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from airflow.providers.common.compat.sdk import DAG, BaseOperator, task

from airflow_provider_carol.log import LOG_TASK_ID_KEY, carol_log_task


class ChattyOperator(BaseOperator):
    """Writes through ``self.log`` (structlog in Airflow 3) and a plain stdlib logger."""

    def __init__(self, *, tag: str, lines: int = 3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tag = tag
        self.lines = lines

    def execute(self, context: Any) -> str:
        stdlib = logging.getLogger("carol.test.stdlib")
        for number in range(self.lines):
            self.log.info("%s self.log line %d", self.tag, number)
            stdlib.warning("%s stdlib line %d", self.tag, number)
        self.log.error("%s finished", self.tag)
        return self.tag


with DAG(dag_id="test_log_bridge", schedule=None, start_date=datetime(2024, 1, 1), catchup=False) as dag:

    @task
    def start(**context: Any) -> None:
        context["ti"].xcom_push(key=LOG_TASK_ID_KEY, value=context["dag_run"].conf["carol_task_id"])

    work = ChattyOperator(task_id="work", tag="work", on_execute_callback=carol_log_task(from_task="start"))
    start() >> work


with DAG(
    dag_id="test_log_bridge_env", schedule=None, start_date=datetime(2024, 1, 1), catchup=False
) as env_dag:
    ChattyOperator(task_id="work", tag="work")
