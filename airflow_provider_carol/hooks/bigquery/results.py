"""BigQuery parameters and results: typed query parameters, JSON rows for XCom, streamed Parquet.

Shared by the BigQuery and DuckDB operators: a small result goes to XCom (a row cap, with a clear error
past it), a large one is streamed to Parquet batch by batch, never whole in worker memory.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_carol.exceptions import CarolConfigError
from airflow_provider_carol.hooks.core.types import LoggerLike
from airflow_provider_carol.optional import require

if TYPE_CHECKING:
    import pyarrow as pa

DEFAULT_MAX_XCOM_ROWS = 1000
_SCALAR_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "BOOL"),
    (int, "INT64"),
    (float, "FLOAT64"),
    (decimal.Decimal, "NUMERIC"),
    (dt.datetime, "TIMESTAMP"),
    (dt.date, "DATE"),
    (dt.time, "TIME"),
    (bytes, "BYTES"),
    (str, "STRING"),
)


def _scalar_type(name: str, value: Any) -> str:
    for python_type, bq_type in _SCALAR_TYPES:
        if isinstance(value, python_type):
            return bq_type
    raise CarolConfigError(
        f"query parameter {name!r}: cannot infer a BigQuery type for {type(value).__name__}; "
        "give it as (TYPE, value), e.g. ('NUMERIC', '1.5')."
    )


def query_parameters(parameters: Mapping[str, Any] | Sequence[Any] | None) -> list[Any]:
    """BigQuery query parameters from ``{name: value}`` (type inferred) or ``{name: (TYPE, value)}``.

    A list of ready-made ``google.cloud.bigquery`` parameter objects is passed through unchanged.
    """
    if not parameters:
        return []
    require("bigquery")
    from google.cloud import bigquery

    if not isinstance(parameters, Mapping):
        return list(parameters)
    built: list[Any] = []
    for name, raw in parameters.items():
        if isinstance(raw, (tuple, list)) and len(raw) == 2 and isinstance(raw[0], str) and raw[0].isupper():
            bq_type, value = raw
            if isinstance(value, (list, tuple)):
                built.append(bigquery.ArrayQueryParameter(name, bq_type, list(value)))
            else:
                built.append(bigquery.ScalarQueryParameter(name, bq_type, value))
        elif isinstance(raw, (list, tuple)):
            items = list(raw)
            if not items:
                raise CarolConfigError(
                    f"query parameter {name!r}: an empty array needs a type, e.g. ('INT64', [])."
                )
            built.append(bigquery.ArrayQueryParameter(name, _scalar_type(name, items[0]), items))
        elif raw is None:
            raise CarolConfigError(f"query parameter {name!r} is None; give it as (TYPE, None).")
        else:
            built.append(bigquery.ScalarQueryParameter(name, _scalar_type(name, raw), raw))
    return built


def json_value(value: Any) -> Any:
    """A JSON-native copy of an Arrow/Python value for XCom: ISO dates, exact decimals as strings."""
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_value(v) for v in value]
    return value


def rows_for_xcom(batches: Iterable[pa.RecordBatch], max_rows: int, what: str) -> list[dict[str, Any]]:
    """Collect at most ``max_rows`` rows as JSON dicts; past the cap, fail and say how to get the data."""
    rows: list[dict[str, Any]] = []
    for batch in batches:
        if len(rows) + batch.num_rows > max_rows:
            raise CarolConfigError(
                f"{what} returned more than max_xcom_rows={max_rows} rows; XCom is for small results. "
                "Set output_path to stream the result to Parquet, or raise max_xcom_rows."
            )
        rows.extend({k: json_value(v) for k, v in row.items()} for row in batch.to_pylist())
    return rows


def write_parquet(
    reader: pa.RecordBatchReader, output_path: object, *, log: LoggerLike | None = None
) -> dict[str, Any]:
    """Stream ``reader`` into one Parquet file, batch by batch; a local file appears only when complete.

    ``output_path`` is a local path or an ``ObjectStoragePath`` (or a URL string with a scheme, which
    becomes one).
    """
    import pyarrow.parquet as pq

    rows = 0
    if isinstance(output_path, str) and "://" not in output_path:
        os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
        partial = f"{output_path}.partial"
        try:
            with pq.ParquetWriter(partial, reader.schema) as writer:
                rows = _write_batches(writer, reader)
            os.replace(partial, output_path)
        finally:
            if os.path.exists(partial):
                os.remove(partial)
    else:
        from airflow.providers.common.compat.sdk import ObjectStoragePath

        path = (
            output_path if isinstance(output_path, ObjectStoragePath) else ObjectStoragePath(str(output_path))
        )
        with path.open("wb") as handle, pq.ParquetWriter(handle, reader.schema) as writer:
            rows = _write_batches(writer, reader)
    if log is not None:
        log.info("Wrote %d rows to %s", rows, output_path)
    return {"path": str(output_path), "rows": rows, "columns": reader.schema.names}


def _write_batches(writer: Any, reader: pa.RecordBatchReader) -> int:
    rows = 0
    for batch in reader:
        if batch.num_rows:
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows
