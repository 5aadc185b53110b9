"""App operators against the sandbox: settings to XCom, running a process (deferred, polling, killed)."""

from __future__ import annotations

import asyncio

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_carol.exceptions import CarolStartedUnreadable, CarolTaskFailed
from airflow_provider_carol.links.tasks import CarolTaskLink
from airflow_provider_carol.operators.apps import (
    CAROL_TASK_ID_KEY,
    CarolAppSettingsOperator,
    CarolRunAppProcessOperator,
)
from airflow_provider_carol.triggers.tasks import CarolTaskTrigger
from tests.dagutil import load_dag, run_dag, task_context

LINK_KEY = CarolTaskLink().xcom_key


def test_settings_operator_returns_the_flat_settings(carol_sandbox):
    settings = CarolAppSettingsOperator(task_id="settings").execute(task_context())
    assert settings["target_staging"] == "customers" and settings["batch_size"] == 500
    assert settings["notes"] is None


def test_run_process_defers_with_id_and_link_pushed_first_then_completes(carol_sandbox):
    op = CarolRunAppProcessOperator(
        task_id="run",
        app_name=carol_sandbox.app_name,
        process_name="main_process",
        deferrable=True,
        poll_interval=0.2,
        timeout=60,
    )
    ctx = task_context()
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(ctx)
    carol_task_id = ctx["ti"].pushed[CAROL_TASK_ID_KEY]
    assert ctx["ti"].pushed[LINK_KEY].endswith(f"/carol-ui/tasks/{carol_task_id}")
    trigger = deferred.value.trigger
    assert isinstance(trigger, CarolTaskTrigger) and trigger.cancel_on_kill and trigger.end_time
    assert carol_sandbox.task(carol_task_id)["mdmTaskStatus"] == "RUNNING"
    event = asyncio.run(trigger.run().__anext__())
    assert op.execute_complete(ctx, event.payload) == carol_task_id


def test_failing_process_fails_with_carols_error(carol_sandbox):
    op = CarolRunAppProcessOperator(
        task_id="run", app_name=None, process_name="failing_process", deferrable=False, poll_interval=0.2
    )
    with pytest.raises(CarolTaskFailed, match="failing_process: simulated failure"):
        op.execute(task_context())


def test_timeout_cancels_the_process_task(carol_sandbox):
    op = CarolRunAppProcessOperator(
        task_id="run", app_name=None, process_name="main_process", deferrable=True, timeout=30
    )
    ctx = task_context()
    with pytest.raises(TaskDeferred):
        op.execute(ctx)
    carol_task_id = ctx["ti"].pushed[CAROL_TASK_ID_KEY]
    with pytest.raises(CarolTaskFailed, match="did not finish within 30"):
        op.execute_complete(
            ctx, {"status": "timeout", "carol_task_id": carol_task_id, "error": "still RUNNING"}
        )
    assert carol_sandbox.task(carol_task_id)["cancel_count"] == 1


def test_killing_a_deferred_process_cancels_it_in_carol(carol_sandbox):
    op = CarolRunAppProcessOperator(
        task_id="run", app_name=None, process_name="main_process", deferrable=True
    )
    ctx = task_context()
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(ctx)
    asyncio.run(deferred.value.trigger.on_kill())  # what the triggerer calls when the user kills the task
    task = carol_sandbox.task(ctx["ti"].pushed[CAROL_TASK_ID_KEY])
    assert (task["mdmTaskStatus"], task["cancel_count"]) == ("CANCELED", 1)


def test_fire_and_forget_returns_the_task_id(carol_sandbox):
    op = CarolRunAppProcessOperator(
        task_id="run", app_name=None, process_name="main_process", wait_for_completion=False
    )
    carol_task_id = op.execute(task_context())
    assert carol_sandbox.task(carol_task_id)["mdmTaskName"].endswith("/main_process")


@pytest.mark.dag
def test_apps_dag_fails_deferred_failure_and_runs_the_rest(airflow_db, carol_sandbox):
    dag_run, tis = run_dag(load_dag("dag_tasks_apps"))
    assert dag_run.state == "success"  # the run's state follows its leaf ("sense"), downstream of all_done
    assert {t: ti.state for t, ti in tis.items()} == {
        "failing_deferred": "failed",
        "main_polling": "success",
        "start_only": "success",
        "sense": "success",
    }
    started = tis["start_only"].xcom_pull(task_ids="start_only")
    assert tis["sense"].xcom_pull(task_ids="sense") == {"carol_task_id": started, "status": "COMPLETED"}
    failing_id = tis["failing_deferred"].xcom_pull(task_ids="failing_deferred", key=CAROL_TASK_ID_KEY)
    assert carol_sandbox.task(failing_id)["mdmTaskStatus"] == "FAILED"


@pytest.mark.dag
def test_example_app_process_dag(airflow_db, carol_sandbox):
    dag_run, tis = run_dag(load_dag("carol_app_process"))
    assert dag_run.state == "success", {t: ti.state for t, ti in tis.items()}
    report = tis["report"].xcom_pull(task_ids="report")
    assert report["target_staging"] == "customers"
    assert carol_sandbox.task(report["carol_task_id"])["mdmTaskStatus"] == "COMPLETED"
    link = tis["run_process"].xcom_pull(task_ids="run_process", key=LINK_KEY)
    assert link.endswith(f"/{carol_sandbox.tenant}/carol-ui/tasks/{report['carol_task_id']}")


def test_an_unreadable_start_answer_links_the_task_list_and_is_not_resent(carol_sandbox):
    carol_sandbox.set_shapes(execute="unreadable")
    op = CarolRunAppProcessOperator(task_id="run", app_name=None, process_name="main_process")
    ctx = task_context()
    with pytest.raises(CarolStartedUnreadable, match="look for it in Carol's task list"):
        op.execute(ctx)
    assert ctx["ti"].pushed[LINK_KEY].endswith("/carol-ui/tasks")  # the list: the task's id is unknown
    assert len(carol_sandbox.requests(path="*/execute/*")) == 1


@pytest.mark.dag
def test_an_unreadable_start_answer_fails_the_airflow_task_without_a_retry(airflow_db, carol_sandbox):
    carol_sandbox.set_shapes(execute="unreadable")
    dag_run, tis = run_dag(load_dag("dag_app_process_unreadable"))
    assert (dag_run.state, tis["run"].state, tis["run"].try_number) == ("failed", "failed", 1)
    assert len(carol_sandbox.requests(path="*/execute/*")) == 1


def test_run_process_takes_the_app_from_the_connection_when_app_name_is_left_out(carol_sandbox):
    """The docstring says None uses the connection's app_name extra; leaving it out means the same."""
    op = CarolRunAppProcessOperator(task_id="run", process_name="main_process", wait_for_completion=False)
    carol_task_id = op.execute(task_context())
    assert carol_sandbox.task(carol_task_id)["mdmTaskName"] == f"{carol_sandbox.app_name}/main_process"
