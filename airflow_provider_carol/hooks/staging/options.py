"""What one staging send is told besides its staging table and in-memory data, declared once.

``CarolHook.send_to_staging`` and ``StagingBatch.send`` take these as keyword arguments and turn them into
one :class:`SendOptions` value before anything is read or sent; ``CarolStagingSendOperator`` passes its
own arguments of the same names. A name that is not an option, or a value of the wrong kind, is an error
that names it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_carol.exceptions import CarolConfigError
from airflow_provider_carol.hooks.staging import drift
from airflow_provider_carol.hooks.staging.batches import BatchSlice
from airflow_provider_carol.hooks.staging.codec import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_MAX_CHUNK_BYTES,
    validate_chunking,
)
from airflow_provider_carol.hooks.staging.sender import DEFAULT_MAX_IN_FLIGHT

#: Where records come from (the keys of a batch partition, too); ``data`` is the send's own argument.
SOURCE_KEYS = ("data", "path", "sql", "sql_conn_id", "sql_parameters", "file_format")


@dataclass(frozen=True)
class SendOptions:
    """One send's options (see ``CarolHook.send_to_staging``), checked when built.

    :param path: files, globs or ObjectStoragePaths (Parquet, CSV, NDJSON), instead of ``data``.
    :param sql: a query on ``sql_conn_id`` (any common-sql connection), with ``sql_parameters``.
    :param file_format: ``parquet``, ``csv`` or ``ndjson`` when the file names do not say.
    :param connector_id: or ``connector_name``; default the connection's ``connector_id``.
    :param chunk_size: records per request; ``max_chunk_bytes``: JSON bytes per request (< 10 MiB).
    :param max_in_flight: concurrent requests.
    :param batch_id: join this batch (its summary is the caller's); ``first_sequence``: its first number.
    :param batch: one task's slice of a ``plan_batch`` plan: fixed chunks, no summary.
    :param send_summary: send the batch summary after the last acknowledged chunk.
    :param progress_interval: seconds between progress lines in the log.
    :param dry_run: read, check and encode everything, send nothing.
    :param on_schema_drift: None, ``fail``, ``warn`` or ``evolve`` (see ``drift.check_policy``).
    """

    path: Any = None
    sql: str | None = None
    sql_conn_id: str | None = None
    sql_parameters: Any = None
    file_format: str | None = None
    connector_id: str | None = None
    connector_name: str | None = None
    chunk_size: int = DEFAULT_CHUNK_SIZE
    max_chunk_bytes: int = DEFAULT_MAX_CHUNK_BYTES
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    batch_id: str | None = None
    batch: BatchSlice | dict[str, Any] | None = None
    first_sequence: int = 1
    send_summary: bool = True
    progress_interval: float = 15.0
    dry_run: bool = False
    on_schema_drift: drift.DriftPolicy | None = None

    def __post_init__(self) -> None:
        validate_chunking(self.chunk_size, self.max_chunk_bytes)
        drift.check_policy(self.on_schema_drift)
        if self.batch is not None and not isinstance(self.batch, BatchSlice):
            object.__setattr__(self, "batch", BatchSlice.from_dict(self.batch))

    @classmethod
    def of(cls, options: Mapping[str, object]) -> SendOptions:
        """The options given as keyword arguments; an unknown name is an error naming it."""
        unknown = sorted(set(options) - set(NAMES))
        if unknown:
            raise CarolConfigError(f"Unknown send option(s) {unknown}; the options are {sorted(NAMES)}.")
        return cls(**options)  # type: ignore[arg-type]  # names checked above, values in __post_init__

    @property
    def planned(self) -> BatchSlice | None:
        """The batch slice this send fills, if any (parsed when the options were built)."""
        return self.batch if isinstance(self.batch, BatchSlice) else None

    def but(self, **changes: Any) -> SendOptions:
        """These options with ``changes``."""
        return dataclasses.replace(self, **changes)


#: Every option's name, in declaration order.
NAMES = tuple(f.name for f in dataclasses.fields(SendOptions))
