"""File and SQL sources: Parquet/CSV/NDJSON streams (paths, globs, ObjectStoragePath), SQLite (common-sql)."""

from __future__ import annotations

import gzip
import json
import sqlite3

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from airflow_provider_carol.exceptions import CarolConfigError
from airflow_provider_carol.hooks.carol import CarolHook
from airflow_provider_carol.hooks.staging import sources


def table(start: int, stop: int) -> pa.Table:
    ids = list(range(start, stop))
    return pa.table(
        {
            "id": ids,
            "name": [f"n{i}" for i in ids],
            "at": pa.array(
                [1_700_000_000_000_000 + i for i in ids], pa.timestamp("us", tz="America/Sao_Paulo")
            ),
        }
    )


@pytest.fixture
def files(tmp_path):
    pq.write_table(table(0, 300), tmp_path / "part-0.parquet", row_group_size=64)
    pacsv.write_csv(table(300, 450).drop_columns(["at"]), tmp_path / "part-1.csv")
    with gzip.open(tmp_path / "part-2.ndjson.gz", "wt") as out:
        for i in range(450, 500):
            out.write(json.dumps({"id": i, "name": f"n{i}", "nested": {"k": [i]}}) + "\n\n")
    return tmp_path


def ids_of(spec: sources.SourceSpec, block_size: int = 64) -> list[int]:
    return [record["id"] for block in sources.iter_blocks(spec, block_size) for record in block]


def test_parquet_csv_and_gzipped_ndjson_stream_in_order(files):
    spec = sources.SourceSpec(
        path=[str(files / "part-0.parquet"), files / "part-1.csv", str(files / "part-2.ndjson.gz")]
    )
    assert ids_of(spec) == list(range(500))
    assert sources.count_rows(spec) == 500
    first = sources.first_records(spec, 2)
    assert first[0]["at"].tzinfo is not None and first[0]["at"].utcoffset().total_seconds() == 0


def test_globs_and_object_storage_paths_are_expanded(files):
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    assert ids_of(sources.SourceSpec(path=str(files / "part-*"))) == list(range(500))
    storage = ObjectStoragePath(f"file://{files}/part-0.parquet")
    assert sources.count_rows(sources.SourceSpec(path=storage)) == 300
    assert ids_of(sources.SourceSpec(path=storage))[-1] == 299


def test_missing_files_and_unknown_formats_are_clear_errors(files):
    with pytest.raises(CarolConfigError, match="matched no files"):
        sources.count_rows(sources.SourceSpec(path=str(files / "nothing-*.csv")))
    with pytest.raises(CarolConfigError, match="is not a file"):
        sources.count_rows(sources.SourceSpec(path=str(files / "absent.parquet")))
    (files / "data.txt").write_text("x")
    with pytest.raises(CarolConfigError, match="Cannot tell the format"):
        sources.count_rows(sources.SourceSpec(path=str(files / "data.txt")))


def test_a_broken_ndjson_line_is_named(tmp_path):
    path = tmp_path / "bad.ndjson"
    path.write_text('{"id": 1}\n{"id": 2\n')
    with pytest.raises(CarolConfigError, match=r"bad.ndjson line 2 is not a JSON object"):
        ids_of(sources.SourceSpec(path=str(path)))


def test_files_are_sent_to_staging_exactly_once(carol_sandbox, files):
    summary = CarolHook().send_to_staging("customers", path=str(files / "part-*"), chunk_size=100)
    assert sorted(r["id"] for r in carol_sandbox.records("customers")) == list(range(500))
    assert summary.records == 500 and carol_sandbox.batch(summary.batch_id)["totals_match"] is True


@pytest.fixture
def sqlite_conn(tmp_path, monkeypatch):
    db = tmp_path / "erp.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table customers (id integer primary key, name text, balance real)")
        conn.executemany("insert into customers values (?, ?, ?)", [(i, f"c{i}", i / 4) for i in range(1234)])
    monkeypatch.setenv("AIRFLOW_CONN_ERP_DB", json.dumps({"conn_type": "sqlite", "host": str(db)}))
    return "erp_db"


def test_sql_rows_are_fetched_in_chunks_and_counted(carol_sandbox, sqlite_conn):
    spec = sources.SourceSpec(
        sql="select * from customers where id >= ? order by id",
        sql_conn_id=sqlite_conn,
        sql_parameters=(1000,),
    )
    assert sources.count_rows(spec) == 234
    assert [len(block) for block in sources.iter_blocks(spec, 100)] == [100, 100, 34]
    summary = CarolHook().send_to_staging(
        "customers", sql="select * from customers", sql_conn_id=sqlite_conn, chunk_size=500
    )
    stored = carol_sandbox.records("customers")
    assert summary.records == 1234 and sorted(r["id"] for r in stored) == list(range(1234))
    assert stored[4] == {"id": 4, "name": "c4", "balance": 1.0}


def test_a_non_sql_connection_is_refused(carol_sandbox):
    with pytest.raises(CarolConfigError, match="is not a SQL connection"):
        CarolHook().send_to_staging("customers", sql="select 1", sql_conn_id="carol_default")
