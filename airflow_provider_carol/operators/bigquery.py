"""BigQuery operators: a query on the tenant's dataset, and a table read through the Storage Read API.

Both return small results to XCom (a row cap, with a clear error past it) or stream large ones to
Parquet at a path or ``ObjectStoragePath``, batch by batch, never whole in worker memory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import Context

from airflow_provider_carol.exceptions import CarolConfigError
from airflow_provider_carol.hooks.bigquery.results import (
    DEFAULT_MAX_XCOM_ROWS,
    query_parameters,
    rows_for_xcom,
    write_parquet,
)
from airflow_provider_carol.operators.base import CarolBaseOperator

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from google.cloud import bigquery


def _check_common(max_xcom_rows: int, max_streams: int | None = None) -> None:
    if max_xcom_rows < 0:
        raise CarolConfigError(f"max_xcom_rows must not be negative, got {max_xcom_rows}.")
    if max_streams is not None and max_streams < 1:
        raise CarolConfigError(f"max_streams must be at least 1, got {max_streams}.")


class CarolBigQueryOperator(CarolBaseOperator):
    """Run GoogleSQL on the tenant's BigQuery dataset with Carol's temporary key.

    The SQL is dry-run first, so bad SQL or a missing table fails before any data moves.

    :param sql: the query (templated; a path ending in ``.sql`` is read as a template file).
    :param parameters: ``{name: value}`` or ``{name: (TYPE, value)}`` for ``@name`` in the SQL (templated).
    :param dataset: default dataset (``name`` or ``project.name``); the tenant's by default (templated).
    :param dry_run: only validate; returns the result schema and the bytes the query would scan.
    :param output_path: stream the result to Parquet there (local path or ``ObjectStoragePath``, templated);
        the return value is then ``{"path", "rows", "columns", "job_id"}``.
    :param max_xcom_rows: without ``output_path``, the result rows go to XCom; more rows is an error.
    :param max_streams: Storage Read API streams used to fetch the result.
    :param labels: extra BigQuery job labels (sanitised to BigQuery's label rules).
    :param carol_conn_id: the ``carol`` connection.
    """

    template_fields: Sequence[str] = ("sql", "parameters", "dataset", "output_path", "labels")
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"sql": "sql", "parameters": "json"}
    ui_color = "#4a8af4"

    def __init__(
        self,
        *,
        sql: str,
        parameters: Mapping[str, Any] | Sequence[Any] | None = None,
        dataset: str | None = None,
        dry_run: bool = False,
        output_path: Any = None,
        max_xcom_rows: int = DEFAULT_MAX_XCOM_ROWS,
        max_streams: int = 4,
        labels: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _check_common(max_xcom_rows, max_streams)
        self.sql = sql
        self.parameters = parameters
        self.dataset = dataset
        self.validate_only = dry_run  # ``dry_run`` is a BaseOperator method (template rendering check)
        self.output_path = output_path
        self.max_xcom_rows = max_xcom_rows
        self.max_streams = max_streams
        self.labels = labels

    def execute(self, context: Context) -> Any:
        """Dry-run, run, then return rows (XCom), a Parquet summary, or the dry-run plan."""
        if not isinstance(self.sql, str) or not self.sql.strip():
            raise CarolConfigError(f"{self.task_id}: sql is empty.")
        params = query_parameters(self.parameters)
        plan = self.hook.run_bigquery_query(
            self.sql, parameters=params, dataset=self.dataset, labels=self.labels, dry_run=True
        )
        if self.validate_only:
            return {
                "schema": [f.to_api_repr() for f in plan.schema or []],
                "total_bytes_processed": plan.total_bytes_processed,
            }
        job = self.hook.run_bigquery_query(
            self.sql, parameters=params, dataset=self.dataset, labels=self.labels
        )
        context["ti"].xcom_push(key="job_id", value=job.job_id)
        self.log.info("BigQuery job %s done", job.job_id)
        self._job, self._delivered = job, self._deliver(job)
        return self._delivered

    def get_openlineage_facets_on_complete(self, task_instance: object) -> OperatorLineage:
        """OpenLineage: the tables the job read and wrote (as BigQuery reports them), and the Parquet file."""
        from airflow_provider_carol import lineage

        job = getattr(self, "_job", None)
        if job is None:  # a dry run (it moves no data), or no job ran
            return lineage.OperatorLineage()
        inputs, outputs = lineage.bigquery_job_datasets(job)
        if self.output_path and isinstance(self._delivered, dict):
            outputs.append(lineage.parquet_output(self.output_path, self._delivered))
        return lineage.OperatorLineage(inputs=inputs, outputs=outputs)

    def _deliver(self, job: bigquery.QueryJob) -> Any:
        if job.destination is None:  # DDL/DML or a script: nothing to read
            return {"job_id": job.job_id, "num_dml_affected_rows": job.num_dml_affected_rows}
        total = job.result().total_rows
        if not self.output_path and total is not None and total > self.max_xcom_rows:
            raise CarolConfigError(
                f"BigQuery job {job.job_id} returned {total} rows, more than max_xcom_rows="
                f"{self.max_xcom_rows}; XCom is for small results. Set output_path to stream the result "
                "to Parquet, or raise max_xcom_rows."
            )
        reader = self.hook.query_bigquery_arrow(job, max_streams=self.max_streams)
        if self.output_path:
            return {**write_parquet(reader, self.output_path, log=self.log), "job_id": job.job_id}
        return rows_for_xcom(reader, self.max_xcom_rows, f"BigQuery job {job.job_id}")


class CarolBigQueryReadTableOperator(CarolBaseOperator):
    """Read a table through the BigQuery Storage Read API, several streams in parallel.

    ``row_restriction`` and ``sample_percentage`` apply with or without ``columns`` (pycarol drops them
    without). Row order is not defined across streams.

    :param table: ``table``, ``dataset.table`` or ``project.dataset.table`` (templated).
    :param columns: columns to read; all by default (templated).
    :param row_restriction: a SQL filter such as ``"qty > 1"`` (templated).
    :param sample_percentage: read about this percentage of the rows, in (0, 100].
    :param max_streams: parallel read streams (the server may use fewer).
    :param dataset: dataset for an unqualified ``table``; the tenant's by default (templated).
    :param output_path: stream the rows to Parquet there (local path or ``ObjectStoragePath``, templated).
    :param max_xcom_rows: without ``output_path``, rows go to XCom; more rows is an error.
    :param carol_conn_id: the ``carol`` connection.
    """

    template_fields: Sequence[str] = ("table", "columns", "row_restriction", "dataset", "output_path")
    ui_color = "#4a8af4"

    def __init__(
        self,
        *,
        table: str,
        columns: Sequence[str] | None = None,
        row_restriction: str | None = None,
        sample_percentage: float | None = None,
        max_streams: int = 4,
        dataset: str | None = None,
        output_path: Any = None,
        max_xcom_rows: int = DEFAULT_MAX_XCOM_ROWS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _check_common(max_xcom_rows, max_streams)
        if sample_percentage is not None and not 0 < float(sample_percentage) <= 100:
            raise CarolConfigError(f"sample_percentage must be in (0, 100], got {sample_percentage}.")
        self.table = table
        self.columns = columns
        self.row_restriction = row_restriction
        self.sample_percentage = sample_percentage
        self.max_streams = max_streams
        self.dataset = dataset
        self.output_path = output_path
        self.max_xcom_rows = max_xcom_rows

    def execute(self, context: Context) -> Any:
        """Open a read session and return rows (XCom) or a Parquet summary."""
        reader = self.hook.read_bigquery_table(
            self.table,
            columns=list(self.columns) if self.columns else None,
            row_restriction=self.row_restriction,
            sample_percentage=self.sample_percentage,
            max_streams=self.max_streams,
            dataset=self.dataset,
        )
        self._delivered: dict[str, Any] | list[dict[str, Any]]
        if self.output_path:
            self._delivered = write_parquet(reader, self.output_path, log=self.log)
        else:
            self._delivered = rows_for_xcom(reader, self.max_xcom_rows, f"BigQuery table {self.table}")
        return self._delivered

    def get_openlineage_facets_on_complete(self, task_instance: object) -> OperatorLineage:
        """OpenLineage: the table read (with the rows read) and the Parquet file written, if any."""
        from airflow_provider_carol import lineage

        delivered = getattr(self, "_delivered", None)
        written = delivered if self.output_path and isinstance(delivered, dict) else None
        rows = written["rows"] if written else len(delivered) if isinstance(delivered, list) else None
        table = lineage.bigquery_table_input(self.hook, self.table, self.dataset, rows)
        outputs = [lineage.parquet_output(self.output_path, written)] if written else []
        return lineage.OperatorLineage(inputs=[table], outputs=outputs)
