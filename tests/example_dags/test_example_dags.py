"""Every example DAG runs with ``dag.test()`` against the sandbox, succeeds and leaves the expected end state.

The examples whose test lives elsewhere are listed in ``TESTED_ELSEWHERE``;
``test_every_example_dag_has_a_dag_test`` keeps the list honest.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from airflow_provider_carol import compat
from tests.dagutil import load_dag, load_module, run_dag
from tests.log.conftest import carol_remote_logging  # noqa: F401 - fixture used below

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "example_dags"
# Examples whose dag.test() test lives in another module (kept there with the operator it shows).
TESTED_ELSEWHERE = {
    "carol_app_process": "tests/operators/test_apps.py",
    "carol_query_duckdb": "tests/operators/test_bigquery.py",
}


def sqlite_connection(path: Path) -> str:
    """``AIRFLOW_CONN_CAROL_ERP_SQLITE``'s value for a SQLite file (the form docs and demo use)."""
    return json.dumps({"conn_type": "sqlite", "host": str(path)})


def test_every_example_dag_is_linked_into_the_test_dags_folder():
    examples = {p.name for p in EXAMPLES.glob("*.py")}
    linked = {p.name for p in (REPO / "tests" / "dags").glob("*.py") if p.is_symlink()}
    assert examples and examples <= linked


def test_every_example_dag_has_a_dag_test():
    """Each example file is loaded and run (``run_dag(load_dag("<name>"))``) by some test module."""
    runs: dict[str, set[str]] = {}
    for module in (REPO / "tests").rglob("test_*.py"):
        text = module.read_text()
        if "run_dag(" not in text:
            continue
        for name in re.findall(r"""load_dag\(\s*["']([A-Za-z0-9_]+)["']""", text):
            runs.setdefault(name, set()).add(str(module.relative_to(REPO)))
    examples = {p.stem for p in EXAMPLES.glob("*.py")}
    assert {name for name in examples if name not in runs} == set()
    for name, module in TESTED_ELSEWHERE.items():
        assert module in runs[name], (name, runs[name])


@pytest.mark.dag
def test_carol_api_call_reads_the_tenant_and_connectors(airflow_db, carol_sandbox):
    dag_run, tis = run_dag(load_dag("carol_api_call"))
    assert dag_run.state == "success", {t: ti.state for t, ti in tis.items()}
    report = tis["report"].xcom_pull(task_ids="report")
    assert report["tenant"] == carol_sandbox.tenant
    assert "sandbox_connector" in report["connectors"]


@pytest.mark.dag
def test_carol_ingest_erp_sends_file_and_sql_in_one_batch_and_counts_them_in_bigquery(
    airflow_db, carol_bigquery_mirror, tmp_path, monkeypatch
):
    sandbox = carol_bigquery_mirror.sandbox
    database = tmp_path / "erp" / "erp.db"  # its directory does not exist yet: seed_erp creates it
    monkeypatch.setenv("AIRFLOW_CONN_CAROL_ERP_SQLITE", sqlite_connection(database))

    dag_run, tis = run_dag(load_dag("carol_ingest_erp"))
    assert dag_run.state == "success", {t: ti.state for t, ti in tis.items()}

    connector_id = tis["connector"].xcom_pull(task_ids="connector")
    assert connector_id != sandbox.connector_id  # the DAG's own "erp" connector
    (batch,) = sandbox.batches()  # the file and the SQL rows share ONE batch
    assert batch["stagings"] == ["orders"] and batch["connectors"] == [connector_id]
    assert batch["sequences"] == list(range(1, 3 + 2 + 1)) and batch["missing_sequences"] == []
    assert (batch["redeliveries"], batch["conflicts"]) == (0, 0)
    assert batch["summary"]["totalRecords"] == 2200 and batch["summary"]["totalRequests"] == 5
    assert batch["totals_match"] is True and batch["summaries_posted"] == 1
    records = sandbox.records("orders", connector_id)
    assert sorted(r["id"] for r in records) == list(range(1, 2201))  # each order exactly once
    by_status = {s: sum(1 for r in records if r["status"] == s) for s in ("closed", "open")}
    assert by_status == {"closed": 1500, "open": 700}  # 1500 from the Parquet file, 700 from SQLite
    assert {r["load_id"] for r in records} == {dag_run.run_id}
    schema = tis["schema"].xcom_pull(task_ids="schema")
    assert schema["mdmStagingMapping"]["properties"]["amount"] == {"type": "double"}
    counted = tis["count_in_bigquery"].xcom_pull(task_ids="count_in_bigquery")
    assert counted == [{"records": 2200, "ids": 2200}]
    checked = tis["check_count"].xcom_pull(task_ids="check_count")
    assert checked == {"batch_id": batch["batchId"], "records": 2200, "bigquery_rows": 2200}
    assert {key for key in tis if key.startswith("send[")} == {"send[0]", "send[1]"}


@pytest.mark.dag
def test_carol_ingest_erp_check_fails_when_bigquery_misses_rows(
    airflow_db, carol_sandbox, carol_bigquery, tmp_path, monkeypatch
):
    """Without the staging mirror BigQuery has no rows of the run: the count check must fail the run."""
    monkeypatch.setenv("AIRFLOW_CONN_CAROL_ERP_SQLITE", sqlite_connection(tmp_path / "erp.db"))
    carol_bigquery.load_table("stg_erp_orders", _empty_orders_table())
    dag_run, tis = run_dag(load_dag("carol_ingest_erp"), run_conf={"archived_orders": 10, "open_orders": 5})
    assert dag_run.state == "failed"
    states = {t: ti.state for t, ti in tis.items()}
    assert states["end_batch"] == "success" and states["count_in_bigquery"] == "success"
    assert states["check_count"] == "failed"
    (batch,) = carol_sandbox.batches()
    assert batch["totals_match"] is True and carol_sandbox.staging_count("orders") == 15


