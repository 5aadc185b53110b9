"""The one durable path of operators that start a Carol long task and wait for it.

Start the task (or reconnect to the one an earlier try started: its id is kept in the task state store),
push its id and link, then wait by polling or in the triggerer, and cancel it on timeout or kill.
:class:`~airflow_provider_carol.operators.apps.CarolRunAppProcessOperator` and
:class:`~airflow_provider_carol.operators.queries.CarolProcessQueryOperator` differ only in how the
task is started.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, NoReturn

from airflow.providers.common.compat.sdk import Context, conf

from airflow_provider_carol.exceptions import CarolNotFound, CarolStartedUnreadable, CarolTaskFailed
from airflow_provider_carol.hooks.core.task_state import TaskStateStore, forget, state_store
from airflow_provider_carol.hooks.tasks.models import CarolTask
from airflow_provider_carol.hooks.tasks.polling import DEFAULT_UNKNOWN_STATUS_TIMEOUT
from airflow_provider_carol.links.tasks import CarolTaskLink, persist_task_link
from airflow_provider_carol.operators.base import CarolBaseOperator, CarolTaskDeferral, as_seconds
from airflow_provider_carol.triggers.tasks import TIMEOUT

CAROL_TASK_ID_KEY = "carol_task_id"


class CarolLongTaskOperator(CarolTaskDeferral, CarolBaseOperator):
    """Start a Carol long task (subclasses say how), push its id and link, and wait for it.

    Returns the Carol task id. The start call is never resent automatically, and the started task's id
    is kept in the task state store under ``task_state_key``: after a worker crash or an Airflow retry,
    the next try reconnects to it instead of starting again (unless it ended FAILED/CANCELED).

    :param wait_for_completion: wait for the long task; False returns as soon as it is started.
    :param deferrable: wait in the triggerer; default ``[operators] default_deferrable``.
    :param poll_interval: first pause between polls, seconds (grows x1.5 up to ``max_poll_interval``).
    :param max_poll_interval: cap of the pause between polls, seconds.
    :param timeout: wait limit (seconds or timedelta); None waits forever.
    :param cancel_on_kill: cancel the Carol task when the Airflow task is killed or times out.
    :param logs_tail: Carol log lines quoted in the failure message (and written to the task log).
    :param resume: reconnect a retry to the Carol task an earlier try started, while it is running or
        after it completed; False always starts again.
    :param unknown_status_timeout: seconds a status this provider does not know may last before the task
        fails (None: wait on it like a running status).
    :param hook_params: the hook's transport settings (see :class:`CarolBaseOperator`).
    """

    operator_extra_links = (CarolTaskLink(),)
    #: Task state store key of the Carol task this Airflow task started (kept across tries).
    task_state_key = "carol_long_task_id"
    #: What the task does, for log lines and the state store's purpose ("an app process", ...).
    started_what = "a Carol long task"

    def __init__(
        self,
        *,
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 5.0,
        max_poll_interval: float = 60.0,
        timeout: timedelta | float | None = None,
        cancel_on_kill: bool = True,
        logs_tail: int = 20,
        resume: bool = True,
        unknown_status_timeout: float | None = DEFAULT_UNKNOWN_STATUS_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.timeout = as_seconds(timeout, "timeout")
        self.cancel_on_kill = cancel_on_kill
        self.logs_tail = logs_tail
        self.resume = resume
        self.unknown_status_timeout = unknown_status_timeout
        self.carol_task_id: str | None = None

    def start_carol_task(self, context: Context) -> CarolTask:
        """Start the long task (one call, never resent); subclasses implement it."""
        raise NotImplementedError

    def _store(self, context: Context) -> TaskStateStore | None:
        return state_store(context, purpose=f"the Carol task {self.started_what} started")

    def execute(self, context: Context) -> str:
        """Start the task (or reconnect to the one an earlier try started), then wait for it."""
        store = self._store(context) if self.resume else None
        task = self._earlier_task(store)
        if task is None:
            try:
                task = self.start_carol_task(context)
            except CarolStartedUnreadable:  # it may be running: point at where to find it, never resend
                persist_task_link(context, self.hook.task_url())
                self.log.error("Carol's task list, to find %s: %s", self.started_what, self.hook.task_url())
                raise
            if store is not None:  # before anything else can fail: a retry must find it
                store.set(self.task_state_key, task.task_id)
            self.log.info("Started %s: Carol task %s is %s.", self.started_what, task.task_id, task.status)
        self.carol_task_id = task.task_id
        context["ti"].xcom_push(key=CAROL_TASK_ID_KEY, value=task.task_id)
        persist_task_link(context, self.hook.task_url(task.task_id))
        if not self.wait_for_completion:
            return task.task_id
        if task.state.is_terminal:
            return self._finish(context, task.task_id, task.status, task.error_message)
        if self.deferrable:
            self.defer_to_carol_task(context, task, self.timeout)
        try:
            task = self.hook.wait_for_task(
                task.task_id,
                poll_interval=self.poll_interval,
                max_poll_interval=self.max_poll_interval,
                timeout=self.timeout,
                unknown_status_timeout=self.unknown_status_timeout,
            )
        except TimeoutError:
            self._timed_out(task.task_id)
        return self._finish(context, task.task_id, task.status, task.error_message)

    def _earlier_task(self, store: TaskStateStore | None) -> CarolTask | None:
        """The Carol task an earlier try of this Airflow task started, if it can be continued."""
        task_id = store.get(self.task_state_key) if store is not None else None
        if not isinstance(task_id, str) or not task_id:
            return None
        try:
            task = self.hook.get_task(task_id)
        except CarolNotFound:
            self.log.warning("Carol task %s of an earlier try no longer exists; starting again.", task_id)
            return None
        if task.state.is_failed:
            self.log.info("Carol task %s of an earlier try ended %s; starting again.", task_id, task.status)
            return None
        self.log.info(
            "Reconnecting to Carol task %s (%s), started by an earlier try; not starting %s again.",
            task_id,
            task.status,
            self.started_what,
        )
        return task

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> str:
        """Resume after the trigger: validate the event, then succeed, fail, or cancel on timeout."""
        event = self.carol_task_event(event)
        self.carol_task_id = event["carol_task_id"]
        self.raise_if_execution_timeout(event)
        if event["status"] == TIMEOUT:
            self._timed_out(event["carol_task_id"])
        return self._finish(
            context, event["carol_task_id"], event["status"], event.get("error"), event.get("logs_tail")
        )

    def _finish(
        self, context: Context, task_id: str, status: str, error: str | None, tail: list[str] | None = None
    ) -> str:
        if status != "COMPLETED":
            self.raise_task_failed(task_id, status, error, tail)
        self.log.info("Carol task %s COMPLETED.", task_id)
        # Done: a later run of this Airflow task (a user clear) starts the task again.
        forget(self._store(context), self.task_state_key)
        return task_id

    def _timed_out(self, task_id: str) -> NoReturn:
        if self.cancel_on_kill:
            self.cancel_carol_task(task_id, f"timeout of {self.timeout} s reached")
        raise CarolTaskFailed(f"Carol task {task_id} did not finish within {self.timeout} s.")

    def on_kill(self) -> None:
        """Cancel the Carol task (best effort) when the running, non-deferred task is killed or times out."""
        if self.cancel_on_kill and self.carol_task_id:
            self.cancel_carol_task(self.carol_task_id, "the Airflow task was killed")
