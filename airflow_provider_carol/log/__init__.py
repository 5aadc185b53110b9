"""Carol long-task logs: a stdlib handler and Airflow 3.3 remote logging (see docs/logging.md).

``from airflow_provider_carol.log import CarolLogHandler`` is the public entry point for programs;
:class:`CarolRemoteLogIO` is what ``[logging] remote_base_log_folder = carol://<conn_id>`` selects.
"""

from __future__ import annotations

from airflow_provider_carol.hooks.tasks.logs import carol_level
from airflow_provider_carol.log.handler import CarolLogHandler
from airflow_provider_carol.log.remote import (
    LOG_TASK_ID_KEY,
    CarolRemoteLogIO,
    carol_log_task,
    send_task_logs_to,
)

__all__ = [
    "LOG_TASK_ID_KEY",
    "CarolLogHandler",
    "CarolRemoteLogIO",
    "carol_level",
    "carol_log_task",
    "send_task_logs_to",
]
