"""Carol long tasks as domain values: their status (``CarolTaskState``), the task, its log lines.

All plain and JSON-friendly, so they cross the trigger boundary and XCom as simple values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from airflow_provider_carol.hooks.core.answers import describe, task_id_in, task_object

#: Statuses after which a Carol long task never changes again (the reference SDK's three literals; the
#: only terminal ones seen in answers from real tenants, carol-evidence.md "GET v1/tasks/{id}").
TERMINAL_STATUSES = frozenset({"COMPLETED", "FAILED", "CANCELED"})
#: Terminal statuses that mean the work did not succeed (reprocessable).
FAILED_STATUSES = frozenset({"FAILED", "CANCELED"})
#: The non-terminal statuses real tenants answer (carol-evidence.md; TR carol_task.py filters on both);
#: anything else is waited on, logged once, and fails after ``unknown_status_timeout``.
ACTIVE_STATUSES = frozenset({"READY", "RUNNING"})


@dataclass(frozen=True)
class CarolTaskState:
    """A long task's ``mdmTaskStatus``; crosses the trigger boundary as its string ``value``."""

    value: str

    @classmethod
    def of(cls, status: Any) -> CarolTaskState:
        """Normalise a raw status (``None`` becomes ``UNKNOWN``, case is folded)."""
        text = str(status).strip().upper() if status not in (None, "") else "UNKNOWN"
        return cls("CANCELED" if text == "CANCELLED" else text)

    @property
    def is_terminal(self) -> bool:
        """COMPLETED, FAILED or CANCELED."""
        return self.value in TERMINAL_STATUSES

    @property
    def is_successful(self) -> bool:
        """Only COMPLETED."""
        return self.value == "COMPLETED"

    @property
    def is_failed(self) -> bool:
        """FAILED or CANCELED: terminal, and reprocessable."""
        return self.value in FAILED_STATUSES

    @property
    def is_known(self) -> bool:
        """Whether the status is one this provider knows (unknown ones are waited on, and logged)."""
        return self.value in TERMINAL_STATUSES or self.value in ACTIVE_STATUSES

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class CarolTask:
    """One Carol long task as ``GET v1/tasks/{id}`` shows it; ``raw`` keeps the whole answer."""

    task_id: str
    state: CarolTaskState
    name: str | None = None
    progress: float | None = None
    error_message: str | None = None
    started: str | None = None
    last_updated: str | None = None
    task_type: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, body: Any, *, task_id: str | None = None) -> CarolTask:
        """Build from Carol's task JSON; ``task_id`` fills in when the answer omits ``mdmId``."""
        if not isinstance(body, dict) or not (body.get("mdmId") or task_id):
            raise ValueError(f"not a Carol task object ({describe(body)})")
        error = body.get("mdmErrorMessage") or body.get("errorMessage")
        return cls(
            task_id=str(body.get("mdmId") or task_id),
            state=CarolTaskState.of(body.get("mdmTaskStatus")),
            name=body.get("mdmTaskName") or body.get("mdmName"),
            progress=body.get("mdmTaskProgress"),
            error_message=str(error) if error else None,
            started=body.get("mdmStartDate"),
            last_updated=body.get("mdmLastUpdated"),
            task_type=body.get("mdmTaskType"),
            raw=body,
        )

    @property
    def status(self) -> str:
        """The status string, e.g. ``COMPLETED``."""
        return self.state.value

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (without ``raw``), e.g. for XCom."""
        return {
            "task_id": self.task_id,
            "status": self.state.value,
            "name": self.name,
            "progress": self.progress,
            "error_message": self.error_message,
            "started": self.started,
            "last_updated": self.last_updated,
        }


def started_task(body: Any, what: str, endpoint: str) -> CarolTask:
    """The long task a start call (app process, processQuery) answered with, in any evidence shape.

    The status is the answer's when it carries the task itself, else ``UNKNOWN`` until the first poll.
    :raises CarolStartedUnreadable: no task id could be read (the call is never resent).
    """
    task_id = task_id_in(body, what, endpoint)
    task = task_object(body, task_id)
    return CarolTask.from_api(task) if task is not None else CarolTask(task_id, CarolTaskState.of(None))


@dataclass(frozen=True)
class CarolTaskLogEntry:
    """One line of a long task's Carol log."""

    message: str
    level: str = "INFO"
    timestamp: str | None = None

    @classmethod
    def from_api(cls, body: dict[str, Any]) -> CarolTaskLogEntry:
        return cls(
            message=str(body.get("mdmLogMessage", "")),
            level=str(body.get("mdmLogLevel") or "INFO"),
            timestamp=body.get("mdmLogDate"),
        )

    def __str__(self) -> str:
        stamp = f"{self.timestamp} " if self.timestamp else ""
        return f"{stamp}{self.level} {self.message}"
