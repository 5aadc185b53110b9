"""Staging operators: schemas, sending records, and batches planned across (mapped) tasks."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.providers.common.compat.sdk import Asset, AssetAlias, Context, XComArg

from airflow_provider_carol.hooks.staging import schema as schemas
from airflow_provider_carol.hooks.staging import sources
from airflow_provider_carol.hooks.staging.codec import DEFAULT_CHUNK_SIZE, DEFAULT_MAX_CHUNK_BYTES
from airflow_provider_carol.hooks.staging.drift import DriftPolicy, check_policy
from airflow_provider_carol.hooks.staging.send_value import OPTIONS, StagingSend
from airflow_provider_carol.hooks.staging.sender import DEFAULT_MAX_IN_FLIGHT
from airflow_provider_carol.operators.base import CarolBaseOperator

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

STAGING_ASSET_ALIAS = "carol-staging"
PLAN_XCOM_KEY = "plan"


def staging_asset_uri(tenant: str, connector_id: str, staging_name: str) -> str:
    """``carol://<tenant>/<connector id>/<staging>``, each part percent-encoded."""
    return "carol://" + "/".join(quote(str(part), safe="") for part in (tenant, connector_id, staging_name))


class _CarolStagingBase(CarolBaseOperator):
    """Shared plumbing: source arguments (``data`` may be an XComArg), asset events and lineage."""

    #: Send summaries (XCom dicts) of what this task put into staging tables, for OpenLineage.
    _sent_to_staging: Sequence[dict[str, Any]] = ()

    def _set_data(self, data: Any) -> None:
        # ``data`` is not a template field: Jinja would compile every string of a large list. An
        # XComArg is resolved in execute() instead, and still sets the upstream dependency here.
        self.data = data
        if isinstance(data, XComArg):
            XComArg.apply_upstream_relationship(self, data)

    def _data(self, context: Context) -> Any:
        return self.data.resolve(context) if isinstance(self.data, XComArg) else self.data

    def _emit(self, context: Context, pairs: Iterable[tuple[str, str]], extra: dict[str, Any]) -> None:
        """Record an asset event for each (connector id, staging) that received records."""
        tenant = self.hook.config.tenant or self.hook.current.tenant_name or "tenant"
        for connector_id, staging_name in sorted(set(pairs)):
            asset = Asset(staging_asset_uri(tenant, connector_id, staging_name))
            context["outlet_events"][AssetAlias(STAGING_ASSET_ALIAS)].add(asset, extra=extra)

    def get_openlineage_facets_on_complete(self, task_instance: object) -> OperatorLineage:
        """OpenLineage: each staging table this task sent to, its schema and the records/bytes sent."""
        from airflow_provider_carol import lineage

        return lineage.staging_lineage(self.hook, lineage.StagingWrite.merged(self._sent_to_staging))


