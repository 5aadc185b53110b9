"""Long tasks whose status follows a schedule of ``{"status", "after"}`` steps, by elapsed time."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .auth import new_id
from .errors import CarolError

TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELED"})
DEFAULT_SCHEDULE = [{"status": "RUNNING", "after": 0}, {"status": "COMPLETED", "after": 1}]
DEFAULT_ERROR = "Task failed (sandbox schedule)"
DEFAULT_TASK_TYPE = "SANDBOX_TASK"
#: The task fields ``POST v1/queries/filter`` can filter on (``TERMS_FILTER`` with ``mdmKey`` + ``.raw``).
SEARCH_KEYS = ("mdmTaskType", "mdmTaskStatus", "mdmTaskName", "mdmData.carolAppName")


def iso(epoch: float) -> str:
    """Epoch seconds as Carol's ISO-8601 UTC timestamp with milliseconds."""
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_schedule(raw: Any) -> list[tuple[float, str]]:
    """Validate a schedule into sorted ``(after_seconds, STATUS)`` pairs; a bad one is a 400."""
    if not isinstance(raw, list) or not raw:
        raise CarolError(400, "schedule must be a non-empty list of {status, after}", "schedule")
    steps = []
    for step in raw:
        status, after = (step.get("status"), step.get("after", 0)) if isinstance(step, dict) else (None, None)
        if not isinstance(status, str) or not status or not isinstance(after, (int, float)) or after < 0:
            raise CarolError(
                400, f"Invalid schedule step {step!r}: need status (str) and after (>= 0 s)", "schedule"
            )
        steps.append((float(after), status.upper()))
    return sorted(steps, key=lambda pair: pair[0])


@dataclass
class Task:
    """One long task; its scheduled status is computed lazily from the monotonic clock."""

    task_id: str
    name: str
    schedule: list[tuple[float, str]]
    reprocess_schedule: list[tuple[float, str]] | None
    error: str
    owner: str
    connector_id: str
    created: float
    run_started: float
    run_started_wall: float
    override: str | None = None
    error_message: str | None = None
    logs: list[dict[str, Any]] = field(default_factory=list)
    progress: float = 0
    progress_data: dict[str, Any] = field(default_factory=dict)
    reprocess_count: int = 0
    cancel_count: int = 0
    fail_count: int = 0
    failure_logged: bool = False
    updated: float = 0.0
    task_type: str = DEFAULT_TASK_TYPE
    app_name: str | None = None

    def scheduled(self, now: float) -> tuple[str, int, float]:
        """(status, steps reached, offset of the step) by time elapsed since the run started."""
        elapsed = now - self.run_started
        status, reached, offset = "READY", 0, 0.0
        for index, (after, step_status) in enumerate(self.schedule, start=1):
            if after <= elapsed:
                status, reached, offset = step_status, index, after
        return status, reached, offset

    def add_log(self, message: str, level: str, when: float | None = None) -> None:
        when = time.time() if when is None else when
        self.logs.append(
            {
                "mdmTaskId": self.task_id,
                "mdmLogMessage": message,
                "mdmLogLevel": level,
                "mdmLogDate": iso(when),
                "mdmTimestamp": int(when * 1000),
            }
        )


