"""Small domain values the Carol hooks return (plain, JSON-friendly, safe for XCom)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class CarolContext:
    """Where a connection lands: its tenant (environment) and organization, by id and name."""

    tenant_id: str | None
    tenant_name: str | None
    org_id: str | None
    org_name: str | None
    org_level: bool

    def as_dict(self) -> dict[str, Any]:
        """The context as a plain dict, e.g. for XCom."""
        return asdict(self)


#: Statuses after which a Carol long task never changes again (the reference SDK's three literals).
TERMINAL_STATUSES = frozenset({"COMPLETED", "FAILED", "CANCELED"})
#: Terminal statuses that mean the work did not succeed (reprocessable).
FAILED_STATUSES = frozenset({"FAILED", "CANCELED"})
#: Non-terminal statuses Carol is known to report; anything else is waited on but logged once.
ACTIVE_STATUSES = frozenset({"READY", "PENDING", "QUEUED", "RUNNING", "PROCESSING", "WAITING"})


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
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, body: Any, *, task_id: str | None = None) -> CarolTask:
        """Build from Carol's task JSON; ``task_id`` fills in when the answer omits ``mdmId``."""
        if not isinstance(body, dict) or not (body.get("mdmId") or task_id):
            raise ValueError(f"not a Carol task object: {str(body)[:200]!r}")
        error = body.get("mdmErrorMessage") or body.get("errorMessage")
        return cls(
            task_id=str(body.get("mdmId") or task_id),
            state=CarolTaskState.of(body.get("mdmTaskStatus")),
            name=body.get("mdmTaskName") or body.get("mdmName"),
            progress=body.get("mdmTaskProgress"),
            error_message=str(error) if error else None,
            started=body.get("mdmStartDate"),
            last_updated=body.get("mdmLastUpdated"),
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


@dataclass(frozen=True)
class CarolApp:
    """A tenant app: ``app_id`` is the tenant-app id the settings and process endpoints take."""

    app_id: str
    name: str
    carol_app_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, body: Any, *, app_name: str) -> CarolApp:
        if not isinstance(body, dict) or not body.get("mdmId"):
            raise ValueError(f"Carol app {app_name!r}: the answer has no mdmId: {str(body)[:200]!r}")
        return cls(str(body["mdmId"]), str(body.get("mdmName") or app_name), body.get("mdmCarolAppId"), body)


@dataclass
class TaskTracker:
    """Pure bookkeeping of :class:`CarolTrackTasksOperator`: statuses, reprocess budget, restarts.

    A reprocess is counted once per failed run: after reprocessing, the task is *awaiting restart*
    until it is seen in a non-failed status or with a new start date, so a FAILED status that is
    still the old run's is never counted (or reprocessed) twice. Duplicate ids are tracked once.
    """

    task_ids: list[str]
    max_reprocess: int
    statuses: dict[str, str] = field(default_factory=dict)
    reprocessed: dict[str, int] = field(default_factory=dict)
    awaiting: dict[str, str | None] = field(default_factory=dict)  # id -> start date of the failed run

    def __post_init__(self) -> None:
        self.task_ids = list(dict.fromkeys(str(t) for t in self.task_ids))

    def observe(self, tasks: dict[str, CarolTask], restarted: Iterable[str] = ()) -> None:
        """Record fresh task states; ``restarted`` lists ids seen running again since their reprocess."""
        for task_id, task in tasks.items():
            self.statuses[task_id] = task.state.value
            baseline = self.awaiting.get(task_id, "")
            if task_id in self.awaiting and (
                not task.state.is_failed or task.started != baseline or task_id in restarted
            ):
                del self.awaiting[task_id]

    def _failed_now(self) -> list[str]:
        return [
            t
            for t in self.task_ids
            if CarolTaskState.of(self.statuses.get(t)).is_failed and t not in self.awaiting
        ]

    def to_reprocess(self) -> list[str]:
        """Failed or canceled tasks with budget left (not already awaiting a restart)."""
        return [t for t in self._failed_now() if self.reprocessed.get(t, 0) < self.max_reprocess]

    def exhausted(self) -> list[str]:
        """Failed or canceled tasks whose reprocess budget is spent."""
        return [t for t in self._failed_now() if self.reprocessed.get(t, 0) >= self.max_reprocess]

    def mark_reprocessed(self, task: CarolTask) -> None:
        """Count one reprocess of ``task`` (its failed state as observed before the call)."""
        self.reprocessed[task.task_id] = self.reprocessed.get(task.task_id, 0) + 1
        self.awaiting[task.task_id] = task.started

    def pending(self) -> list[str]:
        """Tasks that are neither COMPLETED nor given up."""
        given_up = set(self.exhausted())
        return [t for t in self.task_ids if self.statuses.get(t) != "COMPLETED" and t not in given_up]

    @property
    def done(self) -> bool:
        """Every task COMPLETED or out of budget."""
        return not self.pending()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskTracker:
        return cls(**data)
