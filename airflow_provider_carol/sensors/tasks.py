"""``CarolTaskSensor``: wait for a Carol long task to finish, deferred (no worker slot) or by poking."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow.providers.common.compat.sdk import (
    AirflowSensorTimeout,
    BaseSensorOperator,
    Context,
    PokeReturnValue,
    conf,
)

from airflow_provider_carol.hooks.carol import CarolHook
from airflow_provider_carol.hooks.core.validate import required_string
from airflow_provider_carol.hooks.tasks.models import CarolTask
from airflow_provider_carol.hooks.tasks.polling import (
    DEFAULT_UNKNOWN_STATUS_TIMEOUT,
    Waiter,
    WaitPolicy,
)
from airflow_provider_carol.links.tasks import CarolTaskLink, persist_task_link
from airflow_provider_carol.operators.base import CarolTaskDeferral, check_hook_params
from airflow_provider_carol.triggers.tasks import TIMEOUT


class CarolTaskSensor(CarolTaskDeferral, BaseSensorOperator):
    """Succeed when a Carol long task is COMPLETED; fail on FAILED/CANCELED with Carol's error and logs.

    Checks once, then defers to :class:`CarolTaskTrigger` (``deferrable=True``) or pokes/reschedules.
    ``timeout`` is honoured in every mode; in deferred mode the trigger enforces it. Returns
    ``{"carol_task_id", "status"}``. The "Carol task" link is set before the first wait.

    :param carol_task_id: the long task id (templated; an ``XComArg`` such as ``op.output`` works).
    :param carol_conn_id: the ``carol`` connection.
    :param deferrable: wait in the triggerer; default ``[operators] default_deferrable``.
    :param max_poll_interval: cap of the growing pause between polls in deferred mode, seconds.
    :param cancel_on_kill: cancel the Carol task when a user kills the Airflow task (deferred or poking).
    :param logs_tail: Carol log lines quoted in the failure message (and written to the task log).
    :param unknown_status_timeout: seconds a status this provider does not know may last before the
        sensor fails (None: wait on it like a running status).
    :param hook_params: the hook's transport settings (``retry_limit``, ``retry_delay``, ...).
    """

    template_fields: Sequence[str] = ("carol_task_id", "carol_conn_id")
    operator_extra_links = (CarolTaskLink(),)
    ui_color = "#2e8fd6"

    def __init__(
        self,
        *,
        carol_task_id: str,
        carol_conn_id: str = CarolHook.default_conn_name,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        max_poll_interval: float = 60.0,
        cancel_on_kill: bool = False,
        logs_tail: int = 20,
        unknown_status_timeout: float | None = DEFAULT_UNKNOWN_STATUS_TIMEOUT,
        hook_params: Mapping[str, object] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("poke_interval", 5.0)
        super().__init__(**kwargs)
        self.carol_task_id = carol_task_id
        self.carol_conn_id = carol_conn_id
        self.hook_params = check_hook_params(hook_params)
        self.deferrable = deferrable
        self.max_poll_interval = max_poll_interval
        self.cancel_on_kill = cancel_on_kill
        self.logs_tail = logs_tail
        self.unknown_status_timeout = unknown_status_timeout
        self._waiter: Waiter | None = None

    @property
    def poll_interval(self) -> float:  # type: ignore[override]
        """The first pause between polls: the sensor's ``poke_interval``."""
        return float(self.poke_interval)

    def execute(self, context: Context) -> Any:
        """Set the link, check once, then defer (or poke/reschedule via the base class)."""
        self.carol_task_id = required_string("carol_task_id", self.carol_task_id)
        persist_task_link(context, self.hook.task_url(self.carol_task_id))
        if not self.deferrable:
            return super().execute(context)
        task = self.hook.get_task(self.carol_task_id)
        if task.state.is_terminal:
            return self._finish(task)
        self.log.info("Carol task %s is %s; deferring.", task.task_id, task.status)
        self.defer_to_carol_task(context, task, self.timeout)

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """One ``GET v1/tasks/{id}``: True when COMPLETED, raise when FAILED/CANCELED."""
        if self._waiter is None:  # unknown statuses: logged once, and bounded, as in the trigger
            policy = WaitPolicy(
                self.poll_interval, self.max_poll_interval, unknown_status_timeout=self.unknown_status_timeout
            )
            self._waiter = Waiter(policy, self.log)
        task = self.hook.get_task(self.carol_task_id)
        self._waiter.observe(task)  # raises once an unknown status lasted unknown_status_timeout
        if task.state.is_terminal:
            return PokeReturnValue(True, self._finish(task))
        self.log.info("Carol task %s is %s.", task.task_id, task.status)
        return False

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, str]:
        """Resume after the trigger: validate its event, then succeed or fail."""
        event = self.carol_task_event(event, self.carol_task_id)
        self.raise_if_execution_timeout(event)
        if event["status"] == TIMEOUT:
            raise AirflowSensorTimeout(
                f"Carol task {self.carol_task_id} did not finish within {self.timeout} s "
                f"({event.get('error')})."
            )
        if event["status"] != "COMPLETED":
            self.raise_task_failed(
                self.carol_task_id, event["status"], event.get("error"), event.get("logs_tail") or []
            )
        self.log.info("Carol task %s COMPLETED.", self.carol_task_id)
        return {"carol_task_id": self.carol_task_id, "status": event["status"]}

    def on_kill(self) -> None:
        """Poke/reschedule mode: cancel the Carol task (best effort) when asked to and the task is killed."""
        if self.cancel_on_kill:
            self.cancel_carol_task(self.carol_task_id, "the Airflow task was killed")

    def _finish(self, task: CarolTask) -> dict[str, str]:
        """Outcome of a terminal task seen on the worker (log tail fetched only on failure)."""
        if not task.state.is_successful:
            self.raise_task_failed(task.task_id, task.status, task.error_message, None)
        self.log.info("Carol task %s COMPLETED.", task.task_id)
        return {"carol_task_id": task.task_id, "status": task.status}
