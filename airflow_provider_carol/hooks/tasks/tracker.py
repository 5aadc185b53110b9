"""The bookkeeping of ``CarolTrackTasksOperator``: statuses, the reprocess budget, restarts. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from airflow_provider_carol.hooks.tasks.models import CarolTask, CarolTaskState


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
            if task_id in self.awaiting and (
                task_id in restarted or has_restarted(task, self.awaiting[task_id])
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


def has_restarted(task: CarolTask, failed_run_started: str | None) -> bool:
    """The restart rule: a reprocessed task has restarted once seen non-failed or with a new start date
    (a FAILED status that is still the old run's is never counted, or reprocessed, twice)."""
    return not task.state.is_failed or task.started != failed_run_started


def needs_decision(
    task_ids: Sequence[str], statuses: Mapping[str, str], awaiting: Mapping[str, str | None]
) -> bool:
    """Whether the operator must decide now: a task failed (not awaiting a restart), or all are terminal."""
    states = {t: CarolTaskState.of(statuses.get(t)) for t in task_ids}
    if any(state.is_failed and t not in awaiting for t, state in states.items()):
        return True
    return all(state.is_terminal and t not in awaiting for t, state in states.items())
