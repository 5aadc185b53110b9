"""The checks a send makes before its first chunk: the records' schema against the staging's in Carol.

The schema comes from the source's metadata when it has one (a pyarrow Table, Parquet/Arrow files:
every row's type is known upfront) and otherwise from the first block of records, which is then put back
in front of the stream, so files and queries are still read once.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from airflow_provider_carol.exceptions import CarolSchemaDriftError
from airflow_provider_carol.hooks.core.types import LoggerLike
from airflow_provider_carol.hooks.staging import drift, schema, sources


@dataclass
class SchemaCheck:
    """The records' inferred ``properties``, and the drift against Carol (None: Carol has no schema)."""

    properties: dict[str, Any] | None
    drift: drift.SchemaDrift | None
    evolved: bool = False

    def report(self) -> dict[str, Any] | None:
        """The drift for XCom (None when nothing was compared)."""
        if self.drift is None:
            return None
        return {**self.drift.as_dict(), "evolved": self.evolved}


@dataclass(frozen=True)
class Sample:
    """What the source says about its schema before sending: its metadata, or its first block of records.

    Nothing is typed until :meth:`properties` is called: only when there is a schema to compare with.
    """

    spec: sources.SourceSpec
    upfront: bool = False
    records: list[Any] | None = None

    @property
    def empty(self) -> bool:
        """True when there is nothing to type (a source without records)."""
        return not self.upfront and not self.records

    def properties(self) -> dict[str, Any] | None:
        """The schema properties: from the metadata (every file), else inferred from the first block."""
        if self.upfront:
            return sources.upfront_properties(self.spec)
        return schema.infer_properties(self.records, untyped=None) if self.records else None


def peek_sample(spec: sources.SourceSpec, blocks: Iterator[list[Any]]) -> tuple[Sample, Iterator[list[Any]]]:
    """The source's sample and its blocks, unchanged (a first block read is put back in front)."""
    if sources.typed_upfront(spec):
        return Sample(spec, upfront=True), blocks
    first = next(blocks, None)
    if first is None:
        return Sample(spec), iter(())
    return Sample(spec, records=first), itertools.chain([first], blocks)


class SchemaClient(Protocol):
    """What the drift check needs of the hook: read and put staging schemas, and a logger."""

    @property
    def log(self) -> LoggerLike: ...

    def get_staging_schema(
        self, staging_name: str, connector_id: str | None = None
    ) -> dict[str, Any] | None: ...

    def put_staging_schema(
        self, staging_name: str, payload: dict[str, Any], connector_id: str | None = None
    ) -> dict[str, Any]: ...


def check_drift(
    client: SchemaClient,
    staging_name: str,
    sample: Sample,
    *,
    connector_id: str,
    policy: drift.DriftPolicy | None,
    dry_run: bool,
) -> SchemaCheck:
    """Compare the sample's schema with the staging's in Carol and apply the policy (see the hook).

    A real send infers the sample's schema only when Carol has one to compare with; a dry run always
    does, to report it.
    """
    if sample.empty:
        return SchemaCheck(None, None)
    current = client.get_staging_schema(staging_name, connector_id)
    if current is None:
        client.log.info("Staging %r has no schema in Carol yet; nothing to compare.", staging_name)
        return SchemaCheck(sample.properties() if dry_run else None, None)
    properties = sample.properties() or {}
    stored = (current.get("mdmStagingMapping") or {}).get("properties") or {}
    found = drift.compare(stored, properties)
    decision = drift.decide(found, policy)
    if decision.refused:
        raise CarolSchemaDriftError(
            f"Staging {staging_name!r}: the records do not match its schema in Carol "
            f"(on_schema_drift={policy!r}): " + "; ".join(decision.refused) + ". Nothing was sent.",
            found.as_dict(),
        )
    for line in decision.warned:
        client.log.warning("Staging %r schema drift: %s.", staging_name, line)
    if not decision.evolve:
        return SchemaCheck(properties, found)
    if dry_run:
        client.log.info("Dry run: the schema of staging %r would be evolved.", staging_name)
        return SchemaCheck(properties, found)
    client.put_staging_schema(staging_name, drift.evolved_schema(current, properties), connector_id)
    return SchemaCheck(properties, found, evolved=True)