@pytest.mark.dag
def test_carol_ingest_erp_without_its_sql_connection_sends_nothing(airflow_db, carol_sandbox, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_CAROL_ERP_SQLITE", raising=False)
    dag_run, tis = run_dag(load_dag("carol_ingest_erp"))
    assert dag_run.state == "failed"
    assert tis["seed_erp"].state == "failed"
    downstream = ("schema", "start_batch", "end_batch", "check_count")
    assert {tis[t].state for t in downstream} == {"upstream_failed"}
    assert carol_sandbox.batches() == [] and carol_sandbox.staging_count("orders") == 0


def _empty_orders_table():
    import pyarrow as pa

    return pa.table({"id": pa.array([], pa.int64()), "load_id": pa.array([], pa.string())})


@pytest.mark.dag
def test_carol_mapped_ingest_spans_one_batch_over_mapped_files(airflow_db, carol_sandbox):
    dag_run, tis = run_dag(load_dag("carol_mapped_ingest"))
    assert dag_run.state == "success", {t: ti.state for t, ti in tis.items()}
    assert {key for key in tis if key.startswith("send[")} == {f"send[{i}]" for i in range(5)}
    (batch,) = carol_sandbox.batches()
    assert batch["connectors"] == [carol_sandbox.connector_id]
    assert batch["sequences"] == list(range(1, 5 * 3 + 1)) and batch["missing_sequences"] == []
    assert (batch["redeliveries"], batch["conflicts"]) == (0, 0)
    assert batch["summary"]["totalRecords"] == 2000 and batch["summary"]["totalRequests"] == 15
    assert batch["totals_match"] is True and batch["summaries_posted"] == 1
    records = carol_sandbox.records("invoices")
    assert sorted(r["id"] for r in records) == list(range(1, 2001))
    assert sorted({r["file"] for r in records}) == [0, 1, 2, 3, 4]
    ended = tis["end_batch"].xcom_pull(task_ids="end_batch")
    assert ended == {"batch_id": batch["batchId"], "records": 2000, "requests": 15, "summary_sent": True}


@pytest.mark.dag
def test_carol_app_process_ships_the_report_log_to_the_carol_task(
    airflow_db,
    carol_sandbox,
    carol_remote_logging,  # noqa: F811 - the imported fixture
):
    dag_run, tis = run_dag(load_dag("carol_app_process"))
    assert carol_remote_logging is None or carol_remote_logging.flush(10)  # None: 2.11, no RemoteLogIO
    assert dag_run.state == "success", {t: ti.state for t, ti in tis.items()}
    carol_task_id = tis["run_process"].xcom_pull(task_ids="run_process")
    task = carol_sandbox.task(carol_task_id)
    assert task["mdmTaskStatus"] == "COMPLETED"
    lines = [(entry["mdmLogLevel"], entry["mdmLogMessage"]) for entry in task["logs"]]
    shipped = {("INFO", f"App process finished: Carol task {carol_task_id}"),
               ("INFO", "Target staging from the app settings: customers")}
    if compat.AIRFLOW_V_3_1_PLUS:
        assert shipped <= set(lines)
    else:  # before 3.1 an in-process run routes nothing by announcement; 2.11 ships no task logs at all
        assert not shipped & set(lines)


def test_every_dag_file_parses_without_import_errors_on_this_line(airflow_db):
    """What the DAG processor does with the examples and the test DAGs: no file fails to import."""
    try:  # Airflow 3.3 moved DagBag
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:
        from airflow.models.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "tests" / "dags"))  # [core] load_examples is off (conftest)
    assert bag.import_errors == {}
    assert {p.stem for p in EXAMPLES.glob("*.py")} - {Path(d.fileloc).stem for d in bag.dags.values()} == (
        set() if compat.AIRFLOW_V_3_0_PLUS else {"carol_event_driven"}
    )


def test_carol_event_driven_parses_on_every_line_and_defines_its_dag_from_3_0():
    """AssetWatcher is Airflow 3.0+: on 2.11 the file still parses (no import error) and defines no DAG."""
    module = vars(load_module("carol_event_driven"))
    assert ("dag" in module) == compat.AIRFLOW_V_3_0_PLUS


@pytest.mark.dag
@pytest.mark.skipif(not compat.AIRFLOW_V_3_0_PLUS, reason="AssetWatcher (event-driven DAGs) is Airflow 3.0+")
def test_carol_event_driven_parses_with_its_watcher_and_a_manual_run_checks_nothing(
    airflow_db, carol_sandbox
):
    """The watcher only fires in a triggerer (tests/deployment/test_events.py); ``dag.test()`` runs the
    DAG by hand, with no Carol event: the check runs and finds nothing to check."""
    dag = load_dag("carol_event_driven")
    (asset,) = dag.timetable.asset_condition.objects
    (watcher,) = asset.watchers
    assert type(watcher.trigger).__name__ == "CarolStagingEventTrigger"
    assert watcher.trigger.staging == "event_orders"
    dag_run, tis = run_dag(dag)
    assert dag_run.state == "success", {t: ti.state for t, ti in tis.items()}
    assert tis["check_records"].xcom_pull(task_ids="check_records") == []
