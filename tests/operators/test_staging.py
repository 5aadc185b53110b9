"""Staging operators in DAG runs (``dag.test()``) on the sandbox: mapped batches, SQL, retries, assets."""

from __future__ import annotations

import json
import sqlite3

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from airflow_provider_carol import compat
from airflow_provider_carol.operators.staging import CarolStagingSendOperator, staging_asset_uri
from tests.dagutil import load_dag, run_dag

pytestmark = pytest.mark.dag


def asset_event_uris() -> list[str]:
    """URIs of the asset events stored (dataset events on 2.11, where assets are still datasets)."""
    from airflow.utils.session import create_session
    from sqlalchemy import select

    if compat.AIRFLOW_V_3_0_PLUS:
        from airflow.models.asset import AssetEvent, AssetModel

        query = select(AssetModel.uri).join(AssetEvent, AssetEvent.asset_id == AssetModel.id)
    else:
        from airflow.models.dataset import DatasetEvent, DatasetModel

        query = select(DatasetModel.uri).join(DatasetEvent, DatasetEvent.dataset_id == DatasetModel.id)
    with create_session() as session:
        return list(session.scalars(query))


@pytest.fixture
def partitions(tmp_path):
    def part(start, stop):
        ids = list(range(start, stop))
        return pa.table({"id": ids, "name": [f"c{i}" for i in ids], "score": [i / 8 for i in ids]})

    pq.write_table(part(0, 730), tmp_path / "a.parquet", row_group_size=100)
    pacsv.write_csv(part(730, 1000), tmp_path / "b.csv")
    with (tmp_path / "c.ndjson").open("w") as out:
        out.writelines(
            json.dumps({"id": i, "name": f"c{i}", "score": i / 8}) + "\n" for i in range(1000, 1055)
        )
    return [str(tmp_path / name) for name in ("a.parquet", "b.csv", "c.ndjson")]


def test_mapped_sends_share_one_gap_free_batch_and_one_exact_summary(airflow_db, carol_sandbox, partitions):
    dag_run, tis = run_dag(load_dag("dag_ingest_mapped_batch"), run_conf={"files": partitions})
    assert dag_run.state == "success", {key: ti.state for key, ti in tis.items()}
    assert {key for key in tis if key.startswith("send[")} == {"send[0]", "send[1]", "send[2]"}
    (batch,) = carol_sandbox.batches()
    assert batch["sequences"] == list(range(1, 8 + 3 + 2)) and batch["missing_sequences"] == []
    assert batch["summary"]["totalRecords"] == 1055 and batch["summary"]["totalRequests"] == 12
    assert batch["totals_match"] is True and batch["summaries_posted"] == 1
    connector_id = tis["connector"].xcom_pull(task_ids="connector")
    assert batch["connectors"] == [connector_id]
    assert sorted(r["id"] for r in carol_sandbox.records("customers")) == list(range(1055))
    schema = tis["schema"].xcom_pull(task_ids="schema")
    assert schema["mdmStagingMapping"]["properties"]["score"] == {"type": "double"}
    assert staging_asset_uri(carol_sandbox.tenant, connector_id, "customers") in asset_event_uris()


def test_sql_source_moves_an_erp_table(airflow_db, carol_sandbox, tmp_path, monkeypatch):
    db = tmp_path / "erp.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table customers (id integer primary key, name text, balance real)")
        conn.executemany("insert into customers values (?, ?, ?)", [(i, f"c{i}", None) for i in range(1000)])
    monkeypatch.setenv("AIRFLOW_CONN_ERP_DB", json.dumps({"conn_type": "sqlite", "host": str(db)}))
    dag_run, tis = run_dag(load_dag("dag_ingest_sql"))
    assert dag_run.state == "success"
    result = tis["send_customers"].xcom_pull(task_ids="send_customers")
    assert (result["records"], result["requests"], result["summary_sent"]) == (1000, 3, True)
    assert set(result) >= {"batch_id", "records", "requests", "bytes", "seconds"}
    assert carol_sandbox.batch(result["batch_id"])["totals_match"] is True
    assert sorted(r["id"] for r in carol_sandbox.records("customers")) == list(range(1000))
    uri = staging_asset_uri(carol_sandbox.tenant, carol_sandbox.connector_id, "customers")
    assert uri in asset_event_uris()  # a lone send task is its own batch: it emits the asset


