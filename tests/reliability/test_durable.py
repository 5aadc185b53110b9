"""Durable long work with real processes killed: resume, never redo; cancel what we started.

- An app process whose worker is SIGKILLed: the retry reconnects to the Carol task the killed try
  started (no second process), unless that task failed (then a fresh process is started).
- A tracking whose worker is SIGKILLed after a reprocess: the retry continues with the budget spent.
- ``execution_timeout`` while running and while deferred: the Carol task the operator started is
  cancelled and the Airflow log says so.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest

from tests.dagutil import load_dag, run_dag, wait_until
from tests.reliability.crash import hand_to_retry, kill_when, saved_state, start_first_try

pytestmark = pytest.mark.dag

WHEN = datetime(2026, 2, 3, 4, 5, 6, tzinfo=timezone.utc)
RUNNING = [{"status": "RUNNING", "after": 0}]
APP_KEY = "carol_app_process_task_id"


def executes(sandbox) -> list[dict]:
    return sandbox.requests(method="POST", path="*/execute/*")


def started_task(dag_id: str, task_id: str, key: str):
    """The task state store entry the killed try wrote, once it is there."""
    try:
        return saved_state(dag_id, task_id, key)
    except ValueError:  # no DAG run row yet
        return None


def polled_tasks(sandbox) -> list[str]:
    """Ids of the tasks polled (``GET v1/tasks/{id}``), in order."""
    return [
        r["path"].rsplit("/", 1)[-1]
        for r in sandbox.requests()
        if r["method"] == "GET" and r["path"].startswith("/api/v1/tasks/") and r["path"].count("/") == 4
    ]


def complete_when_polled(sandbox, pick) -> threading.Thread:
    """In the background: once ``pick(polled ids)`` names a task polled twice, set it COMPLETED."""

    def run() -> None:
        task_id = wait_until(lambda: pick(polled_tasks(sandbox)), "the retry polling its task")
        sandbox.set_task_status(task_id, "COMPLETED")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("earlier_outcome", ["RUNNING", "COMPLETED", "FAILED"])
def test_a_retry_reconnects_to_the_process_the_killed_try_started(
    airflow_db,
    carol_sandbox,
    monkeypatch,
    tmp_path,
    pid_file,
    earlier_outcome,
):
    conf = {"process": "long_process"}
    child = start_first_try("dag_durable_tasks", WHEN, conf, "test_durable_app")
    carol_task = kill_when(
        child,
        pid_file,
        lambda: executes(carol_sandbox) and started_task("test_durable_app", "run", APP_KEY),
        "the process started and its task id stored",
    )
    assert len(executes(carol_sandbox)) == 1
    if earlier_outcome != "RUNNING":
        carol_sandbox.set_task_status(carol_task, earlier_outcome, error="node lost")
    hand_to_retry(monkeypatch, tmp_path, {APP_KEY: carol_task})
    pid_file.unlink()
    if earlier_outcome == "RUNNING":  # the retry waits on the same task: finish it once it is polled
        complete_when_polled(carol_sandbox, lambda ids: carol_task if ids.count(carol_task) >= 3 else None)
    elif earlier_outcome == "FAILED":  # the retry starts a fresh process: finish that one
        complete_when_polled(
            carol_sandbox, lambda ids: next((t for t in ids if t != carol_task and ids.count(t) >= 2), None)
        )

    dag = load_dag("dag_durable_tasks", "test_durable_app")
    dag_run, tis = run_dag(dag, logical_date=WHEN, run_after=WHEN, run_conf=conf)
    assert dag_run.state == "success", {t: ti.state for t, ti in tis.items()}
    result = tis["run"].xcom_pull(task_ids="run")
    if earlier_outcome == "FAILED":
        assert len(executes(carol_sandbox)) == 2 and result != carol_task  # a failed run is started again
    else:
        assert len(executes(carol_sandbox)) == 1 and result == carol_task  # never a second process


def test_a_retried_tracking_remembers_the_reprocess_budget_it_spent(
    airflow_db, carol_sandbox, monkeypatch, tmp_path, pid_file
):
    steady = carol_sandbox.create_task(RUNNING)
    flaky = carol_sandbox.create_task(RUNNING, reprocess_schedule=RUNNING)
    carol_sandbox.set_task_status(flaky, "FAILED", error="first run broke")
    conf = {"task_ids": [steady, flaky]}
    child = start_first_try("dag_durable_tasks", WHEN, conf, "test_durable_track")

    def reprocessed_and_saved() -> object:
        saved = started_task("test_durable_track", "track", "carol_track_tasks")
        done = carol_sandbox.task(flaky)["reprocess_count"] == 1
        return saved if done and saved and saved.get("reprocessed", {}).get(flaky) == 1 else None

    saved = kill_when(
        child, pid_file, reprocessed_and_saved, "the failed task reprocessed and the budget saved"
    )
    # The reprocessed run fails too, the other task completes; the retry must not reprocess again.
    carol_sandbox.set_task_status(flaky, "FAILED", error="second run broke")
    carol_sandbox.set_task_status(steady, "COMPLETED")
    hand_to_retry(monkeypatch, tmp_path, {"carol_track_tasks": saved})
    pid_file.unlink()

    dag = load_dag("dag_durable_tasks", "test_durable_track")
    dag_run, tis = run_dag(dag, logical_date=WHEN, run_after=WHEN, run_conf=conf)
    assert dag_run.state == "failed"  # the flaky task is out of budget
    assert carol_sandbox.task(flaky)["reprocess_count"] == 1  # spent once, by the killed try
    assert tis["track"].xcom_pull(task_ids="track", key="statuses") == {steady: "COMPLETED", flaky: "FAILED"}


def test_execution_timeout_cancels_the_carol_task_running_or_deferred(airflow_db, carol_sandbox, capfd):
    dag_run, tis = run_dag(load_dag("dag_durable_tasks", "test_durable_timeouts"))
    output = "".join(capfd.readouterr())
    assert dag_run.state == "failed"
    for name in ("running", "deferred"):
        assert tis[name].state == "failed", name
        carol_task = tis[name].xcom_pull(task_ids=name, key="carol_task_id")
        task = carol_sandbox.task(carol_task)
        assert (task["mdmTaskStatus"], task["cancel_count"]) == ("CANCELED", 1), name
        assert f"Asked Carol to cancel task {carol_task}" in output, name
    assert "execution_timeout of 0:00:06 reached" in output  # the deferred one says which limit ended it
