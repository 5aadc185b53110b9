"""CarolBigQueryOperator and CarolBigQueryReadTableOperator against the sandbox and the real emulator."""
from __future__ import annotations

import datetime as dt
import decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_provider_carol.exceptions import CarolBigQueryError, CarolConfigError
from airflow_provider_carol.operators.bigquery import (
    CarolBigQueryOperator,
    CarolBigQueryReadTableOperator,
    query_parameters,
)


class TaskInstance:
    """What ``execute`` uses of the task instance: ``xcom_push``."""

    def __init__(self) -> None:
        self.xcom: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.xcom[key] = value


def run(operator):
    ti = TaskInstance()
    return operator.execute({"ti": ti}), ti


@pytest.fixture
def orders(carol_bigquery):
    carol_bigquery.load_table("op_orders", pa.table({
        "id": pa.array(range(1, 51), pa.int64()),
        "customer": [f"c{i % 5}" for i in range(1, 51)],
        "amount": pa.array([decimal.Decimal(i) / 4 for i in range(1, 51)], pa.decimal128(10, 2)),
        "ts": pa.array([dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(hours=i)
                        for i in range(1, 51)], pa.timestamp("us", tz="UTC")),
    }))
    return carol_bigquery


def test_query_with_parameters_returns_json_rows_and_pushes_the_job_id(orders):
    result, ti = run(CarolBigQueryOperator(
        task_id="q",
        sql="SELECT customer, COUNT(*) AS n, SUM(amount) AS total, MAX(ts) AS last FROM op_orders "
            "WHERE id > @low GROUP BY customer ORDER BY customer",
        parameters={"low": 40},
    ))
    assert [row["customer"] for row in result] == ["c0", "c1", "c2", "c3", "c4"]
    assert sum(row["n"] for row in result) == 10
    first = result[0]  # ids 45 and 50; NUMERIC arrives as an exact decimal string
    assert (first["customer"], first["n"]) == ("c0", 2)
    assert decimal.Decimal(first["total"]) == decimal.Decimal("23.75")
    assert first["last"] == "2026-01-03T02:00:00+00:00"
    assert ti.xcom["job_id"]


def test_xcom_row_cap_is_a_clear_error(orders):
    with pytest.raises(CarolConfigError, match=r"50 rows, more than max_xcom_rows=10.*output_path"):
        run(CarolBigQueryOperator(task_id="q", sql="SELECT * FROM op_orders", max_xcom_rows=10))


def test_large_result_streams_to_parquet(orders, tmp_path):
    target = tmp_path / "out" / "orders.parquet"
    result, ti = run(CarolBigQueryOperator(task_id="q", sql="SELECT id, amount FROM op_orders",
                                           output_path=str(target), max_xcom_rows=0))
    assert result["rows"] == 50 and result["job_id"] == ti.xcom["job_id"]
    table = pq.read_table(target)
    assert sorted(table.column("id").to_pylist()) == list(range(1, 51))
    assert not (tmp_path / "out" / "orders.parquet.partial").exists()


def test_parquet_to_object_storage_path(orders, tmp_path):
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    target = ObjectStoragePath(f"file://{tmp_path}/orders.parquet")
    result, _ = run(CarolBigQueryReadTableOperator(task_id="r", table="op_orders", columns=["id"],
                                                   output_path=target))
    assert result["rows"] == 50
    assert pq.read_table(tmp_path / "orders.parquet").column_names == ["id"]


def test_dry_run_returns_the_schema_without_running(orders):
    result, ti = run(CarolBigQueryOperator(task_id="q", sql="SELECT id, customer FROM op_orders",
                                           dry_run=True))
    assert [field["name"] for field in result["schema"]] == ["id", "customer"]
    assert "job_id" not in ti.xcom


def test_bad_sql_fails_in_the_dry_run_before_any_job_runs(orders):
    with pytest.raises(CarolBigQueryError, match=r"dry run failed.*Syntax error"):
        run(CarolBigQueryOperator(task_id="q", sql="SELEC id FROM op_orders"))
    jobs = orders.emulator.client(orders.project).list_jobs()
    assert not [job for job in jobs if "SELEC id" in (getattr(job, "query", "") or "")]