def test_a_retried_send_resumes_the_same_batch_and_duplicates_nothing(airflow_db, carol_sandbox):
    intake = "/api/v2/staging/intake/customers"
    carol_sandbox.add_fault(intake, method="POST", latency=0.01, times=4)  # chunks 1-4 go through
    # A refusal the hook does not retry and Airflow does (a 400 would fail the task at once; 409, like
    # every status pycarol resends intake on, is retried by the hook itself).
    carol_sandbox.add_fault(intake, method="POST", status=423, times=1, body={"errorMessage": "busy"})
    dag_run, tis = run_dag(load_dag("dag_ingest_retry"))
    assert dag_run.state == "success"
    assert tis["send"].try_number == 2
    (batch,) = carol_sandbox.batches()  # both attempts used the same batch id
    # The retry read the acknowledged chunks 1-4 from the task state store and did not send them again;
    # without a store (Airflow < 3.3) it resends them, and Carol replaces them.
    resent = 0 if compat.AIRFLOW_V_3_3_PLUS else 4
    assert batch["redeliveries"] == resent and batch["conflicts"] == 0
    assert batch["sequences"] == list(range(1, 11)) and batch["totals_match"] is True
    assert batch["summaries_posted"] == 1
    assert sorted(r["id"] for r in carol_sandbox.records("customers")) == list(range(1000))


def test_send_operator_builds_without_io_and_adds_the_asset_alias():
    op = CarolStagingSendOperator(
        task_id="t", staging_name="s", data=[{"a": 1}], carol_conn_id="does_not_exist"
    )
    assert [outlet.name for outlet in op.outlets] == ["carol-staging"]
    assert "hook" not in op.__dict__


def test_a_send_checks_itself_first_dry_run_refused_drift_then_evolve(airflow_db, carol_sandbox):
    uri = staging_asset_uri(carol_sandbox.tenant, carol_sandbox.connector_id, "customers")
    events_before = asset_event_uris().count(uri)
    _, tis = run_dag(load_dag("dag_ingest_checks"))
    states = {key: ti.state for key, ti in tis.items()}
    assert states == {"schema": "success", "dry_run": "success", "drifted": "failed", "evolved": "success"}
    dry = tis["dry_run"].xcom_pull(task_ids="dry_run")
    assert (dry["dry_run"], dry["records"], dry["chunks"], dry["summary_sent"]) == (True, 120, 3, False)
    assert dry["bytes"] > 0 and dry["schema"]["email"] == {"type": "string"}
    assert dry["schema_drift"]["added"] == {"email": "string"}
    # Only the evolved send reached the intake: the dry run and the refused drift sent nothing.
    (batch,) = carol_sandbox.batches()
    assert batch["summary"]["totalRecords"] == 40
    assert sorted(r["id"] for r in carol_sandbox.records("customers")) == sorted(f"C{i}" for i in range(40))
    schema = CarolStagingSendOperator(task_id="h", staging_name="customers").hook.get_staging_schema(
        "customers"
    )
    assert schema["mdmStagingMapping"]["properties"]["id"] == {"type": "string"}
    assert asset_event_uris().count(uri) == events_before + 1  # the evolved send only


def test_send_operator_refuses_an_unknown_drift_policy_at_parse_time():
    with pytest.raises(ValueError, match="on_schema_drift must be None"):
        CarolStagingSendOperator(task_id="t", staging_name="s", data=[], on_schema_drift="strict")
