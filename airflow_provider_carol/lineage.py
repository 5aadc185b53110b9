"""OpenLineage datasets and facets of the Carol operators (naming and facets: docs/lineage.md).

Only the operators' ``get_openlineage_facets_on_complete`` methods import this module, and only the
OpenLineage provider calls them: without ``apache-airflow-providers-openlineage`` it is never imported.

Names follow the OpenLineage naming spec: a Carol staging table is namespace
``carol://{organization}.{environment}`` (the organization's API host, e.g. ``carol://acme.carol.ai``),
name ``{tenant}.{connector id}.{staging}``; a BigQuery table is ``bigquery`` / ``project.dataset.table``;
a local file is ``file`` / its absolute path, an object-store file ``{scheme}://{bucket}`` / its key.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow.providers.openlineage.extractors import OperatorLineage
from openlineage.client.event_v2 import InputDataset, OutputDataset
from openlineage.client.facet_v2 import (
    DatasetFacet,
    input_statistics_input_dataset,
    output_statistics_output_dataset,
    schema_dataset,
)

from airflow_provider_carol.exceptions import CarolError

if TYPE_CHECKING:
    from google.cloud import bigquery

    from airflow_provider_carol.hooks.carol import CarolHook

BIGQUERY_NAMESPACE = "bigquery"
FILE_NAMESPACE = "file"
_DML = ("INSERT", "UPDATE", "DELETE", "MERGE")


# ----------------------------------------------------------------------------- names
def carol_namespace(organization: str, environment: str) -> str:
    """``carol://{organization}.{environment}``: the organization's API host, whatever host the
    connection dials (a proxy, a tenant subdomain or the sandbox all name the same tables)."""
    return f"carol://{organization}.{environment}"


def staging_dataset_name(tenant: str, connector_id: str, staging_name: str) -> str:
    """``{tenant}.{connector id}.{staging}``: a staging table is unique per tenant and connector."""
    return f"{tenant}.{connector_id}.{staging_name}"


@dataclass(frozen=True)
class CarolLocation:
    """Where a connection's staging tables live, as OpenLineage names them."""

    namespace: str
    tenant: str

    @classmethod
    def of(cls, hook: CarolHook) -> CarolLocation:
        """From the connection, asking Carol (once per hook) for what the connection leaves out."""
        config = hook.config
        organization = config.organization or hook.current.org_name
        tenant = config.tenant or hook.current.tenant_name
        if not organization or not tenant:
            raise CarolError(
                f"OpenLineage: connection {config.conn_id!r} resolves to no organization/tenant name."
            )
        return cls(carol_namespace(organization, config.environment), tenant)


def bigquery_table_name(table: str | bigquery.TableReference) -> str:
    """``project.dataset.table`` of a BigQuery table reference or of a Storage API table path."""
    if isinstance(table, str):
        parts = table.split("/")  # projects/P/datasets/D/tables/T
        return ".".join(parts[1::2]) if len(parts) == 6 else table
    return f"{table.project}.{table.dataset_id}.{table.table_id}"


def file_location(path: object) -> tuple[str, str]:
    """(namespace, name) of a local path, a URL or an ``ObjectStoragePath`` (credentials dropped)."""
    protocol = getattr(path, "protocol", None)
    if isinstance(protocol, str):  # ObjectStoragePath
        if protocol in ("", "file", "local"):
            return FILE_NAMESPACE, str(getattr(path, "path", ""))
        bucket = str(getattr(path, "bucket", "")).rsplit("@", 1)[-1]  # Airflow 3.1 keeps "conn_id@"
        return f"{protocol}://{bucket}", str(getattr(path, "key", ""))
    text = os.fspath(path) if isinstance(path, os.PathLike) else str(path)
    parts = urlsplit(text)
    if parts.scheme in ("", "file") or len(parts.scheme) == 1:  # a plain path (or a drive letter)
        local = parts.path if parts.scheme == "file" else text
        return FILE_NAMESPACE, os.path.abspath(local)
    host = parts.netloc.rsplit("@", 1)[-1]  # s3://conn_id@bucket/key: the connection id is not a name
    return f"{parts.scheme}://{host}", parts.path.lstrip("/")


