"""The one waiting policy for Carol long tasks: used by ``wait_for_task``, the triggers and the operators.

Pauses start at ``poll_interval`` and grow x1.5 up to ``max_poll_interval``; a wall-clock ``deadline``
(epoch seconds, so it survives a move to another triggerer) bounds the wait; a status this provider does
not know is logged once per wait and ends the wait once it has lasted ``unknown_status_timeout``
seconds (so no wait lasts forever); a poll that fails transiently (after the hook's own retries) is
tolerated ``transient_errors`` times in a row before the error ends the wait.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from airflow_provider_carol.exceptions import (
    CarolApiError,
    CarolConfigError,
    CarolConnectionError,
    CarolError,
    CarolTaskFailed,
)
from airflow_provider_carol.hooks.core.retry import RETRYABLE_STATUSES
from airflow_provider_carol.hooks.core.types import LoggerLike
from airflow_provider_carol.hooks.tasks.models import ACTIVE_STATUSES, TERMINAL_STATUSES, CarolTask

BACKOFF = 1.5
#: Consecutive polls that may fail transiently (after the hook's own retries) before the error escapes.
MAX_TRANSIENT_POLL_ERRORS = 3
#: How long a status this provider does not know may last before the wait ends with an error.
DEFAULT_UNKNOWN_STATUS_TIMEOUT = 3600.0


@dataclass(frozen=True)
class WaitPolicy:
    """How long to pause between polls and when to give up.

    :param poll_interval: first pause, seconds.
    :param max_poll_interval: cap of the growing pause, seconds.
    :param deadline: wall-clock epoch seconds after which the wait ends (None: never).
    :param transient_errors: consecutive transient poll failures tolerated.
    :param unknown_status_timeout: seconds a status this provider does not know may last before the wait
        ends with an error (None: wait on it like any running status).
    """

    poll_interval: float = 5.0
    max_poll_interval: float = 60.0
    deadline: float | None = None
    transient_errors: int = MAX_TRANSIENT_POLL_ERRORS
    unknown_status_timeout: float | None = DEFAULT_UNKNOWN_STATUS_TIMEOUT

    def __post_init__(self) -> None:
        if not self.poll_interval > 0 or not self.max_poll_interval > 0:
            raise CarolConfigError(
                f"poll_interval and max_poll_interval must be positive, got {self.poll_interval!r} "
                f"and {self.max_poll_interval!r}."
            )
        if self.transient_errors < 0:
            raise CarolConfigError(f"transient_errors must not be negative, got {self.transient_errors!r}.")
        if self.unknown_status_timeout is not None and self.unknown_status_timeout < 0:
            raise CarolConfigError(
                f"unknown_status_timeout must not be negative, got {self.unknown_status_timeout!r}."
            )

    @classmethod
    def within(cls, timeout: float | None, **kwargs: float | None) -> WaitPolicy:
        """A policy whose deadline is ``timeout`` seconds from now (None: no deadline)."""
        return cls(deadline=None if timeout is None else time.time() + timeout, **kwargs)  # type: ignore[arg-type]


def next_pause(pause: float, poll_interval: float, max_poll_interval: float) -> float:
    """The pause after ``pause``: x1.5, up to ``max_poll_interval`` (never below ``poll_interval``)."""
    return min(pause * BACKOFF, max(poll_interval, max_poll_interval))


def is_transient(exc: CarolError) -> bool:
    """A failure worth polling again for: Carol unreachable, or a 429/5xx answer."""
    if isinstance(exc, CarolConnectionError):
        return True
    return isinstance(exc, CarolApiError) and exc.status_code in RETRYABLE_STATUSES


@dataclass
class Waiter:
    """One wait under a :class:`WaitPolicy`: next pause, deadline, unknown statuses, error budget."""

    policy: WaitPolicy
    log: LoggerLike
    interval: float = field(init=False)
    errors: int = field(default=0, init=False)
    unknown: set[str] = field(default_factory=set, init=False)
    unknown_since: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.interval = self.policy.poll_interval

    def timed_out(self) -> bool:
        """Whether the deadline has passed."""
        return self.policy.deadline is not None and time.time() >= self.policy.deadline

    def pause(self) -> float:
        """The next pause (never past the deadline); the one after it is longer, up to the cap."""
        pause = self.interval
        if self.policy.deadline is not None:
            pause = max(0.0, min(pause, self.policy.deadline - time.time()))
        self.interval = next_pause(self.interval, self.policy.poll_interval, self.policy.max_poll_interval)
        return pause

    def observe(self, task: CarolTask) -> None:
        """A successful poll: reset the error budget; log a status we do not know, once per wait, and
        raise :class:`CarolTaskFailed` once it has lasted ``unknown_status_timeout`` (the wait ends)."""
        self.errors = 0
        if task.state.is_known:
            self.unknown_since = None
            return
        if self.unknown_since is None:
            self.unknown_since = time.time()
        if task.status not in self.unknown:
            self.unknown.add(task.status)
            self.log.warning(
                "Carol task %s reports unknown status %r; still waiting.", task.task_id, task.status
            )
        if self.stuck(task):
            raise CarolTaskFailed(unknown_status_message(task, self.policy.unknown_status_timeout))

    def stuck(self, task: CarolTask) -> bool:
        """Whether ``task``'s unknown status has lasted ``unknown_status_timeout`` (the wait must end)."""
        limit = self.policy.unknown_status_timeout
        if task.state.is_known or limit is None or self.unknown_since is None:
            return False
        return time.time() - self.unknown_since >= limit

    def tolerate(self, task_id: str, exc: CarolError) -> bool:
        """True when a failed poll may be retried at the next pause (logged); False: let it end the wait."""
        self.errors += 1
        if not is_transient(exc) or self.errors > self.policy.transient_errors:
            return False
        self.log.warning("Polling Carol task %s failed (%s); will poll again.", task_id, exc)
        return True


def unknown_status_message(task: CarolTask, limit: float | None) -> str:
    """Why a wait ended on a status this provider does not know."""
    return (
        f"Carol task {task.task_id} reports status {task.status!r}, which this provider does not know, "
        f"and it lasted {limit or 0:.0f} s (unknown_status_timeout); it is treated as a failure. Known "
        f"statuses: {', '.join(sorted(TERMINAL_STATUSES))} and the running ones "
        f"({', '.join(sorted(ACTIVE_STATUSES))}), the ones real tenants answer."
    )
