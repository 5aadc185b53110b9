"""One Carol batch spanning dynamically mapped send tasks, one per file (Parquet, CSV and NDJSON).

``export_files`` stands in for an extract step: it writes ``params.files`` invoice files of
``params.rows_per_file`` rows each, in turn Parquet, CSV and NDJSON (how many files exist is known only
at run time). ``start_batch`` counts each file's rows and gives each file a contiguous range of sequence
numbers in ONE batch; ``send`` is mapped over the files with ``expand_kwargs``, so the files are sent in
parallel and a retried file re-sends the same ``(batchId, sequence)`` pairs (Carol replaces them, nothing
is duplicated); ``end_batch`` checks every file was sent in full and only then sends the batch summary.

Needs only ``carol_default`` (the staging goes to the connection's ``connector_id``). Files go to a fresh
temporary directory (tasks of a run must share a disk, as with the LocalExecutor).
"""

from __future__ import annotations

import json
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_carol.operators.staging import (
    CarolEndBatchOperator,
    CarolStagingSendOperator,
    CarolStartBatchOperator,
)

FORMATS = ("parquet", "csv", "ndjson")

with DAG(
    dag_id="carol_mapped_ingest",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["carol", "example", "staging"],
    params={"files": 5, "rows_per_file": 400},
    doc_md=__doc__,
) as dag:

    @task
    def export_files(params: dict[str, Any] | None = None) -> list[str]:
        """Write the invoice files; return their paths (the batch's partitions)."""
        import pyarrow as pa
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        params = params or {}
        files, per_file = int(params.get("files", 5)), int(params.get("rows_per_file", 400))
        work = Path(tempfile.mkdtemp(prefix="carol-mapped-ingest-"))
        paths = []
        for number in range(files):
            ids = range(number * per_file + 1, (number + 1) * per_file + 1)
            table = pa.table(
                {
                    "id": list(ids),
                    "invoice": [f"NF-{i:07d}" for i in ids],
                    "total": [round(i * 1.25, 2) for i in ids],
                    "file": [number] * per_file,
                }
            )
            path = work / f"invoices-{number:03d}.{FORMATS[number % 3]}"
            if path.suffix == ".parquet":
                pq.write_table(table, path)
            elif path.suffix == ".csv":
                pacsv.write_csv(table, path)
            else:
                with path.open("w") as out:
                    out.writelines(json.dumps(row) + "\n" for row in table.to_pylist())
            paths.append(str(path))
        return paths

    start = CarolStartBatchOperator(task_id="start_batch", partitions=export_files(), chunk_size=150)
    send = CarolStagingSendOperator.partial(
        task_id="send", staging_name="invoices", max_in_flight=2
    ).expand_kwargs(start.output)
    CarolEndBatchOperator(task_id="end_batch", plan=start.output["plan"], results=send.output)
