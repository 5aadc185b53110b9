"""``CarolTrackTasksOperator``: wait for several Carol long tasks, reprocessing failures within a budget.

The Airflow version of the reference SDK's ``track_tasks``, without its pitfalls: a reprocess is
counted once per failed run (not once per poll), duplicate ids are tracked once, there is a timeout,
and the wait can be deferred. Decisions (what to reprocess, who is out of budget) are made on the
worker by the pure :class:`~airflow_provider_carol.hooks.tasks.tracker.TaskTracker`; in deferrable mode the
operator re-defers once per decision round to :class:`CarolTrackTasksTrigger`, which only watches.
Reprocess calls are thus never made from the triggerer, where a restart could repeat them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, NoReturn

from airflow.providers.common.compat.sdk import Context, conf

from airflow_provider_carol.exceptions import CarolConfigError, CarolError, CarolTaskFailed
from airflow_provider_carol.hooks.core.task_state import TaskStateStore, forget, state_store
from airflow_provider_carol.hooks.tasks.polling import (
    DEFAULT_UNKNOWN_STATUS_TIMEOUT,
    Waiter,
    WaitPolicy,
)
from airflow_provider_carol.hooks.tasks.tracker import TaskTracker
from airflow_provider_carol.links.tasks import CarolTaskLink, persist_task_link
from airflow_provider_carol.operators.base import CarolBaseOperator, as_seconds, retry_settings
from airflow_provider_carol.triggers.tasks import ERROR, TIMEOUT, CarolTrackTasksTrigger, raise_event_error

STATUSES_KEY = "statuses"
#: Task state store key of the tracker's bookkeeping (kept across tries).
TRACKER_KEY = "carol_track_tasks"


class CarolTrackTasksOperator(CarolBaseOperator):
    """Wait for every Carol task in ``task_ids``; reprocess FAILED/CANCELED ones up to ``max_reprocess``.

    Returns ``{task_id: final status}`` (also pushed under XCom key ``statuses`` when it fails) and
    fails naming the tasks that exhausted their budget.

    :param task_ids: Carol long-task ids (templated; a list, or an ``XComArg``); duplicates count once.
    :param max_reprocess: reprocesses allowed per task (0: never reprocess).
    :param carol_conn_id: the ``carol`` connection.
    :param deferrable: wait in the triggerer between decision rounds;
        default ``[operators] default_deferrable``.
    :param poll_interval: first pause between polls, seconds (grows x1.5 up to ``max_poll_interval``).
    :param max_poll_interval: cap of the pause between polls, seconds.
    :param timeout: overall wait limit (seconds or timedelta); None waits forever.
    :param cancel_on_kill: cancel the unfinished Carol tasks when the Airflow task is killed.
    :param unknown_status_timeout: seconds a status this provider does not know may last before the task
        fails (None: wait on it like a running status).
    :param hook_params: the hook's transport settings (see :class:`CarolBaseOperator`).
    """

    template_fields: Sequence[str] = ("task_ids", "carol_conn_id")
    operator_extra_links = (CarolTaskLink(),)

    def __init__(
        self,
        *,
        task_ids: Sequence[str] | str,
        max_reprocess: int = 3,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 5.0,
        max_poll_interval: float = 60.0,
        timeout: timedelta | float | None = None,
        cancel_on_kill: bool = False,
        unknown_status_timeout: float | None = DEFAULT_UNKNOWN_STATUS_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(max_reprocess, int) or max_reprocess < 0:
            raise CarolConfigError(f"max_reprocess must be an integer >= 0, got {max_reprocess!r}.")
        if poll_interval <= 0 or max_poll_interval <= 0:
            raise CarolConfigError("poll_interval and max_poll_interval must be positive.")
        self.task_ids = task_ids
        self.max_reprocess = max_reprocess
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.timeout = as_seconds(timeout, "timeout")
        self.cancel_on_kill = cancel_on_kill
        self._tracker: TaskTracker | None = None
        self.unknown_status_timeout = unknown_status_timeout
        self._store: TaskStateStore | None = None
        self._waiters: dict[str, Waiter] = {}

    def _ids(self) -> list[str]:
        ids = [self.task_ids] if isinstance(self.task_ids, str) else list(self.task_ids or [])
        bad = [i for i in ids if not isinstance(i, str) or not i.strip()]
        if not ids or bad:
            raise CarolConfigError(
                f"task_ids must be a non-empty list of Carol task ids, got {self.task_ids!r}."
            )
        unique = list(dict.fromkeys(i.strip() for i in ids))
        if len(unique) < len(ids):
            self.log.warning(
                "task_ids lists %d duplicate id(s); each task is tracked once.", len(ids) - len(unique)
            )
        return unique

    def execute(self, context: Context) -> dict[str, str]:
        """First decision round; then wait (deferred or polling) until every task is settled.

        A retry of this Airflow task continues the tracking an earlier try kept in the task state store
        (same tasks, reprocesses already spent), instead of starting the budget over.
        """
        self._store = state_store(context, purpose="the tracking of Carol tasks")
        tracker = self._tracker = self._earlier_tracking(self._ids()) or TaskTracker(
            self._ids(), self.max_reprocess
        )
        persist_task_link(
            context, self.hook.task_url(tracker.task_ids[0] if len(tracker.task_ids) == 1 else None)
        )
        policy = WaitPolicy.within(
            self.timeout, poll_interval=self.poll_interval, max_poll_interval=self.max_poll_interval
        )
        if self._round(tracker):
            return self._finish(context, tracker)
        if self.deferrable:
            self._defer(tracker, policy.deadline)
        waiter = Waiter(policy, self.log)
        while True:
            if waiter.timed_out():
                self._timed_out(context, tracker)
            time.sleep(waiter.pause())
            if self._round(tracker):
                return self._finish(context, tracker)

    def execute_complete(
        self,
        context: Context,
        event: dict[str, Any] | None = None,
        tracker: dict[str, Any] | None = None,
        end_time: float | None = None,
    ) -> dict[str, str]:
        """Resume after the trigger: validate the event, run one decision round, finish or re-defer."""
        if isinstance(event, dict) and event.get("status") == ERROR:
            raise_event_error(event)
        if not isinstance(event, dict) or event.get("status") not in ("changed", TIMEOUT):
            raise CarolError(f"The Carol tracking trigger returned no usable event: {event!r}.")
        saved = event.get("state") or {"tracker": tracker, "end_time": end_time}
        if not isinstance(saved.get("tracker"), dict):
            raise CarolError(f"The Carol tracking trigger event carries no tracking state: {event!r}.")
        end_time = saved.get("end_time")
        self._store = state_store(context, purpose="the tracking of Carol tasks")
        state = self._tracker = TaskTracker.from_json(saved["tracker"])
        if self._round(state, restarted=event.get("restarted") or ()):
            return self._finish(context, state)
        if event["status"] == TIMEOUT:
            self._timed_out(context, state)
        self._defer(state, end_time)

    def _earlier_tracking(self, ids: list[str]) -> TaskTracker | None:
        """The tracker an earlier try of this Airflow task saved, when it tracked the same tasks."""
        saved = self._store.get(TRACKER_KEY) if self._store is not None else None
        if not isinstance(saved, dict) or saved.get("task_ids") != ids:
            return None
        tracker = TaskTracker.from_json(saved)
        tracker.max_reprocess = self.max_reprocess
        spent = sum(tracker.reprocessed.values())
        self.log.info("Continuing the tracking of an earlier try: %d reprocess(es) already spent.", spent)
        return tracker

    def _policy(self) -> WaitPolicy:
        return WaitPolicy(
            self.poll_interval, self.max_poll_interval, unknown_status_timeout=self.unknown_status_timeout
        )

    def _save(self, tracker: TaskTracker) -> None:
        if self._store is not None:
            self._store.set(TRACKER_KEY, tracker.to_json())

    def _round(self, tracker: TaskTracker, restarted: Sequence[str] = ()) -> bool:
        """Fetch the unsettled tasks, reprocess those with budget left; True when all are settled."""
        tasks = {task_id: self.hook.get_task(task_id) for task_id in tracker.pending()}
        tracker.observe(tasks, restarted)
        for task in tasks.values():  # a status nobody knows ends the wait once it lasted too long
            self._waiters.setdefault(task.task_id, Waiter(self._policy(), self.log)).observe(task)
        for task_id in tracker.to_reprocess():
            attempt = tracker.reprocessed.get(task_id, 0) + 1
            self.log.info(
                "Carol task %s is %s; reprocess %d of %d.",
                task_id,
                tasks[task_id].status,
                attempt,
                self.max_reprocess,
            )
            tracker.mark_reprocessed(tasks[task_id])
            # Saved before the POST: a try that dies here never reprocesses the same failed run twice.
            self._save(tracker)
            tracker.observe({task_id: self.hook.reprocess_task(task_id)})
        self._save(tracker)
        self.log.info(
            "Carol tasks: %s", ", ".join(f"{t}={tracker.statuses.get(t)}" for t in tracker.task_ids)
        )
        return tracker.done

    def _defer(self, tracker: TaskTracker, end_time: float | None) -> NoReturn:
        self.defer(
            trigger=CarolTrackTasksTrigger(
                tracker.pending(),
                self.carol_conn_id,
                awaiting=tracker.awaiting,
                end_time=end_time,
                poll_interval=self.poll_interval,
                max_poll_interval=self.max_poll_interval,
                cancel_on_kill=self.cancel_on_kill,
                state={"tracker": tracker.to_json(), "end_time": end_time},
                hook_params=retry_settings(self.hook_params),
                unknown_status_timeout=self.unknown_status_timeout,
            ),
            method_name="execute_complete",
            kwargs={"tracker": tracker.to_json(), "end_time": end_time},
            timeout=None,  # the trigger enforces `timeout`, so execute_complete reports which tasks were late
        )

    def _finish(self, context: Context, tracker: TaskTracker) -> dict[str, str]:
        statuses = {task_id: tracker.statuses[task_id] for task_id in tracker.task_ids}
        exhausted = tracker.exhausted()
        if not exhausted:
            forget(self._store, TRACKER_KEY)  # done: a later run (a user clear) tracks afresh
            return statuses
        context["ti"].xcom_push(key=STATUSES_KEY, value=statuses)
        detail = ", ".join(
            f"{t} ({statuses[t]} after {tracker.reprocessed.get(t, 0)} reprocess(es))" for t in exhausted
        )
        raise CarolTaskFailed(
            f"{len(exhausted)} of {len(statuses)} Carol task(s) did not complete within the reprocess budget "
            f"of {self.max_reprocess}: {detail}."
        )

    def _timed_out(self, context: Context, tracker: TaskTracker) -> NoReturn:
        statuses = {task_id: tracker.statuses.get(task_id, "UNKNOWN") for task_id in tracker.task_ids}
        context["ti"].xcom_push(key=STATUSES_KEY, value=statuses)
        late = ", ".join(f"{t} ({statuses[t]})" for t in tracker.pending())
        raise CarolTaskFailed(
            f"Carol task(s) still unfinished after the timeout of {self.timeout} s: {late}."
        )

    def on_kill(self) -> None:
        """Cancel the unfinished Carol tasks (best effort) when asked to and the task is killed."""
        if self.cancel_on_kill and self._tracker is not None:
            self.hook.cancel_tasks(self._tracker.pending(), "the Airflow task was killed", self.log)
