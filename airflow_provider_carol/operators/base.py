"""What every Carol operator shares: the connection id and a cached hook, and the one defer/complete path.

:class:`CarolHookMixin` gives operators and the sensor ``carol_conn_id``, ``hook_params`` and a ``hook``
built on first use (never at DAG parse). :class:`CarolTaskDeferral` is how the sensor and the
app-process operator hand a Carol long task to :class:`CarolTaskTrigger` and read its event back.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.providers.common.compat.sdk import AirflowTaskTimeout, BaseOperator

from airflow_provider_carol.exceptions import CarolConfigError, CarolTaskFailed
from airflow_provider_carol.hooks.carol import CarolHook
from airflow_provider_carol.hooks.core.redaction import redact_text
from airflow_provider_carol.hooks.core.retry import RetryPolicy
from airflow_provider_carol.triggers.tasks import TIMEOUT, CarolTaskTrigger, failure_message, read_task_event

if TYPE_CHECKING:
    from airflow_provider_carol.hooks.tasks.models import CarolTask

_HOOK_SETTINGS = ("retry_limit", "retry_delay", "max_retry_wait", "pool_maxsize")


def check_hook_params(hook_params: Mapping[str, object] | None) -> dict[str, object]:
    """``hook_params`` as a dict, checked when the DAG is parsed (unknown keys and bad values are named)."""
    params = dict(hook_params or {})
    unknown = sorted(set(params) - set(_HOOK_SETTINGS))
    if unknown:
        raise CarolConfigError(f"hook_params has unknown keys {unknown}; use {list(_HOOK_SETTINGS)}.")
    RetryPolicy.from_dict({k: v for k, v in params.items() if k != "pool_maxsize"})
    return params


def as_seconds(value: timedelta | float | None, name: str) -> float | None:
    """A duration given as seconds or a ``timedelta``, in seconds; negative is an error naming ``name``."""
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 0:
        raise CarolConfigError(f"{name} must not be negative, got {value!r}.")
    return seconds


def retry_settings(hook_params: Mapping[str, object]) -> dict[str, object]:
    """The part of ``hook_params`` a trigger's async hook takes (no connection pool there)."""
    return {k: v for k, v in hook_params.items() if k != "pool_maxsize"}


class CarolHookMixin:
    """``carol_conn_id``, ``hook_params`` and the cached ``hook`` of an operator or sensor."""

    carol_conn_id: str
    hook_params: dict[str, object]

    @cached_property
    def hook(self) -> CarolHook:
        """The hook, built on first use so DAG parsing never touches the connection."""
        return CarolHook(self.carol_conn_id, **self.hook_params)  # type: ignore[arg-type]


