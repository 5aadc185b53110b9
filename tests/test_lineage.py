"""OpenLineage: the events the real OpenLineage provider emits for a DAG of every data-moving operator.

The DAG (tests/dags/dag_lineage.py) runs with ``dag.test()`` in a child process configured like a user
would (``AIRFLOW__OPENLINEAGE__TRANSPORT`` = the file transport), against the sandbox and the BigQuery
emulator; the test reads the events OpenLineage wrote. A child process because the provider decides
once per process, when its plugin is imported, whether it is enabled.
"""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parent.parent
RUN_DAG = """
import json, sys
from tests.dagutil import load_dag, run_dag
dag_run, tis = run_dag(load_dag(sys.argv[1]), run_conf=json.loads(sys.argv[2]))
print("STATES", json.dumps({task: ti.state for task, ti in tis.items()}))
sys.exit(0 if dag_run.state == "success" else 1)
"""


def run_dag_child(script: str, dag: str, conf: dict[str, Any], env: dict[str, str]) -> None:
    """Run ``dag`` with ``script`` in a child interpreter (OpenLineage decides once per process)."""
    done = subprocess.run(
        [sys.executable, "-c", script, dag, json.dumps(conf)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]


def run_dag_with_openlineage(dag: str, conf: dict[str, Any], events: Path) -> list[dict[str, Any]]:
    """Run ``dag`` in a child process with OpenLineage's file transport; return the events it wrote."""
    transport = {"type": "file", "log_file_path": str(events), "append": True}
    env = {
        **os.environ,
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(transport),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "carol-tests",
        "PYTHONPATH": str(REPO),
    }
    run_dag_child(RUN_DAG, dag, conf, env)
    return [json.loads(line) for line in events.read_text().splitlines() if line.strip()]


def complete(events: list[dict[str, Any]], task_id: str) -> list[dict[str, Any]]:
    """The COMPLETE events of ``task_id`` (one per map index)."""
    name = f"test_lineage.{task_id}"
    return [e for e in events if e["eventType"] == "COMPLETE" and e["job"]["name"] == name]


def datasets(event: dict[str, Any], kind: str) -> dict[tuple[str, str], dict[str, Any]]:
    """``inputs`` or ``outputs`` of an event by (namespace, name)."""
    return {(d["namespace"], d["name"]): d for d in event[kind]}


def fields(dataset: dict[str, Any]) -> dict[str, str | None]:
    return {f["name"]: f.get("type") for f in dataset["facets"]["schema"]["fields"]}


@pytest.fixture(scope="module")
def lineage_run(airflow_db, carol_sandbox_server, bigquery_emulator, tmp_path_factory):
    """One run of the lineage DAG; its events, the sandbox, the BigQuery names and the work directory."""
    work = tmp_path_factory.mktemp("lineage")
    with pytest.MonkeyPatch.context() as monkeypatch:
        from tests.bigquery_fixtures import CarolBigQuery

        sandbox = carol_sandbox_server
        sandbox.reset()
        project = f"carol-{sandbox.tenant_id[:20]}"
        setup = CarolBigQuery(sandbox, bigquery_emulator, project, sandbox.tenant_id)
        bigquery_emulator.client(project).create_dataset(f"{project}.{setup.dataset}", exists_ok=True)
        monkeypatch.setenv("AIRFLOW_CONN_CAROL_DEFAULT", setup.connection_json())
        sandbox.attach_bigquery(bigquery_emulator.rest, bigquery_emulator.grpc)
        try:
            events = run_dag_with_openlineage("dag_lineage", {"work": str(work)}, work / "events.jsonl")
        finally:
            sandbox.attach_bigquery(None)
    return {"events": events, "sandbox": sandbox, "bq": f"{project}.{setup.dataset}", "work": work}


def carol(lineage_run: dict[str, Any], staging: str) -> tuple[str, str]:
    sandbox = lineage_run["sandbox"]
    return (
        "carol://" + f"{sandbox.organization}.carol.ai",
        f"{sandbox.tenant}.{sandbox.connector_id}.{staging}",
    )


@pytest.mark.dag
def test_staging_send_outputs_the_staging_table_with_its_schema_and_what_was_sent(lineage_run):
    [event] = complete(lineage_run["events"], "send")
    [output] = event["outputs"]
    assert (output["namespace"], output["name"]) == carol(lineage_run, "lin_orders")
    assert fields(output) == {"id": "long", "region": "string", "amount": "double"}
    stats = output["outputFacets"]["outputStatistics"]
    sent = lineage_run["sandbox"].staging_count("lin_orders")
    assert sent == 40 and stats["rowCount"] == 40
    orders = runpy.run_path(str(REPO / "tests" / "dags" / "dag_lineage.py"))["ORDERS"]
    chunks = [orders[i : i + 15] for i in range(0, 40, 15)]  # chunk_size=15: the JSON bodies, before gzip
    assert stats["size"] == sum(len(json.dumps(chunk, separators=(",", ":"))) for chunk in chunks)
    assert event["inputs"] == []


@pytest.mark.dag
def test_mapped_sends_each_output_their_slice_and_the_end_task_the_whole_batch(lineage_run):
    target = carol(lineage_run, "lin_invoices")
    slices = complete(lineage_run["events"], "mapped_send")
    counts = sorted(
        datasets(e, "outputs")[target]["outputFacets"]["outputStatistics"]["rowCount"] for e in slices
    )
    assert counts == [15, 25]
    [end] = complete(lineage_run["events"], "end_batch")
    stats = datasets(end, "outputs")[target]["outputFacets"]["outputStatistics"]
    assert stats["rowCount"] == 40 == lineage_run["sandbox"].staging_count("lin_invoices")
    assert "schema" not in datasets(end, "outputs")[target]["facets"]  # lin_invoices has no schema


@pytest.mark.dag
def test_bigquery_ctas_reads_the_mirror_and_writes_the_copy_with_its_schema(lineage_run):
    bq = lineage_run["bq"]
    [event] = complete(lineage_run["events"], "ctas")
    assert list(datasets(event, "inputs")) == [("bigquery", f"{bq}.stg_sandbox_connector_lin_orders")]
    [output] = event["outputs"]
    assert (output["namespace"], output["name"]) == ("bigquery", f"{bq}.lin_copy")
    assert fields(output) == {"id": "INTEGER", "region": "STRING", "amount": "FLOAT"}


@pytest.mark.dag
def test_bigquery_dml_names_its_target_as_output_with_the_rows_it_changed(lineage_run):
    bq = lineage_run["bq"]
    [event] = complete(lineage_run["events"], "insert")
    assert list(datasets(event, "inputs")) == [("bigquery", f"{bq}.stg_sandbox_connector_lin_orders")]
    [output] = event["outputs"]
    assert (output["namespace"], output["name"]) == ("bigquery", f"{bq}.lin_copy")
    assert output["outputFacets"]["outputStatistics"]["rowCount"] == 40


@pytest.mark.dag
def test_bigquery_query_to_parquet_outputs_the_file_not_the_anonymous_result_table(lineage_run):
    work, bq = lineage_run["work"], lineage_run["bq"]
    [event] = complete(lineage_run["events"], "to_parquet")
    assert list(datasets(event, "inputs")) == [("bigquery", f"{bq}.lin_copy")]
    [output] = event["outputs"]
    assert (output["namespace"], output["name"]) == ("file", str(work / "regions.parquet"))
    assert (
        output["outputFacets"]["outputStatistics"]["rowCount"] == 2 == pq.read_table(output["name"]).num_rows
    )
    assert [f["name"] for f in output["facets"]["schema"]["fields"]] == ["region", "n"]


@pytest.mark.dag
def test_read_table_inputs_the_table_with_rows_read_and_outputs_the_file(lineage_run):
    work, bq = lineage_run["work"], lineage_run["bq"]
    [event] = complete(lineage_run["events"], "read_table")
    [source] = event["inputs"]
    assert (source["namespace"], source["name"]) == ("bigquery", f"{bq}.lin_copy")
    assert source["inputFacets"]["inputStatistics"]["rowCount"] == 80
    assert list(datasets(event, "outputs")) == [("file", str(work / "copy.parquet"))]


@pytest.mark.dag
def test_duckdb_inputs_its_queries_tables_and_files_and_outputs_what_it_wrote(lineage_run):
    work, bq = lineage_run["work"], lineage_run["bq"]
    [to_file] = complete(lineage_run["events"], "duck_file")
    assert set(datasets(to_file, "inputs")) == {
        ("bigquery", f"{bq}.lin_copy"),
        ("file", str(work / "regions.parquet")),
    }
    [written] = to_file["outputs"]
    assert (written["namespace"], written["name"]) == ("file", str(work / "summary.parquet"))
    assert written["outputFacets"]["outputStatistics"]["rowCount"] == 2

    [to_staging] = complete(lineage_run["events"], "duck_staging")
    [table] = to_staging["inputs"]
    assert (table["namespace"], table["name"]) == ("bigquery", f"{bq}.lin_copy")
    assert table["inputFacets"]["inputStatistics"]["rowCount"] == 80
    [staging] = to_staging["outputs"]
    assert (staging["namespace"], staging["name"]) == carol(lineage_run, "lin_by_region")
    assert staging["outputFacets"]["outputStatistics"]["rowCount"] == 2
    assert lineage_run["sandbox"].staging_count("lin_by_region") == 2


@pytest.mark.dag
def test_operators_that_move_no_data_add_no_datasets(lineage_run):
    for task_id in ("schema", "start_batch", "dry_send"):  # a dry run sends nothing
        [event] = complete(lineage_run["events"], task_id)
        assert (event["inputs"], event["outputs"]) == ([], []), task_id


# Makes the OpenLineage packages absent for the process, as if never installed: no module imports and no
# distribution metadata (so Airflow finds neither the provider nor its plugin). Every import finder is
# wrapped, including the one importlib_metadata adds, which Airflow uses to discover providers.
BLOCK_OPENLINEAGE = """
import importlib.machinery, re, sys
try:
    import importlib_metadata  # noqa: F401 - installs its own distribution finder
except ImportError:
    pass

HIDDEN = {"apache-airflow-providers-openlineage", "openlineage-python", "openlineage-integration-common",
          "openlineage-sql"}

class HideOpenLineage:
    def __init__(self, finder):
        self.finder = finder

    def __getattr__(self, name):
        return getattr(self.finder, name)

    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top in ("openlineage", "openlineage_sql") or name.startswith("airflow.providers.openlineage"):
            return None
        find = getattr(self.finder, "find_spec", None)
        return find(name, path, target) if find else None

    def find_distributions(self, *args, **kwargs):
        find = getattr(self.finder, "find_distributions", None)
        for dist in find(*args, **kwargs) if find else ():
            if re.sub(r"[-_.]+", "-", dist.metadata["Name"] or "").lower() not in HIDDEN:
                yield dist

sys.meta_path[:] = [HideOpenLineage(finder) for finder in sys.meta_path]
"""


def test_operators_import_and_build_without_the_openlineage_provider():
    """With every OpenLineage module unimportable, the operator modules import and a DAG builds."""
    script = (
        BLOCK_OPENLINEAGE
        + """
import airflow_provider_carol.operators.staging as staging
import airflow_provider_carol.operators.bigquery as bigquery
import airflow_provider_carol.operators.duckdb as duckdb
staging.CarolStagingSendOperator(task_id="s", staging_name="x", data=[{"id": 1}])
bigquery.CarolBigQueryOperator(task_id="q", sql="SELECT 1")
duckdb.CarolDuckDBOperator(task_id="d", sql="SELECT 1")
assert not [m for m in sys.modules if m.startswith(("openlineage", "airflow.providers.openlineage"))]
from airflow.providers_manager import ProvidersManager
assert "apache-airflow-providers-openlineage" not in ProvidersManager().providers
try:
    import airflow_provider_carol.lineage
except ModuleNotFoundError as exc:
    print("LINEAGE-NEEDS-OPENLINEAGE", exc.name)
"""
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "LINEAGE-NEEDS-OPENLINEAGE" in done.stdout


@pytest.mark.dag
def test_a_send_dag_runs_unchanged_without_the_openlineage_provider(airflow_db, carol_sandbox, tmp_path):
    """A real send through dag.test() with OpenLineage blocked (and configured): the data arrives."""
    transport = {"type": "file", "log_file_path": str(tmp_path / "events.jsonl"), "append": True}
    script = BLOCK_OPENLINEAGE + RUN_DAG
    env = {**os.environ, "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(transport), "PYTHONPATH": str(REPO)}
    run_dag_child(script, "dag_lineage_send_only", {}, env)
    assert carol_sandbox.staging_count("lin_plain") == 3
    assert not (tmp_path / "events.jsonl").exists()


def test_file_names_follow_the_openlineage_spec_and_drop_connection_ids(tmp_path, monkeypatch):
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    from airflow_provider_carol.lineage import file_location

    monkeypatch.chdir(tmp_path)
    assert file_location("out/a.parquet") == ("file", str(tmp_path / "out" / "a.parquet"))
    assert file_location(tmp_path / "b.csv") == ("file", str(tmp_path / "b.csv"))
    assert file_location("file:///data/c.parquet") == ("file", "/data/c.parquet")
    assert file_location("s3://aws_default@bucket/k/x.parquet") == ("s3://bucket", "k/x.parquet")
    assert file_location(ObjectStoragePath("s3://aws_default@bucket/k/x.parquet")) == (
        "s3://bucket",
        "k/x.parquet",
    )
    assert file_location(ObjectStoragePath("file:///data/d.parquet")) == ("file", "/data/d.parquet")


def test_staging_schema_facet_keeps_nested_objects_and_is_absent_without_a_schema():
    from airflow_provider_carol.hooks.staging.schema import schema_payload
    from airflow_provider_carol.lineage import staging_schema_facet

    properties = {
        "id": {"type": "long"},
        "address": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    facet = staging_schema_facet(schema_payload("customers", properties, ["id"]))
    assert [(f.name, f.type, [(c.name, c.type) for c in f.fields]) for f in facet.fields] == [
        ("id", "long", []),
        ("address", "object", [("city", "string")]),
    ]
    assert staging_schema_facet(None) is None
    assert staging_schema_facet({"mdmStagingMapping": {"properties": {}}}) is None


def test_batch_results_are_summed_per_staging_table():
    from airflow_provider_carol.lineage import StagingWrite

    results = [
        {"connector_id": "c1", "staging_name": "a", "records": 10, "bytes": 100},
        {"connector_id": "c1", "staging_name": "a", "records": 5, "bytes": 50},
        {"connector_id": "c1", "staging_name": "b", "records": 0, "bytes": 0},
    ]
    assert StagingWrite.merged(results) == [StagingWrite("c1", "a", 15, 150), StagingWrite("c1", "b", 0, 0)]
