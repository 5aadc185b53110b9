"""Every example DAG runs with ``dag.test()`` against the sandbox and succeeds."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dagutil import load_dag, run_dag

REPO = Path(__file__).resolve().parents[2]


def test_every_example_dag_is_linked_into_the_test_dags_folder():
    examples = {p.name for p in (REPO / "example_dags").glob("*.py")}
    linked = {p.name for p in (REPO / "tests" / "dags").glob("*.py") if p.is_symlink()}
    assert examples and examples <= linked


@pytest.mark.dag
def test_carol_api_call_reads_the_tenant_and_connectors(airflow_db, carol_sandbox):
    dag_run, tis = run_dag(load_dag("carol_api_call"))
    assert dag_run.state == "success", {t: ti.state for t, ti in tis.items()}
    report = tis["report"].xcom_pull(task_ids="report")
    assert report["tenant"] == carol_sandbox.tenant
    assert "sandbox_connector" in report["connectors"]