class CarolBaseOperator(CarolHookMixin, BaseOperator):
    """Base of the Carol operators.

    :param carol_conn_id: the ``carol`` connection.
    :param hook_params: the hook's transport settings: ``retry_limit``, ``retry_delay``,
        ``max_retry_wait``, ``pool_maxsize`` (also handed to triggers, which run in the triggerer).
    """

    ui_color = "#2e8fd6"

    def __init__(
        self,
        *,
        carol_conn_id: str = CarolHook.default_conn_name,
        hook_params: Mapping[str, object] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.carol_conn_id = carol_conn_id
        self.hook_params = check_hook_params(hook_params)


def execution_deadline(context: Mapping[str, Any], execution_timeout: timedelta | None) -> float | None:
    """When the task's ``execution_timeout`` ends (epoch seconds), a margin early; None without one.

    While a task is deferred, Airflow enforces ``execution_timeout`` by timing the trigger out, which
    runs no code of ours: the Carol task would be left running. So the trigger is given a deadline
    slightly earlier and ends the wait itself, and ``execute_complete`` cancels the Carol task.
    """
    if execution_timeout is None:
        return None
    ti = context.get("ti")
    started = getattr(ti, "start_date", None)
    start = started.timestamp() if started is not None else time.time()
    seconds = execution_timeout.total_seconds()
    return start + seconds - min(EXECUTION_TIMEOUT_MARGIN, max(1.0, seconds * 0.05))


#: Longest head start the trigger takes on Airflow's own ``execution_timeout`` of a deferred task.
EXECUTION_TIMEOUT_MARGIN = 30.0


class CarolTaskDeferral(CarolHookMixin):
    """Hand a running Carol task to :class:`CarolTaskTrigger` and finish from its event.

    The host class provides ``defer`` and ``execution_timeout`` (every BaseOperator does) and these
    settings: ``poll_interval``, ``max_poll_interval``, ``cancel_on_kill``, ``logs_tail``,
    ``unknown_status_timeout``.
    """

    poll_interval: float
    max_poll_interval: float
    cancel_on_kill: bool
    logs_tail: int
    unknown_status_timeout: float | None
    execution_timeout: timedelta | None

    def defer_to_carol_task(self, context: Mapping[str, Any], task: CarolTask, timeout: float | None) -> None:
        """Defer until the task is terminal, ``timeout`` seconds pass or ``execution_timeout`` nears."""
        own = None if timeout is None else time.time() + timeout
        hard = execution_deadline(context, self.execution_timeout)
        end_time, reason = own, "timeout"
        if hard is not None and (own is None or hard < own):
            end_time, reason = hard, "execution_timeout"
        self.defer(  # type: ignore[attr-defined]
            trigger=CarolTaskTrigger(
                task.task_id,
                self.carol_conn_id,
                end_time=end_time,
                poll_interval=self.poll_interval,
                max_poll_interval=self.max_poll_interval,
                cancel_on_kill=self.cancel_on_kill,
                logs_tail=self.logs_tail,
                hook_params=retry_settings(self.hook_params),
                unknown_status_timeout=self.unknown_status_timeout,
                timeout_reason=reason,
            ),
            method_name="execute_complete",
            timeout=None,  # the trigger enforces the timeouts, so execute_complete always runs
        )

    def cancel_carol_task(self, task_id: str, why: str) -> None:
        """Ask Carol to cancel a task this operator started (best effort; the Airflow log says so).

        Once per task: Airflow also calls ``on_kill`` after the timeout raised here.
        """
        done: set[str] = self.__dict__.setdefault("_carol_cancelled", set())
        if task_id in done:
            return
        done.add(task_id)
        self.hook.cancel_tasks([task_id], why, self.log)  # type: ignore[attr-defined]

    def raise_if_execution_timeout(self, event: Mapping[str, Any]) -> None:
        """A ``timeout`` event that ``execution_timeout`` caused: cancel (if ours to cancel) and time out."""
        if event.get("status") != TIMEOUT or event.get("reason") != "execution_timeout":
            return
        task_id = str(event.get("carol_task_id"))
        if self.cancel_on_kill:
            self.cancel_carol_task(task_id, f"execution_timeout of {self.execution_timeout} reached")
        raise AirflowTaskTimeout(
            f"Carol task {task_id} was still {event.get('error', 'running')} when the execution_timeout of "
            f"{self.execution_timeout} was reached."
        )

    def carol_task_event(self, event: object, carol_task_id: str | None = None) -> dict[str, Any]:
        """The trigger's event, validated (``None``, a foreign id or an unknown status fail loudly)."""
        return read_task_event(event, carol_task_id)

    def raise_task_failed(
        self, task_id: str, status: str, error: str | None, tail: list[str] | None
    ) -> NoReturn:
        """Fail with Carol's status, error, the task URL and the last log lines (fetched if not given).

        The same lines go to the Airflow task log, one per line, masked, so Carol's reason is where the
        user looks first.
        """
        if tail is None:
            tail = self.hook.task_logs_tail(task_id, self.logs_tail)
        tail = [redact_text(line) for line in tail]
        log = self.log  # type: ignore[attr-defined]
        log.error("Carol task %s ended %s: %s", task_id, status, redact_text(error or "(no error message)"))
        for line in tail:
            log.error("Carol log | %s", line)
        raise CarolTaskFailed(failure_message(task_id, status, error, tail, self.hook.task_url(task_id)))