def test_ddl_and_dml_return_the_affected_rows(orders):
    run(CarolBigQueryOperator(task_id="ddl",
                              sql="CREATE OR REPLACE TABLE op_copy AS SELECT * FROM op_orders"))
    result, _ = run(CarolBigQueryOperator(task_id="dml", sql="DELETE FROM op_copy WHERE id <= 5"))
    assert result["num_dml_affected_rows"] == 5


def test_read_table_with_filter_only(orders):
    result, _ = run(CarolBigQueryReadTableOperator(task_id="r", table="op_orders",
                                                   row_restriction="customer = 'c1'"))
    assert sorted(row["id"] for row in result) == list(range(1, 51, 5))
    assert set(result[0]) == {"id", "customer", "amount", "ts"}


def test_read_missing_table_fails_clearly(orders):
    with pytest.raises(CarolBigQueryError, match="op_nothing"):
        run(CarolBigQueryReadTableOperator(task_id="r", table="op_nothing"))


def test_sql_file_is_a_template(orders, tmp_path):
    from airflow.providers.common.compat.sdk import DAG

    (tmp_path / "count.sql").write_text("SELECT COUNT(*) AS n FROM op_orders WHERE id <= {{ params.top }}")
    with DAG("sql_file_dag", template_searchpath=[str(tmp_path)], params={"top": 7}):
        operator = CarolBigQueryOperator(task_id="q", sql="count.sql")
    operator.resolve_template_files()
    assert operator.sql.startswith("SELECT COUNT(*)")
    operator.render_template_fields({"params": {"top": 7}})
    result, _ = run(operator)
    assert result == [{"n": 7}]


def test_parameter_inference_and_bad_arguments():
    built = {p.name: p for p in query_parameters(
        {"n": 1, "f": 0.5, "s": "x", "b": True, "ids": [1, 2], "d": ("NUMERIC", "1.5")})}
    assert (built["n"].type_, built["f"].type_, built["s"].type_, built["b"].type_) == (
        "INT64", "FLOAT64", "STRING", "BOOL")
    assert built["ids"].array_type == "INT64" and built["d"].type_ == "NUMERIC"
    with pytest.raises(CarolConfigError, match="'x' is None"):
        query_parameters({"x": None})
    with pytest.raises(CarolConfigError, match="max_streams"):
        CarolBigQueryReadTableOperator(task_id="r", table="t", max_streams=0)
    with pytest.raises(CarolConfigError, match="sample_percentage"):
        CarolBigQueryReadTableOperator(task_id="r", table="t", sample_percentage=150)


def test_staging_intake_appears_in_bigquery_exactly_once(carol_bigquery_mirror):
    from airflow_provider_carol.hooks.carol import CarolHook

    hook = CarolHook()
    records = [{"id": i, "name": f"n{i}"} for i in range(25)]
    hook.send_to_staging("mirror_orders", records, batch_id="mirror-batch-1", chunk_size=10)
    hook.send_to_staging("mirror_orders", records, batch_id="mirror-batch-1", chunk_size=10)  # a redelivery
    assert carol_bigquery_mirror.sandbox.staging_count("mirror_orders") == 25
    result, _ = run(CarolBigQueryOperator(
        task_id="q", sql="SELECT COUNT(*) AS n, COUNT(DISTINCT id) AS ids, MAX(_batch_sequence) AS seqs "
        "FROM stg_sandbox_connector_mirror_orders"))
    assert result == [{"n": 25, "ids": 25, "seqs": 3}]


@pytest.mark.dag
def test_example_dag_sends_queries_and_writes_back(airflow_db, carol_bigquery_mirror):
    from tests.dagutil import load_dag, run_dag

    dag_run, tis = run_dag(load_dag("carol_query_duckdb"))
    assert dag_run.state == "success", {t: ti.state for t, ti in tis.items()}
    totals = tis["totals"].xcom_pull(task_ids="totals")
    assert [row["region"] for row in totals] == ["east", "north", "south", "west"]
    assert sum(row["orders"] for row in totals) == 200
    written = carol_bigquery_mirror.sandbox.records("orders_by_region")
    assert sorted(row["region"] for row in written) == ["east", "north", "south", "west"]
    assert {row["region"]: row["met"] for row in written} == {
        row["region"]: row["amount"] >= 5000 for row in totals}
