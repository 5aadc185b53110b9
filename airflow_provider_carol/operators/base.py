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
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_carol.exceptions import CarolConfigError, CarolTaskFailed
from airflow_provider_carol.hooks.carol import CarolHook
from airflow_provider_carol.hooks.core.transport import RetryPolicy
from airflow_provider_carol.triggers.tasks import CarolTaskTrigger, failure_message, read_task_event

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


class CarolTaskDeferral(CarolHookMixin):
    """Hand a running Carol task to :class:`CarolTaskTrigger` and finish from its event.

    The host class provides ``defer`` (every BaseOperator does) and these settings: ``poll_interval``,
    ``max_poll_interval``, ``cancel_on_kill``, ``logs_tail``.
    """

    poll_interval: float
    max_poll_interval: float
    cancel_on_kill: bool
    logs_tail: int

    def defer_to_carol_task(self, task: CarolTask, timeout: float | None) -> None:
        """Defer until the task is terminal or ``timeout`` seconds pass (the trigger enforces it)."""
        self.defer(  # type: ignore[attr-defined]
            trigger=CarolTaskTrigger(
                task.task_id,
                self.carol_conn_id,
                end_time=None if timeout is None else time.time() + timeout,
                poll_interval=self.poll_interval,
                max_poll_interval=self.max_poll_interval,
                cancel_on_kill=self.cancel_on_kill,
                logs_tail=self.logs_tail,
                hook_params=retry_settings(self.hook_params),
            ),
            method_name="execute_complete",
            timeout=None,  # the trigger enforces the timeout, so execute_complete always runs
        )

    def carol_task_event(self, event: object, carol_task_id: str | None = None) -> dict[str, Any]:
        """The trigger's event, validated (``None``, a foreign id or an unknown status fail loudly)."""
        return read_task_event(event, carol_task_id)

    def raise_task_failed(self, task_id: str, status: str, error: str | None, tail: list[str] | None) -> None:
        """Fail with Carol's status, error, the task URL and the last log lines (fetched if not given)."""
        if tail is None:
            tail = self.hook.task_logs_tail(task_id, self.logs_tail)
        raise CarolTaskFailed(failure_message(task_id, status, error, tail, self.hook.task_url(task_id)))