# ----------------------------------------------------------------------------- facets
def _fields(properties: Mapping[str, Any]) -> list[schema_dataset.SchemaDatasetFacetFields]:
    fields = []
    for name, spec in properties.items():
        spec = spec if isinstance(spec, Mapping) else {"type": spec}
        nested = spec.get("properties")
        fields.append(
            schema_dataset.SchemaDatasetFacetFields(
                name=str(name),
                type=str(spec["type"]) if spec.get("type") else None,
                fields=_fields(nested) if isinstance(nested, Mapping) else [],
            )
        )
    return fields


def staging_schema_facet(schema: Mapping[str, Any] | None) -> schema_dataset.SchemaDatasetFacet | None:
    """The staging's fields and Carol types (nested objects as nested fields); None without a schema."""
    properties = ((schema or {}).get("mdmStagingMapping") or {}).get("properties")
    if not isinstance(properties, Mapping) or not properties:
        return None
    return schema_dataset.SchemaDatasetFacet(fields=_fields(properties))


def columns_schema_facet(columns: Iterable[str]) -> schema_dataset.SchemaDatasetFacet:
    """Column names only (what a Parquet summary records; types are not known there)."""
    return schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name=str(name)) for name in columns]
    )


def bigquery_schema_facet(schema: Sequence[bigquery.SchemaField]) -> schema_dataset.SchemaDatasetFacet:
    """A BigQuery schema (RECORD columns as nested fields)."""

    def convert(field: bigquery.SchemaField) -> schema_dataset.SchemaDatasetFacetFields:
        return schema_dataset.SchemaDatasetFacetFields(
            name=field.name,
            type=field.field_type,
            description=field.description,
            fields=[convert(child) for child in field.fields or ()],
        )

    return schema_dataset.SchemaDatasetFacet(fields=[convert(field) for field in schema])


def output_statistics(
    rows: int | None, size: int | None = None
) -> dict[str, output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet]:
    """``outputStatistics``: rows written and bytes (None: not known)."""
    facet = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(rowCount=rows, size=size)
    return {"outputStatistics": facet}


def input_statistics(
    rows: int | None,
) -> dict[str, input_statistics_input_dataset.InputStatisticsInputDatasetFacet]:
    """``inputStatistics``: rows read (only where this task counted them)."""
    if rows is None:
        return {}
    return {"inputStatistics": input_statistics_input_dataset.InputStatisticsInputDatasetFacet(rowCount=rows)}


# ----------------------------------------------------------------------------- Carol staging
@dataclass(frozen=True)
class StagingWrite:
    """What one task put into one staging table: records and the JSON bytes sent (before gzip)."""

    connector_id: str
    staging_name: str
    records: int
    size: int

    @classmethod
    def merged(cls, writes: Iterable[Mapping[str, Any]]) -> list[StagingWrite]:
        """Send summaries (XCom dicts) summed per (connector, staging), e.g. the slices of one batch."""
        totals: dict[tuple[str, str], list[int]] = {}
        for write in writes:
            key = (str(write["connector_id"]), str(write["staging_name"]))
            counts = totals.setdefault(key, [0, 0])
            counts[0] += int(write.get("records") or 0)
            counts[1] += int(write.get("bytes") or 0)
        return [cls(c, s, records, size) for (c, s), (records, size) in sorted(totals.items())]


def staging_output(hook: CarolHook, location: CarolLocation, write: StagingWrite) -> OutputDataset:
    """The staging table as an output: ``schema`` from Carol's staging schema, ``outputStatistics``."""
    facets: dict[str, DatasetFacet] = {}
    try:
        schema = hook.get_staging_schema(write.staging_name, write.connector_id)
    except CarolError as exc:  # lineage without the schema beats no lineage
        hook.log.warning("OpenLineage: no schema facet for staging %r: %s", write.staging_name, exc)
        schema = None
    facet = staging_schema_facet(schema)
    if facet is not None:
        facets["schema"] = facet
    return OutputDataset(
        namespace=location.namespace,
        name=staging_dataset_name(location.tenant, write.connector_id, write.staging_name),
        facets=facets,
        outputFacets=output_statistics(write.records, write.size),  # type: ignore[arg-type]
    )


