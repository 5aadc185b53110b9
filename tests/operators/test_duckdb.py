"""CarolDuckDBOperator: Carol queries/tables and local files in one DuckDB, against the real emulator."""
from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_provider_carol.exceptions import CarolBigQueryError, CarolConfigError
from airflow_provider_carol.operators.duckdb import CarolDuckDBOperator, quote_identifier, split_statements


def run(operator):
    return operator.execute({"ti": None})


@pytest.fixture
def sales(carol_bigquery):
    carol_bigquery.load_table("dd_sales", pa.table({
        "id": pa.array(range(1, 1001), pa.int64()),
        "region": [("north", "south", "east", "west")[i % 4] for i in range(1000)],
        "amount": pa.array([float(i) for i in range(1, 1001)], pa.float64()),
    }))
    return carol_bigquery


def test_query_table_and_local_file_join_in_memory(sales, tmp_path):
    targets = tmp_path / "targets.csv"
    targets.write_text("region,target\nnorth,100000\nsouth,1\neast,1\nwest,1\n")
    result = run(CarolDuckDBOperator(
        task_id="d",
        queries={"big": "SELECT region, amount FROM dd_sales WHERE amount > @floor"},
        query_parameters={"floor": 500},
        tables={"raw sales": {"table": "dd_sales", "columns": ["id", "region"],
                              "row_restriction": "id <= 8"}},
        files={"targets": str(targets)},
        sql='SELECT b.region, SUM(b.amount) > t.target AS hit, '
            '(SELECT COUNT(*) FROM "raw sales") AS raw_rows '
            "FROM big b JOIN targets t USING (region) GROUP BY b.region, t.target ORDER BY b.region",
    ))
    assert [row["region"] for row in result] == ["east", "north", "south", "west"]
    # north: ids 501, 505, ..., 997 sum to 93,625, under its target of 100,000
    assert {row["region"]: row["hit"] for row in result} == {"east": True, "north": False, "south": True,
                                                             "west": True}
    assert {row["raw_rows"] for row in result} == {8}


def test_result_streams_to_parquet(sales, tmp_path):
    out = tmp_path / "by_region.parquet"
    summary = run(CarolDuckDBOperator(task_id="d", tables={"s": "dd_sales"}, output_path=str(out),
                                      sql="SELECT region, COUNT(*) AS n FROM s GROUP BY region"))
    assert summary["rows"] == 4
    assert sorted(pq.read_table(out).column("n").to_pylist()) == [250, 250, 250, 250]


def test_database_file_keeps_the_sources_as_tables(sales, tmp_path):
    db = tmp_path / "work.duckdb"
    run(CarolDuckDBOperator(task_id="d", tables={'odd "name"': "dd_sales"}, database=str(db),
                            sql=['CREATE TABLE summary AS SELECT COUNT(*) AS n FROM "odd ""name"""',
                                 "SELECT * FROM summary"]))
    with duckdb.connect(str(db), read_only=True) as connection:
        assert connection.execute('SELECT COUNT(*) FROM "odd ""name"""').fetchone() == (1000,)
        assert connection.execute("SELECT n FROM summary").fetchone() == (1000,)


def test_sql_cannot_read_files_unless_enabled(carol_bigquery, tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    with pytest.raises(duckdb.PermissionException, match="disabled by configuration"):
        run(CarolDuckDBOperator(task_id="d", sql=f"SELECT * FROM read_csv('{secret}')"))
    assert run(CarolDuckDBOperator(task_id="d", sql=f"SELECT * FROM read_csv('{secret}')",
                                   enable_external_access=True)) == [{"a": 1}]


def test_several_statements_in_one_string_are_rejected_before_anything_loads(carol_bigquery):
    with pytest.raises(CarolConfigError, match="2 statements"):
        run(CarolDuckDBOperator(task_id="d", queries={"x": "SELECT 1 AS a"},
                                sql="SELECT 1; DROP TABLE x"))
    with pytest.raises(CarolConfigError, match="not valid DuckDB SQL"):
        split_statements("SELEC 1", "d")
    assert carol_bigquery.key_requests() == 0  # nothing reached Carol


def test_bad_bigquery_sql_fails_in_the_dry_run(carol_bigquery):
    with pytest.raises(CarolBigQueryError, match="dry run failed"):
        run(CarolDuckDBOperator(task_id="d", queries={"x": "SELECT nope FROM dd_missing"},
                                sql="SELECT * FROM x"))


def test_names_and_arguments_are_checked():
    assert quote_identifier('a"b') == '"a""b"'
    with pytest.raises(CarolConfigError, match="used twice"):
        run(CarolDuckDBOperator(task_id="d", sql="SELECT 1", files={"t": "a.csv"}, tables={"T": "t"}))
    with pytest.raises(CarolConfigError, match="not both"):
        CarolDuckDBOperator(task_id="d", sql="SELECT 1", output_path="x.parquet", staging_name="s")
    with pytest.raises(CarolConfigError, match="format"):
        run(CarolDuckDBOperator(task_id="d", sql="SELECT 1", files={"t": "data.xlsx"}))


def test_xcom_cap(carol_bigquery):
    with pytest.raises(CarolConfigError, match="max_xcom_rows=3"):
        run(CarolDuckDBOperator(task_id="d", sql="SELECT * FROM range(10)", max_xcom_rows=3))