class CarolStagingSchemaOperator(_CarolStagingBase):
    """Create or update a staging schema, given explicitly or inferred from a sample of the data.

    :param staging_name: the staging table (templated).
    :param crosswalk: the field names that identify a record (required; templated).
    :param fields: explicit ``{field: type}`` (types: string, integer, long, double, boolean, date,
        object, ...) instead of inferring from a sample (templated).
    :param data: a sample: list of dicts, JSON string, DataFrame, pyarrow Table or an XComArg of those.
    :param path: or sample the first ``sample_size`` rows of Parquet/CSV/NDJSON files (templated).
    :param sql: or of a query's rows, on ``sql_conn_id`` (templated).
    :param sample_size: rows read from ``path``/``sql`` to infer types (every row counts, not the first).
    :param flexible: ``mdmFlexible``; :param export_data: ``mdmExportData``.
    :param connector_id: or ``connector_name``; default the connection's ``connector_id`` (templated).
    """

    template_fields: Sequence[str] = (
        "staging_name",
        "crosswalk",
        "fields",
        "path",
        "sql",
        "connector_id",
        "connector_name",
    )
    template_ext: Sequence[str] = (".sql",)

    def __init__(
        self,
        *,
        staging_name: str,
        crosswalk: Sequence[str],
        fields: dict[str, Any] | None = None,
        data: Any = None,
        path: Any = None,
        sql: str | None = None,
        sql_conn_id: str | None = None,
        file_format: str | None = None,
        sample_size: int = 10_000,
        flexible: bool = False,
        export_data: bool = False,
        connector_id: str | None = None,
        connector_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.staging_name, self.crosswalk, self.fields = staging_name, crosswalk, fields
        self._set_data(data)
        self.path, self.sql, self.sql_conn_id, self.file_format = path, sql, sql_conn_id, file_format
        self.sample_size, self.flexible, self.export_data = sample_size, flexible, export_data
        self.connector_id, self.connector_name = connector_id, connector_name

    def execute(self, context: Context) -> dict[str, Any]:
        """Build the schema (checking the crosswalk against the data), then create or update it."""
        sample: list[Any] = []
        if self.fields is not None:
            properties = schemas.properties_from_fields(self.fields)
        else:
            spec = sources.SourceSpec(
                self._data(context), self.path, self.sql, self.sql_conn_id, file_format=self.file_format
            )
            sample = sources.first_records(spec, self.sample_size)
            properties = schemas.infer_properties(sample)
        crosswalk = schemas.check_crosswalk(self.crosswalk, properties, sample)
        payload = schemas.schema_payload(
            self.staging_name, properties, crosswalk, flexible=self.flexible, export_data=self.export_data
        )
        connector_id = self.hook.resolve_connector_id(self.connector_id, self.connector_name)
        self.hook.put_staging_schema(self.staging_name, payload, connector_id)
        return payload


class CarolStagingSendOperator(_CarolStagingBase):
    """Send records to a Carol staging table: exactly once, chunked, compressed, several in flight.

    Give one source: ``data`` (list of dicts, JSON string, DataFrame, pyarrow Table or an XComArg of
    those), ``path`` (files, globs or ObjectStoragePaths: Parquet, CSV or NDJSON, streamed) or ``sql``
    with ``sql_conn_id`` (any common-sql connection, fetched in chunks). Alone, the task is its own
    batch with a summary; with ``batch`` (a slice from :class:`CarolStartBatchOperator`, usually via
    ``expand_kwargs``) it sends its planned range and the end operator sends the summary. On success
    it records an asset event ``carol://<tenant>/<connector id>/<staging>`` (alias ``carol-staging``).

    :param staging_name: the staging table (templated).
    :param connector_id: or ``connector_name``; default the connection's ``connector_id`` (templated).
    :param chunk_size: records per request; :param max_chunk_bytes: JSON bytes per request (< 10 MiB).
    :param max_in_flight: concurrent requests.
    :param batch: this task's slice of a planned batch (templated).
    :param emit_asset: add the ``carol-staging`` AssetAlias outlet and its event.
    :param dry_run: read, check and encode everything but send nothing; the return value then reports
        records, chunks, bytes and the inferred schema (no asset event).
    :param on_schema_drift: what to do when the records' schema differs from the staging's in Carol:
        None (default) fails on a type change and warns on new or missing fields; ``"fail"`` fails on
        any difference, ``"warn"`` only warns, ``"evolve"`` updates Carol's schema, then sends.
    """

    template_fields: Sequence[str] = (
        "staging_name",
        "connector_id",
        "connector_name",
        "path",
        "sql",
        "sql_parameters",
        "batch",
    )
    template_ext: Sequence[str] = (".sql",)

    def __init__(
        self,
        *,
        staging_name: str,
        data: Any = None,
        path: Any = None,
        sql: str | None = None,
        sql_conn_id: str | None = None,
        sql_parameters: Any = None,
        file_format: str | None = None,
        connector_id: str | None = None,
        connector_name: str | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        max_chunk_bytes: int = DEFAULT_MAX_CHUNK_BYTES,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        batch: dict[str, Any] | None = None,
        emit_asset: bool = True,
        dry_run: bool = False,
        on_schema_drift: DriftPolicy | None = None,
        **kwargs: Any,
    ) -> None:
        if emit_asset:
            kwargs["outlets"] = [*(kwargs.get("outlets") or []), AssetAlias(STAGING_ASSET_ALIAS)]
        super().__init__(**kwargs)
        self.staging_name = staging_name
        self._set_data(data)
        self.path, self.sql, self.sql_conn_id, self.sql_parameters = path, sql, sql_conn_id, sql_parameters
        self.file_format, self.connector_id, self.connector_name = file_format, connector_id, connector_name
        self.chunk_size, self.max_chunk_bytes, self.max_in_flight = chunk_size, max_chunk_bytes, max_in_flight
        self.batch, self.emit_asset = batch, emit_asset
        # ``dry_run`` is a BaseOperator method (the template rendering check): keep the flag apart.
        self.send_dry_run, self.on_schema_drift = dry_run, check_policy(on_schema_drift)

    def execute(self, context: Context) -> dict[str, Any]:
        """Send (or dry-run), then return a small summary (batch id, records, requests, bytes, schema)."""
        options = {name: getattr(self, name) for name in _OWN_SEND_OPTIONS}
        send = StagingSend.of(
            self.staging_name, self._data(context), {**options, "dry_run": self.send_dry_run}
        )
        summary = self.hook.send_staging(send)
        if not self.send_dry_run:  # a dry run wrote nothing: no output dataset for lineage
            self._sent_to_staging = [summary.as_dict()]
        if self.emit_asset and summary.summary_sent:
            self._emit(
                context,
                [(summary.connector_id, summary.staging_name)],
                {"batch_id": summary.batch_id, "records": summary.records},
            )
        return summary.as_dict()


class CarolStartBatchOperator(_CarolStagingBase):
    """Plan one Carol batch for many send tasks: count each partition, give each a sequence range.

    Returns one kwargs dict per partition, for
    ``CarolStagingSendOperator.partial(...).expand_kwargs(start.output)``, and pushes the whole plan
    under the XCom key ``plan`` for :class:`CarolEndBatchOperator` (``plan=start.output["plan"]``).

    :param partitions: paths (strings) or dicts of source kwargs (``path``, ``sql`` + ``sql_conn_id``,
        ``sql_parameters``, ``data``, ``file_format``) (templated).
    :param connector_id: or ``connector_name``; default the connection's ``connector_id`` (templated).
    :param chunk_size: records per request, lowered when a sample says chunks could near ``max_chunk_bytes``.
    """

    template_fields: Sequence[str] = ("partitions", "connector_id", "connector_name")

    def __init__(
        self,
        *,
        partitions: Any,
        connector_id: str | None = None,
        connector_name: str | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        max_chunk_bytes: int = DEFAULT_MAX_CHUNK_BYTES,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.partitions, self.connector_id, self.connector_name = partitions, connector_id, connector_name
        self.chunk_size, self.max_chunk_bytes = chunk_size, max_chunk_bytes

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """Plan the batch; nothing is sent to Carol's intake yet."""
        plan = self.hook.plan_batch(
            list(self.partitions),
            connector_id=self.connector_id,
            connector_name=self.connector_name,
            chunk_size=self.chunk_size,
            max_chunk_bytes=self.max_chunk_bytes,
        )
        context["ti"].xcom_push(key=PLAN_XCOM_KEY, value=plan.as_dict())
        return plan.partitions


class CarolEndBatchOperator(_CarolStagingBase):
    """Send the summary of a planned batch once every slice reports it was sent in full.

    Missing, partial or unplanned results fail the task and no summary is sent. Records an asset
    event for each staging the batch filled.

    :param plan: the plan ``CarolStartBatchOperator`` pushed (``start.output["plan"]``).
    :param results: the send tasks' return values (``send.output`` of the mapped task).
    """

    template_fields: Sequence[str] = ("plan", "results")

    def __init__(self, *, plan: Any, results: Any, emit_asset: bool = True, **kwargs: Any) -> None:
        if emit_asset:
            kwargs["outlets"] = [*(kwargs.get("outlets") or []), AssetAlias(STAGING_ASSET_ALIAS)]
        super().__init__(**kwargs)
        self.plan, self.results, self.emit_asset = plan, results, emit_asset

    def execute(self, context: Context) -> dict[str, Any]:
        """Check the results against the plan, then send the summary."""
        results = [dict(result) for result in (self.results or [])]
        done = self.hook.finish_batch(self.plan, results)
        self._sent_to_staging = results
        if self.emit_asset and done["records"]:
            pairs = [
                (result["connector_id"], result["staging_name"]) for result in results if result["records"]
            ]
            self._emit(context, pairs, {"batch_id": done["batch_id"], "records": done["records"]})
        return done


#: The send options that are also this operator's arguments, read from its signature (never listed
#: twice); ``dry_run`` is kept as ``send_dry_run`` (``BaseOperator.dry_run`` is a method).
_OWN_SEND_OPTIONS = tuple(
    name
    for name in OPTIONS
    if name in inspect.signature(CarolStagingSendOperator.__init__).parameters and name != "dry_run"
)