def staging_lineage(hook: CarolHook, writes: Sequence[StagingWrite]) -> OperatorLineage:
    """Lineage of a task that sent records to staging tables (a send, or the end of a batch)."""
    if not writes:
        return OperatorLineage()
    location = CarolLocation.of(hook)
    return OperatorLineage(outputs=[staging_output(hook, location, write) for write in writes])


# ----------------------------------------------------------------------------- BigQuery
def _dml_targets(job: bigquery.QueryJob) -> list[str]:
    """The tables a DML statement writes, from OpenLineage's SQL parser (BigQuery does not say which of
    the referenced tables is the target), qualified with the job's default dataset."""
    from openlineage.common.sql import parse

    parsed = parse([job.query], dialect="bigquery")
    default = job.default_dataset
    names = []
    for table in parsed.out_tables if parsed else []:
        parts = [part for part in (table.database, table.schema, table.name) if part]
        if len(parts) == 1 and default is not None:
            parts = [default.project, default.dataset_id, *parts]
        elif len(parts) == 2 and default is not None:
            parts = [default.project, *parts]
        names.append(".".join(parts))
    return names


def bigquery_job_datasets(job: bigquery.QueryJob) -> tuple[list[InputDataset], list[OutputDataset]]:
    """Tables a finished query job read (BigQuery's ``referencedTables``) and wrote: the DDL target,
    a named destination table, or a DML target (SQL parser); anonymous result tables are left out."""
    outputs: list[OutputDataset] = []
    read = [bigquery_table_name(table) for table in job.referenced_tables or ()]
    if job.ddl_target_table is not None:
        facets: dict[str, DatasetFacet] = {}
        if job.schema:
            facets["schema"] = bigquery_schema_facet(job.schema)
        outputs.append(
            OutputDataset(
                namespace=BIGQUERY_NAMESPACE, name=bigquery_table_name(job.ddl_target_table), facets=facets
            )
        )
    elif job.statement_type in _DML:
        written = _dml_targets(job)
        read = [name for name in read if name not in written]
        stats = output_statistics(job.num_dml_affected_rows)
        outputs += [
            OutputDataset(namespace=BIGQUERY_NAMESPACE, name=name, outputFacets=stats)  # type: ignore[arg-type]
            for name in written
        ]
    elif job.destination is not None and not job.destination.dataset_id.startswith("_"):
        outputs.append(OutputDataset(namespace=BIGQUERY_NAMESPACE, name=bigquery_table_name(job.destination)))
    inputs = [InputDataset(namespace=BIGQUERY_NAMESPACE, name=name) for name in dict.fromkeys(read)]
    return inputs, outputs


def bigquery_table_input(hook: CarolHook, table: str, dataset: str | None, rows: int | None) -> InputDataset:
    """A table read through the Storage Read API (``table``, ``dataset.table`` or fully qualified)."""
    return InputDataset(
        namespace=BIGQUERY_NAMESPACE,
        name=bigquery_table_name(hook.table_path(table, dataset)),
        inputFacets=input_statistics(rows),  # type: ignore[arg-type]
    )


# ----------------------------------------------------------------------------- files
def file_input(path: object) -> InputDataset:
    """A file the task read."""
    namespace, name = file_location(path)
    return InputDataset(namespace=namespace, name=name)


def parquet_output(path: object, written: Mapping[str, Any]) -> OutputDataset:
    """A Parquet file the task wrote, from its summary ``{"path", "rows", "columns"}``."""
    namespace, name = file_location(path)
    facets: dict[str, DatasetFacet] = {}
    if written.get("columns"):
        facets["schema"] = columns_schema_facet(written["columns"])
    return OutputDataset(
        namespace=namespace,
        name=name,
        facets=facets,
        outputFacets=output_statistics(written.get("rows")),  # type: ignore[arg-type]
    )
