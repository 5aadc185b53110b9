"""``CarolProcessQueryOperator`` against the sandbox: dag.test() deferred and retried, the trigger path."""

from __future__ import annotations

import asyncio

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_carol import compat
from airflow_provider_carol.exceptions import CarolConfigError, CarolTaskFailed
from airflow_provider_carol.links.tasks import CarolTaskLink
from airflow_provider_carol.operators.longtask import CAROL_TASK_ID_KEY
from airflow_provider_carol.operators.queries import CarolProcessQueryOperator
from airflow_provider_carol.triggers.tasks import CarolTaskTrigger
from tests.dagutil import load_dag, run_dag, steps, task_context

SQL = "SELECT id FROM `stg_erp_customers`"


@pytest.mark.dag
def test_dag_run_processes_the_query_deferred_and_returns_the_task_id(airflow_db, carol_sandbox):
    carol_sandbox.set_process_query_schedule(steps("COMPLETED", 0.5))
    dag_run, tis = run_dag(load_dag("dag_process_query"))
    assert dag_run.state == "success"
    (call,) = carol_sandbox.process_queries()
    assert tis["process"].xcom_pull(task_ids="process") == call["task_id"]
    assert "updated >= '20" in call["sql"] and call["params"]["entityTemplateName"] == "customer"
    assert carol_sandbox.task(call["task_id"])["mdmTaskStatus"] == "COMPLETED"


@pytest.mark.dag
def test_dag_run_fails_with_carols_error_when_the_processing_fails(airflow_db, carol_sandbox):
    carol_sandbox.set_process_query_schedule(steps("FAILED", 0.3), error="Unrecognized name: updated")
    dag_run, tis = run_dag(load_dag("dag_process_query"))
    assert dag_run.state == "failed" and tis["process"].state == "failed"
    (call,) = carol_sandbox.process_queries()
    assert carol_sandbox.task(call["task_id"])["mdmErrorMessage"] == "Unrecognized name: updated"


@pytest.mark.dag
def test_a_retry_reconnects_to_the_processing_task_instead_of_processing_again(airflow_db, carol_sandbox):
    carol_sandbox.set_process_query_schedule(steps("COMPLETED", 0.5))
    # The first poll is refused in a way the hook does not retry and Airflow does: the try fails.
    carol_sandbox.add_fault(
        "/api/v1/tasks/*", method="GET", status=409, times=1, body={"errorMessage": "busy"}
    )
    dag_run, tis = run_dag(load_dag("dag_process_query", "test_process_query_retry"))
    assert dag_run.state == "success" and tis["process"].try_number == 2
    calls = carol_sandbox.process_queries()
    # With a task state store (Airflow 3.3+) the retry reconnects; without one it processes again.
    assert len(calls) == (1 if compat.AIRFLOW_V_3_3_PLUS else 2)
    assert tis["process"].xcom_pull(task_ids="process") == calls[-1]["task_id"]


def test_deferred_wait_goes_through_the_trigger_with_id_and_link_pushed_first(carol_sandbox):
    carol_sandbox.set_process_query_schedule(steps("COMPLETED", 0.5))
    op = CarolProcessQueryOperator(
        task_id="process", sql=SQL, data_model="customer", deferrable=True, poll_interval=0.1, timeout=60
    )
    ctx = task_context()
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(ctx)
    carol_task_id = ctx["ti"].pushed[CAROL_TASK_ID_KEY]
    assert ctx["ti"].pushed[CarolTaskLink().xcom_key].endswith(f"/carol-ui/tasks/{carol_task_id}")
    trigger = deferred.value.trigger
    assert isinstance(trigger, CarolTaskTrigger) and trigger.cancel_on_kill
    event = asyncio.run(trigger.run().__anext__())
    assert op.execute_complete(ctx, event.payload) == carol_task_id


def test_a_timeout_cancels_the_processing_task(carol_sandbox):
    op = CarolProcessQueryOperator(
        task_id="process", sql=SQL, data_model="customer", deferrable=True, timeout=30
    )
    ctx = task_context()
    with pytest.raises(TaskDeferred):
        op.execute(ctx)
    carol_task_id = ctx["ti"].pushed[CAROL_TASK_ID_KEY]
    with pytest.raises(CarolTaskFailed, match="did not finish within 30"):
        op.execute_complete(ctx, {"status": "timeout", "carol_task_id": carol_task_id, "error": "RUNNING"})
    assert carol_sandbox.task(carol_task_id)["cancel_count"] == 1


def test_bad_flags_fail_when_the_dag_is_parsed():
    with pytest.raises(CarolConfigError, match="data_model must be a non-empty"):
        CarolProcessQueryOperator(task_id="p", sql=SQL, data_model="")
    with pytest.raises(CarolConfigError, match="saveCds must be True or False"):
        CarolProcessQueryOperator(task_id="p", sql=SQL, data_model="customer", save_cds="no")


def test_processing_runs_the_sql_on_bigquery_and_a_named_query_reads_the_data_model(carol_bigquery_mirror):
    """Ingest, process with SQL, read back: staging intake lands in BigQuery, processQuery's SQL runs
    there, and its rows become the data model's records a named query pages through."""
    from airflow_provider_carol.hooks.carol import CarolHook
    from airflow_provider_carol.sandbox.bigquery import table_name

    sandbox, hook = carol_bigquery_mirror.sandbox, CarolHook()
    hook.send_to_staging("customers", [{"id": i, "name": f"c{i}", "active": i % 2 == 0} for i in range(20)])
    connector = hook.call_api(f"v1/connectors/{sandbox.connector_id}")["mdmName"]
    sql = f"SELECT id, name FROM `{table_name(connector, 'customers')}` WHERE active ORDER BY id"
    op = CarolProcessQueryOperator(
        task_id="process", sql=sql, data_model="customer", deferrable=False, poll_interval=0.2, timeout=120
    )
    carol_task_id = op.execute(task_context())
    assert sandbox.task(carol_task_id)["mdmTaskStatus"] == "COMPLETED"
    sandbox.add_named_query("activeCustomers", None, data_model="customer")
    found = hook.named_query("activeCustomers", page_size=3)
    assert found == [{"id": i, "name": f"c{i}"} for i in range(0, 20, 2)]


def test_sql_bigquery_refuses_fails_the_task_with_bigquerys_error(carol_bigquery_mirror):
    op = CarolProcessQueryOperator(
        task_id="process",
        sql="SELECT nope FROM `no_such_table`",
        data_model="customer",
        deferrable=False,
        poll_interval=0.2,
        timeout=120,
    )
    with pytest.raises(CarolTaskFailed, match=r"BigQuery: .*no_such_table"):
        op.execute(task_context())
