"""Every example DAG, unpaused and triggered through the REST API, runs through the scheduler and workers.

The runs start together (as users would trigger them) and each is checked like its ``dag.test()``
counterpart in ``tests/example_dags/test_example_dags.py``: every task instance's final state, the
return values, and what landed in the sandbox (records stored exactly once, one exact batch summary,
Carol task outcomes, task logs shipped into the Carol task). Sandbox state is told apart per DAG by
its connector and staging names, which the examples do not share.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest

from tests.deployment.harness import EXAMPLE_DAGS, WORKERS, Deployment, wait_for

pytestmark = pytest.mark.deployment
EXAMPLES = sorted(path.stem for path in EXAMPLE_DAGS.glob("*.py"))
LINK_KEY = "_link_CarolTaskLink"


@dataclass
class Run:
    """One finished DAG run: its REST record and task instances (keyed ``task_id`` / ``task_id[i]``)."""

    dag_id: str
    run_id: str
    state: str
    tis: dict[str, dict[str, Any]]

    def xcom(
        self, deployment: Deployment, task_id: str, key: str = "return_value", map_index: int = -1
    ) -> Any:
        return deployment.xcom(self.dag_id, self.run_id, task_id, key, map_index)

    def assert_succeeded(self) -> None:
        states = {key: ti["state"] for key, ti in self.tis.items()}
        assert self.state == "success", states
        assert set(states.values()) == {"success"}, states
        # Every task ran on one of the Celery workers, and at the first try.
        assert {ti["hostname"] for ti in self.tis.values()} <= set(WORKERS), self.tis
        assert {ti["try_number"] for ti in self.tis.values()} == {1}, self.tis


@pytest.fixture(scope="module")
def runs(deployment: Deployment, observations: dict[str, Any]) -> dict[str, Run]:
    """Start every example DAG at once against a freshly reset sandbox; wait for all of them to finish."""
    deployment.sandbox.reset()
    started = {dag_id: deployment.trigger(dag_id) for dag_id in EXAMPLES}
    finished = {}
    for dag_id, run_id in started.items():
        run = deployment.wait_run(dag_id, run_id)
        finished[dag_id] = Run(dag_id, run_id, run["state"], deployment.task_instances(dag_id, run_id))
    observations["example_dags"] = {
        dag_id: {
            "state": run.state,
            "tasks": {key: [ti["state"], ti["hostname"], ti["try_number"]] for key, ti in run.tis.items()},
        }
        for dag_id, run in finished.items()
    }
    return finished


def test_every_example_dag_is_checked_here() -> None:
    checked = {name.removeprefix("test_").removesuffix("_through_the_scheduler") for name in globals()}
    assert set(EXAMPLES) <= checked, set(EXAMPLES) - checked


def test_carol_api_call_through_the_scheduler(deployment: Deployment, runs: dict[str, Run]) -> None:
    run = runs["carol_api_call"]
    run.assert_succeeded()
    report = run.xcom(deployment, "report")
    assert report["tenant"] == deployment.sandbox.tenant
    assert "sandbox_connector" in report["connectors"]


def test_carol_ingest_erp_through_the_scheduler(deployment: Deployment, runs: dict[str, Run]) -> None:
    run = runs["carol_ingest_erp"]
    run.assert_succeeded()
    sandbox = deployment.sandbox
    connector_id = run.xcom(deployment, "connector")
    assert connector_id != sandbox.connector_id  # the DAG's own "erp" connector
    (batch,) = [b for b in sandbox.batches() if connector_id in b["connectors"]]  # file + SQL: ONE batch
    assert batch["stagings"] == ["orders"] and batch["connectors"] == [connector_id]
    assert batch["sequences"] == list(range(1, 3 + 2 + 1)) and batch["missing_sequences"] == []
    assert (batch["redeliveries"], batch["conflicts"]) == (0, 0)
    assert batch["summary"]["totalRecords"] == 2200 and batch["summary"]["totalRequests"] == 5
    assert batch["totals_match"] is True and batch["summaries_posted"] == 1
    records = sandbox.records("orders", connector_id)
    assert sorted(r["id"] for r in records) == list(range(1, 2201))  # each order exactly once
    assert Counter(r["status"] for r in records) == {"closed": 1500, "open": 700}
    assert {r["load_id"] for r in records} == {run.run_id}
    schema = run.xcom(deployment, "schema")
    assert schema["mdmStagingMapping"]["properties"]["amount"] == {"type": "double"}
    assert run.xcom(deployment, "count_in_bigquery") == [{"records": 2200, "ids": 2200}]
    checked = run.xcom(deployment, "check_count")
    assert checked == {"batch_id": batch["batchId"], "records": 2200, "bigquery_rows": 2200}
    assert {key for key in run.tis if key.startswith("send[")} == {"send[0]", "send[1]"}


def test_carol_mapped_ingest_through_the_scheduler(deployment: Deployment, runs: dict[str, Run]) -> None:
    run = runs["carol_mapped_ingest"]
    run.assert_succeeded()
    sandbox = deployment.sandbox
    assert {key for key in run.tis if key.startswith("send[")} == {f"send[{i}]" for i in range(5)}
    (batch,) = [b for b in sandbox.batches() if b["stagings"] == ["invoices"]]
    assert batch["connectors"] == [sandbox.connector_id]
    assert batch["sequences"] == list(range(1, 5 * 3 + 1)) and batch["missing_sequences"] == []
    assert (batch["redeliveries"], batch["conflicts"]) == (0, 0)
    assert batch["summary"]["totalRecords"] == 2000 and batch["summary"]["totalRequests"] == 15
    assert batch["totals_match"] is True and batch["summaries_posted"] == 1
    records = sandbox.records("invoices")
    assert sorted(r["id"] for r in records) == list(range(1, 2001))
    assert sorted({r["file"] for r in records}) == [0, 1, 2, 3, 4]
    ended = run.xcom(deployment, "end_batch")
    assert ended == {"batch_id": batch["batchId"], "records": 2000, "requests": 15, "summary_sent": True}


def test_carol_app_process_through_the_scheduler(deployment: Deployment, runs: dict[str, Run]) -> None:
    run = runs["carol_app_process"]
    run.assert_succeeded()
    sandbox = deployment.sandbox
    report = run.xcom(deployment, "report")
    carol_task_id = run.xcom(deployment, "run_process")
    assert report == {"target_staging": "customers", "carol_task_id": carol_task_id}
    assert sandbox.task(carol_task_id)["mdmTaskStatus"] == "COMPLETED"
    link = run.xcom(deployment, "run_process", LINK_KEY)
    assert link.endswith(f"/{sandbox.tenant}/carol-ui/tasks/{carol_task_id}")
    # report's lines reach the Carol task through remote logging on the worker (uploaded when the task
    # process has exited, which may be just after the run is marked done): each exactly once.
    wanted = [
        ("INFO", f"App process finished: Carol task {carol_task_id}"),
        ("INFO", "Target staging from the app settings: customers"),
    ]

    def shipped() -> list[tuple[str, str]]:
        task = sandbox.task(carol_task_id)
        lines = [(entry["mdmLogLevel"], entry["mdmLogMessage"]) for entry in task["logs"]]
        return lines if all(line in lines for line in wanted) else []

    lines = wait_for("report's log lines in the Carol task", shipped, 120)
    assert [lines.count(line) for line in wanted] == [1, 1], lines


def test_carol_query_duckdb_through_the_scheduler(deployment: Deployment, runs: dict[str, Run]) -> None:
    run = runs["carol_query_duckdb"]
    run.assert_succeeded()
    sandbox = deployment.sandbox
    assert sorted(r["id"] for r in sandbox.records("orders", sandbox.connector_id)) == list(range(1, 201))
    totals = run.xcom(deployment, "totals")
    assert [row["region"] for row in totals] == ["east", "north", "south", "west"]
    assert sum(row["orders"] for row in totals) == 200
    written = sandbox.records("orders_by_region")
    assert sorted(row["region"] for row in written) == ["east", "north", "south", "west"]
    assert {row["region"]: row["met"] for row in written} == {
        row["region"]: row["amount"] >= 5000 for row in totals
    }


def test_carol_event_driven_through_the_scheduler(deployment: Deployment, runs: dict[str, Run]) -> None:
    """Started by hand, the event-driven example has no Carol event to check (test_events.py fires it)."""
    run = runs["carol_event_driven"]
    run.assert_succeeded()
    assert run.xcom(deployment, "check_records") == []
