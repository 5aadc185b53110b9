"""Carol app operators: run an app process and wait for its long task; read the app's settings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.common.compat.sdk import Context

from airflow_provider_carol.hooks.tasks.models import CarolTask
from airflow_provider_carol.operators.base import CarolBaseOperator
from airflow_provider_carol.operators.longtask import CAROL_TASK_ID_KEY, CarolLongTaskOperator

__all__ = ["CAROL_TASK_ID_KEY", "CarolAppSettingsOperator", "CarolRunAppProcessOperator"]
#: Task state store key of the Carol task this Airflow task started (kept across tries).
TASK_KEY = "carol_app_process_task_id"


class CarolRunAppProcessOperator(CarolLongTaskOperator):
    """Start a Carol app process, push its long-task id, and wait for it like ``CarolTaskSensor``.

    Returns the Carol task id (so ``op.output`` can feed a sensor or a tracker). The id is also pushed
    under XCom key ``carol_task_id`` and the "Carol task" link is set before any wait. The execute call
    is never resent automatically, so a retry-safe network error cannot start the process twice, and
    the started task's id is kept in the task state store: after a worker crash or an Airflow retry, the
    next try reconnects to it instead of starting the process again (unless it ended FAILED/CANCELED).
    Waiting, resuming and cancelling live in
    :class:`~airflow_provider_carol.operators.longtask.CarolLongTaskOperator`.

    :param app_name: the Carol app (templated); None uses the connection's ``app_name`` extra.
    :param process_name: the AI process to run (templated).
    :param carol_conn_id: the ``carol`` connection.
    :param wait_for_completion: wait for the long task; False returns as soon as it is started.
    :param deferrable: wait in the triggerer; default ``[operators] default_deferrable``.
    :param poll_interval: first pause between polls, seconds (grows x1.5 up to ``max_poll_interval``).
    :param max_poll_interval: cap of the pause between polls, seconds.
    :param timeout: wait limit (seconds or timedelta); None waits forever.
    :param cancel_on_kill: cancel the Carol task when the Airflow task is killed or times out.
    :param logs_tail: Carol log lines quoted in the failure message (and written to the task log).
    :param resume: reconnect a retry to the Carol task an earlier try started, while it is running or
        after it completed; False always starts the process again.
    :param unknown_status_timeout: seconds a status this provider does not know may last before the task
        fails (None: wait on it like a running status).
    :param hook_params: the hook's transport settings (see :class:`CarolBaseOperator`).
    """

    template_fields: Sequence[str] = ("app_name", "process_name", "carol_conn_id")
    task_state_key = TASK_KEY
    started_what = "an app process"

    def __init__(self, *, process_name: str, app_name: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app_name = app_name
        self.process_name = process_name

    def start_carol_task(self, context: Context) -> CarolTask:
        """Run the app's process (the execute POST is never resent)."""
        return self.hook.start_app_process(self.app_name, self.process_name)


class CarolAppSettingsOperator(CarolBaseOperator):
    """Read a Carol app's settings as a flat ``{name: value}`` dict into XCom for downstream templating.

    Use as ``{{ ti.xcom_pull(task_ids="settings")["batch_size"] }}`` or pass ``op.output`` on.

    :param app_name: the Carol app (templated); None uses the connection's ``app_name`` extra.
    :param carol_conn_id: the ``carol`` connection.
    """

    template_fields: Sequence[str] = ("app_name", "carol_conn_id")

    def __init__(self, *, app_name: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app_name = app_name

    def execute(self, context: Context) -> dict[str, Any]:
        """Return the flattened settings (pushed as ``return_value``)."""
        settings = self.hook.get_app_settings(self.app_name)
        self.log.info("Read %d setting(s) of Carol app %s.", len(settings), self.app_name or "(connection's)")
        return settings