class TaskStore:
    """Thread-safe registry of long tasks."""

    def __init__(self, tenant_id: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.tenant_id = tenant_id
        self._base_clock = clock
        self.offset = 0.0  # seconds the schedules have been moved ahead by ``advance``
        self._lock = threading.RLock()
        self.tasks: dict[str, Task] = {}

    def _clock(self) -> float:
        return self._base_clock() + self.offset

    def advance(self, seconds: object) -> float:
        """Move every schedule ``seconds`` ahead (tests step through schedules instead of sleeping)."""
        if not isinstance(seconds, int | float) or seconds < 0:
            raise CarolError(400, "advance must be a number of seconds >= 0", "advance")
        with self._lock:
            self.offset += float(seconds)
            return self.offset

    def reset(self) -> None:
        with self._lock:
            self.tasks.clear()
            self.offset = 0.0

    def create(
        self,
        schedule: Any,
        *,
        name: str = "sandboxTask",
        error: str | None = None,
        reprocess_schedule: Any = None,
        owner: str = "",
        connector_id: str = "",
        task_type: str = DEFAULT_TASK_TYPE,
        app_name: str | None = None,
    ) -> Task:
        steps = parse_schedule(schedule if schedule is not None else DEFAULT_SCHEDULE)
        again = parse_schedule(reprocess_schedule) if reprocess_schedule is not None else None
        now, wall = self._clock(), time.time()
        task = Task(
            new_id(),
            name,
            steps,
            again,
            error or DEFAULT_ERROR,
            owner,
            connector_id,
            wall,
            now,
            wall,
            updated=wall,
            task_type=task_type,
            app_name=app_name,
        )
        with self._lock:
            self.tasks[task.task_id] = task
        return task

    def last_updated(self, task: Task) -> float:
        """Wall-clock time of the last change: an admin/API action, or the schedule step reached last."""
        if task.override is not None:
            return task.updated
        _status, reached, offset = task.scheduled(self._clock())
        if not reached:
            return task.updated
        # advance() moves schedules ahead of the wall clock: a step is never dated in the future.
        return max(task.updated, min(time.time(), task.run_started_wall + offset))

    def search(
        self, terms: dict[str, set[str]], *, descending: bool, offset: int, page_size: int
    ) -> tuple[int, list[dict[str, Any]]]:
        """Tasks whose fields are in every ``terms`` set, sorted by ``mdmLastUpdated`` (then id); one page."""
        with self._lock:
            found = [self.to_json(task) for task in self.tasks.values()]
        for key, values in terms.items():
            found = [body for body in found if _field(body, key) in values]
        found.sort(key=lambda body: (body["mdmLastUpdated"], body["mdmId"]), reverse=descending)
        return len(found), found[offset : offset + page_size]

    def get(self, task_id: str) -> Task:
        with self._lock:
            task = self.tasks.get(task_id)
        if task is None:
            raise CarolError(404, f"Task {task_id} Not found", "taskId")
        return task

    def status(self, task: Task) -> tuple[str, int]:
        """The current status; a scheduled FAILED logs its error message once per run."""
        if task.override is not None:
            return task.override, len(task.schedule)
        status, reached, offset = task.scheduled(self._clock())
        if status == "FAILED" and not task.failure_logged:
            with self._lock:
                task.failure_logged = True
                task.error_message = task.error
                task.add_log(task.error, "ERROR", task.run_started_wall + offset)
        return status, reached

    def add_logs(self, task: Task, entries: list[dict[str, Any]]) -> None:
        with self._lock:
            for entry in entries:
                task.add_log(str(entry.get("mdmLogMessage", "")), str(entry.get("mdmLogLevel") or "INFO"))

    def cancel(self, task: Task) -> None:
        """Cancel a task that is not terminal yet; a finished task is left as it is."""
        with self._lock:
            task.cancel_count += 1
            if self.status(task)[0] not in TERMINAL:
                task.override, task.updated = "CANCELED", time.time()

    def set_status(self, task: Task, status: object, error: object = None) -> None:
        """Put the task in ``status`` now, whatever its schedule says (a FAILED one logs ``error``)."""
        if not isinstance(status, str) or not status.strip():
            raise CarolError(400, "status must be a non-empty string", "status")
        with self._lock:
            task.override, task.updated = status.strip().upper(), time.time()
            task.error_message = (str(error) if error else task.error) if task.override == "FAILED" else None
            if task.override == "FAILED":
                task.failure_logged = True
                task.add_log(task.error_message or task.error, "ERROR")

    def fail(self, task: Task, message: str) -> None:
        with self._lock:
            task.fail_count += 1
            if self.status(task)[0] not in TERMINAL:
                task.override, task.error_message, task.updated = "FAILED", message, time.time()
                task.add_log(message or "Task failed by request", "ERROR")

    def reprocess(self, task: Task) -> None:
        """Start the schedule again (or the reprocess schedule) from now."""
        with self._lock:
            task.reprocess_count += 1
            if task.reprocess_schedule is not None:
                task.schedule = task.reprocess_schedule
            task.run_started, task.run_started_wall = self._clock(), time.time()
            task.override, task.error_message, task.failure_logged = None, None, False
            task.progress, task.updated = 0, time.time()

    def to_json(self, task: Task, admin: bool = False) -> dict[str, Any]:
        """The fields pycarol reads from ``GET v1/tasks/{id}`` (section 8.2), plus error and name."""
        status, reached = self.status(task)
        body = {
            "mdmId": task.task_id,
            "mdmTaskName": task.name,
            "mdmUserId": task.owner,
            "mdmConnectorId": task.connector_id,
            "mdmTaskReady": status == "READY",
            "mdmTaskProcessing": status == "RUNNING",
            "mdmTaskStatus": status,
            "mdmTaskOwner": task.owner,
            "mdmTaskProgress": 100 if status == "COMPLETED" else task.progress,
            "mdmDistributionValue": None,
            "mdmTaskPreference": "NORMAL",
            "mdmNumberOfSteps": len(task.schedule),
            "mdmNumberOfStepsExecuted": reached,
            "mdmEntityType": "mdmTask",
            "mdmCreated": iso(task.created),
            "mdmStartDate": iso(task.run_started_wall),
            "mdmCreatedUser": task.owner,
            "mdmUpdatedUser": task.owner,
            "mdmLastUpdated": iso(self.last_updated(task)),
            "mdmTaskType": task.task_type,
            "mdmTenantId": self.tenant_id,
            "mdmProcessAfter": None,
            "mdmData": {"carolAppName": task.app_name} if task.app_name else {},
            "mdmTaskProgressData": task.progress_data,
            "mdmErrorMessage": task.error_message if status == "FAILED" else None,
        }
        if admin:
            body.update(
                {
                    "reprocess_count": task.reprocess_count,
                    "cancel_count": task.cancel_count,
                    "fail_count": task.fail_count,
                    "logs": list(task.logs),
                    "schedule": [{"status": s, "after": a} for a, s in task.schedule],
                }
            )
        return body


def _field(body: dict[str, Any], key: str) -> Any:
    """A dotted field of a task body (``mdmData.carolAppName``); None when absent."""
    value: Any = body
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value
