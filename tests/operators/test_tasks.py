"""CarolTrackTasksOperator on the sandbox: budget arithmetic, duplicates, deferral, timeout, dag.test()."""

from __future__ import annotations

import asyncio

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_carol.exceptions import CarolConfigError, CarolError, CarolTaskFailed
from airflow_provider_carol.operators.tasks import STATUSES_KEY, CarolTrackTasksOperator
from airflow_provider_carol.triggers.tasks import CarolTrackTasksTrigger
from tests.dagutil import load_dag, run_dag, steps, task_context


def test_polling_mode_reprocesses_a_failure_once_and_returns_every_status(carol_sandbox):
    flaky = carol_sandbox.create_task(steps("FAILED", 0.5), reprocess_schedule=steps("COMPLETED", 0.5))
    ok = carol_sandbox.create_task(steps("COMPLETED", 0.5))
    op = CarolTrackTasksOperator(task_id="track", task_ids=[flaky, ok, flaky], poll_interval=0.2, timeout=30)
    assert op.execute(task_context()) == {flaky: "COMPLETED", ok: "COMPLETED"}
    assert carol_sandbox.task(flaky)["reprocess_count"] == 1
    assert carol_sandbox.task(ok)["reprocess_count"] == 0


def test_budget_is_spent_exactly_and_the_failure_names_the_task(carol_sandbox):
    doomed = carol_sandbox.create_task(steps("FAILED", 0.3), error="bad input")
    canceled = carol_sandbox.create_task(steps("CANCELED", 0.3))
    ok = carol_sandbox.create_task(steps("COMPLETED", 0.3))
    op = CarolTrackTasksOperator(
        task_id="track", task_ids=[doomed, ok, canceled], max_reprocess=2, poll_interval=0.1, timeout=30
    )
    ctx = task_context()
    with pytest.raises(CarolTaskFailed) as failed:
        op.execute(ctx)
    assert doomed in str(failed.value) and canceled in str(failed.value) and ok not in str(failed.value)
    assert "after 2 reprocess(es)" in str(failed.value)
    assert ctx["ti"].pushed[STATUSES_KEY] == {doomed: "FAILED", ok: "COMPLETED", canceled: "CANCELED"}
    assert carol_sandbox.task(doomed)["reprocess_count"] == 2  # fast polling never double-counts
    assert carol_sandbox.task(canceled)["reprocess_count"] == 2


def test_zero_budget_never_reprocesses(carol_sandbox):
    doomed = carol_sandbox.create_task([{"status": "FAILED", "after": 0}])
    op = CarolTrackTasksOperator(task_id="track", task_ids=[doomed], max_reprocess=0, poll_interval=0.1)
    with pytest.raises(CarolTaskFailed, match="reprocess budget of 0"):
        op.execute(task_context())
    assert carol_sandbox.task(doomed)["reprocess_count"] == 0


def test_timeout_fails_naming_the_unfinished_tasks(carol_sandbox):
    slow = carol_sandbox.create_task(steps("COMPLETED", 60))
    op = CarolTrackTasksOperator(task_id="track", task_ids=[slow], poll_interval=0.1, timeout=0.5)
    with pytest.raises(CarolTaskFailed, match=f"{slow} \\(RUNNING\\)"):
        op.execute(task_context())


def test_deferrable_mode_rounds_through_the_trigger(carol_sandbox):
    from airflow_provider_carol.hooks.carol import CarolHook

    # flaky fails once the operator has deferred (not on a timer, which a loaded machine can outrun),
    # so the failure reaches the operator through the trigger and a second round waits for the reprocess.
    flaky = carol_sandbox.create_task(steps("COMPLETED", 600), reprocess_schedule=steps("COMPLETED", 0.5))
    ok = carol_sandbox.create_task(steps("COMPLETED", 3))
    op = CarolTrackTasksOperator(
        task_id="track", task_ids=[flaky, ok], deferrable=True, poll_interval=0.2, timeout=60
    )
    ctx = task_context()
    with pytest.raises(TaskDeferred) as first:
        op.execute(ctx)
    CarolHook().fail_task(flaky, "failed while deferred")
    deferred, rounds = first.value, 0
    while True:
        trigger = deferred.trigger
        assert isinstance(trigger, CarolTrackTasksTrigger) and deferred.timeout is None
        event = asyncio.run(trigger.run().__anext__())
        rounds += 1
        try:
            # dag.test() drops defer kwargs; the state must come back through the event alone
            result = op.execute_complete(ctx, event.payload)
            break
        except TaskDeferred as again:
            deferred = again
    assert result == {flaky: "COMPLETED", ok: "COMPLETED"}
    assert 2 <= rounds <= 6
    assert carol_sandbox.task(flaky)["reprocess_count"] == 1


def test_bad_arguments_fail_before_any_request(carol_sandbox):
    with pytest.raises(CarolConfigError, match="max_reprocess"):
        CarolTrackTasksOperator(task_id="t", task_ids=["a"], max_reprocess=-1)
    with pytest.raises(CarolConfigError, match="task_ids"):
        CarolTrackTasksOperator(task_id="t", task_ids=["a", ""]).execute(task_context())
    with pytest.raises(CarolError, match="no usable event"):
        CarolTrackTasksOperator(task_id="t", task_ids=["a"]).execute_complete(task_context(), None)
    assert carol_sandbox.requests() == []


def test_on_kill_cancels_unfinished_tasks_when_asked(carol_sandbox):
    slow = carol_sandbox.create_task(steps("COMPLETED", 60))
    op = CarolTrackTasksOperator(task_id="t", task_ids=[slow], deferrable=True, cancel_on_kill=True)
    with pytest.raises(TaskDeferred):
        op.execute(task_context())
    op.on_kill()
    assert carol_sandbox.task(slow)["mdmTaskStatus"] == "CANCELED"


@pytest.mark.dag
def test_track_dag_reprocesses_then_succeeds_and_fails_on_exhausted_budget(airflow_db, carol_sandbox):
    dag_run, tis = run_dag(load_dag("dag_tasks_track"))
    assert {t: ti.state for t, ti in tis.items()} == {
        "create": "success",
        "track_ok": "success",
        "track_doomed": "failed",
    }
    created = {key: tis["create"].xcom_pull(task_ids="create", key=key) for key in ("flaky", "ok", "doomed")}
    assert tis["track_ok"].xcom_pull(task_ids="track_ok") == {
        created["flaky"]: "COMPLETED",
        created["ok"]: "COMPLETED",
    }
    assert tis["track_doomed"].xcom_pull(task_ids="track_doomed", key=STATUSES_KEY) == {
        created["doomed"]: "FAILED",
        created["ok"]: "COMPLETED",
    }
    assert carol_sandbox.task(created["flaky"])["reprocess_count"] == 1
    assert carol_sandbox.task(created["doomed"])["reprocess_count"] == 1
    assert dag_run.state == "failed"
