"""``CarolDuckDBOperator``: Carol BigQuery queries/tables and local files, as Arrow, in one DuckDB.

Each source is registered with DuckDB as an Arrow table (a zero-copy view, no pandas round trip), the
SQL runs over them, and the result goes to XCom, to Parquet, or straight into a Carol staging table.
SQL cannot reach the file system or the network unless ``enable_external_access`` is set: the files
the DAG declares are read by the operator itself, with pyarrow.
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
from airflow_provider_carol.hooks.files import read_table
from airflow_provider_carol.operators.base import CarolBaseOperator
from airflow_provider_carol.optional import require

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
    from airflow.providers.openlineage.extractors import OperatorLineage
    from google.cloud import bigquery

_BATCH_ROWS = 65_536


def quote_identifier(name: str) -> str:
    """A DuckDB identifier in double quotes (embedded quotes doubled), so any name is just a name."""
    return '"' + name.replace('"', '""') + '"'


def split_statements(sql: str | Sequence[str], task_id: str) -> list[str]:
    """One statement per item: a string must hold exactly one, a list runs in order (the last one's
    result is the output). Parse errors surface here, before any data is loaded."""
    import duckdb

    items = [sql] if isinstance(sql, str) else list(sql)
    if not items:
        raise CarolConfigError(f"{task_id}: sql is empty.")
    statements: list[str] = []
    for index, text in enumerate(items):
        where = "sql" if isinstance(sql, str) else f"sql[{index}]"
        if not isinstance(text, str) or not text.strip():
            raise CarolConfigError(f"{task_id}: {where} is empty.")
        try:
            parsed = duckdb.extract_statements(text)
        except duckdb.Error as exc:
            raise CarolConfigError(f"{task_id}: {where} is not valid DuckDB SQL: {exc}") from None
        if len(parsed) != 1:
            raise CarolConfigError(
                f"{task_id}: {where} holds {len(parsed)} statements; give one statement per item "
                "(pass a list of statements to run several)."
            )
        statements.append(text)
    return statements


class CarolDuckDBOperator(CarolBaseOperator):
    """Load Carol queries/tables and local files into DuckDB as Arrow, run SQL, deliver the result.

    :param sql: one DuckDB statement, or a list run in order whose last one gives the result (templated;
        ``.sql`` files are read as templates). A string with several statements is rejected.
    :param queries: ``{name: GoogleSQL}`` run on the tenant's BigQuery, each loaded as table ``name``.
    :param query_parameters: ``{name: value}`` parameters shared by every query in ``queries``.
    :param tables: ``{name: table}`` or ``{name: {"table", "columns", "row_restriction",
        "sample_percentage"}}`` read through the Storage Read API.
    :param files: ``{name: path}`` or ``{name: {"path", "format"}}``: Parquet, CSV, NDJSON or Arrow IPC,
        a local path or an ``ObjectStoragePath``.
    :param database: a DuckDB database file; in memory by default. With a file, sources are stored as
        tables so they persist.
    :param enable_external_access: let the SQL itself read files/URLs (off by default).
    :param output_path: write the result to Parquet there instead of XCom.
    :param staging_name: send the result to this Carol staging table instead of XCom.
    :param connector_id: connector for ``staging_name`` (the connection's by default).
    :param max_xcom_rows: cap on rows returned to XCom.
    :param max_streams: Storage Read API streams per Carol source.
    :param dataset: default BigQuery dataset; the tenant's by default.
    :param carol_conn_id: the ``carol`` connection.
    """

    template_fields: Sequence[str] = (
        "sql",
        "queries",
        "query_parameters",
        "tables",
        "files",
        "database",
        "output_path",
        "staging_name",
        "connector_id",
        "dataset",
    )
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"sql": "sql", "queries": "json"}
    ui_color = "#fff000"

    def __init__(
        self,
        *,
        sql: str | Sequence[str],
        queries: Mapping[str, str] | None = None,
        query_parameters: Mapping[str, Any] | None = None,
        tables: Mapping[str, str | Mapping[str, Any]] | None = None,
        files: Mapping[str, Any] | None = None,
        database: str | None = None,
        enable_external_access: bool = False,
        output_path: Any = None,
        staging_name: str | None = None,
        connector_id: str | None = None,
        max_xcom_rows: int = DEFAULT_MAX_XCOM_ROWS,
        max_streams: int = 4,
        dataset: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if output_path and staging_name:
            raise CarolConfigError(f"{self.task_id}: give output_path or staging_name, not both.")
        if max_xcom_rows < 0 or max_streams < 1:
            raise CarolConfigError(f"{self.task_id}: max_xcom_rows must be >= 0 and max_streams >= 1.")
        self.sql = sql
        self.queries = queries
        self.query_parameters = query_parameters
        self.tables = tables
        self.files = files
        self.database = database
        self.enable_external_access = enable_external_access
        self.output_path = output_path
        self.staging_name = staging_name
        self.connector_id = connector_id
        self.max_xcom_rows = max_xcom_rows
        self.max_streams = max_streams
        self.dataset = dataset

    def execute(self, context: Context) -> Any:
        """Validate everything, load the sources, run the SQL and deliver the result."""
        require("duckdb")
        if self.queries or self.tables:
            require("bigquery")
        import duckdb

        statements = split_statements(self.sql, self.task_id)
        self._check_names()
        params = query_parameters(self.query_parameters)
        for sql in (self.queries or {}).values():  # bad SQL fails here, before any data moves
            self.hook.run_bigquery_query(sql, parameters=params, dataset=self.dataset, dry_run=True)
        connection = duckdb.connect(
            self.database or ":memory:", config={"enable_external_access": bool(self.enable_external_access)}
        )
        try:
            self._load_sources(connection, params)
            for statement in statements[:-1]:
                connection.execute(statement)
            relation = connection.sql(statements[-1])
            return self._deliver(relation)
        finally:
            connection.close()

    def _check_names(self) -> None:
        seen: set[str] = set()
        for kind in ("queries", "tables", "files"):
            for name in getattr(self, kind) or {}:
                if not isinstance(name, str) or not name.strip():
                    raise CarolConfigError(f"{self.task_id}: each name in {kind} must be a non-empty string.")
                if name.lower() in seen:
                    raise CarolConfigError(f"{self.task_id}: source name {name!r} is used twice.")
                seen.add(name.lower())

    def _load_sources(self, connection: duckdb.DuckDBPyConnection, params: list[Any]) -> None:
        self._jobs: dict[str, bigquery.QueryJob] = {}  # for lineage
        self._source_rows: dict[str, int] = {}
        for name, sql in (self.queries or {}).items():
            job = self._jobs[name] = self.hook.run_bigquery_query(
                sql, parameters=params, dataset=self.dataset
            )
            reader = self.hook.query_bigquery_arrow(job, max_streams=self.max_streams)
            self._register(connection, name, reader)
        for name, spec in (self.tables or {}).items():
            options: dict[str, Any] = {"table": spec} if isinstance(spec, str) else dict(spec)
            table = options.pop("table", None)
            if not table:
                raise CarolConfigError(f"{self.task_id}: tables[{name!r}] needs a 'table'.")
            unknown = set(options) - {"columns", "row_restriction", "sample_percentage", "max_streams"}
            if unknown:
                raise CarolConfigError(f"{self.task_id}: tables[{name!r}] has unknown keys {sorted(unknown)}")
            options.setdefault("max_streams", self.max_streams)
            reader = self.hook.read_bigquery_table(table, dataset=self.dataset, **options)
            self._register(connection, name, reader)
        for name, spec in (self.files or {}).items():
            path, fmt = (spec.get("path"), spec.get("format")) if isinstance(spec, Mapping) else (spec, None)
            if not path:
                raise CarolConfigError(f"{self.task_id}: files[{name!r}] needs a path.")
            self._register(connection, name, self._read_file(name, path, fmt))

    def _read_file(self, name: str, path: object, fmt: str | None) -> pa.Table:
        try:
            return read_table(path, fmt)
        except CarolConfigError as exc:
            raise CarolConfigError(f"{self.task_id}: files[{name!r}]: {exc}") from None

    def _register(self, connection: duckdb.DuckDBPyConnection, name: str, data: Any) -> None:
        """Register Arrow under ``name`` (zero-copy); in a database file, store it as a table."""
        table = data.read_all() if hasattr(data, "read_all") else data
        self.log.info("DuckDB source %r: %d rows, %d columns", name, table.num_rows, table.num_columns)
        self._source_rows[name] = table.num_rows
        if self.database:
            connection.register("__carol_source", table)
            target = quote_identifier(name)
            connection.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM __carol_source")
            connection.unregister("__carol_source")
        else:
            connection.register(name, table)

    def _deliver(self, relation: duckdb.DuckDBPyRelation | None) -> Any:
        if relation is None:
            return None
        if self.output_path:
            self._written = write_parquet(
                relation.to_arrow_reader(_BATCH_ROWS), self.output_path, log=self.log
            )
            return self._written
        if self.staging_name:
            sent = self.hook.send_to_staging(
                self.staging_name, relation.to_arrow_table(), connector_id=self.connector_id
            )
            self._sent = sent.as_dict()
            return self._sent
        return rows_for_xcom(relation.to_arrow_reader(_BATCH_ROWS), self.max_xcom_rows, f"{self.task_id} SQL")

    def get_openlineage_facets_on_complete(self, task_instance: object) -> OperatorLineage:
        """OpenLineage: the BigQuery tables and files loaded; the Parquet file or staging table written."""
        from airflow_provider_carol import lineage

        rows: dict[str, int] = getattr(self, "_source_rows", {})
        inputs = []
        for job in getattr(self, "_jobs", {}).values():
            inputs += lineage.bigquery_job_datasets(job)[0]
        for name, spec in (self.tables or {}).items():
            table = spec if isinstance(spec, str) else spec["table"]
            inputs.append(lineage.bigquery_table_input(self.hook, table, self.dataset, rows.get(name)))
        for spec in (self.files or {}).values():
            inputs.append(lineage.file_input(spec.get("path") if isinstance(spec, Mapping) else spec))
        outputs = []
        if getattr(self, "_written", None):
            outputs.append(lineage.parquet_output(self.output_path, self._written))
        if getattr(self, "_sent", None):
            outputs += lineage.staging_lineage(self.hook, lineage.StagingWrite.merged([self._sent])).outputs
        return lineage.OperatorLineage(inputs=inputs, outputs=outputs)
