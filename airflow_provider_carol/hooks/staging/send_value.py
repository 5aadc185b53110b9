"""One staging send as one value: the staging table, where the records come from, and every option.

:class:`StagingSend` is built once, frozen and validated before anything is read or sent, and carried
whole: ``CarolStagingSendOperator`` builds it from its own arguments (the same names), and
``CarolHook.send_staging`` runs it; ``CarolHook.send_to_staging`` and ``StagingBatch.send`` take the
options as keyword arguments and build it. A name that is not an option, or a value of the wrong kind,
is an error that names it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_carol.exceptions import CarolConfigError
from airflow_provider_carol.hooks.core.validate import required_string
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
class StagingSend:
    """One send (see ``CarolHook.send_to_staging``), checked when built.

    :param staging_name: the staging table.
    :param data: in-memory records (list of dicts, DataFrame, Arrow table, iterable of blocks), or None.
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

    staging_name: str
    data: Any = field(default=None, repr=False)
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
        object.__setattr__(self, "staging_name", required_string("staging_name", self.staging_name))
        validate_chunking(self.chunk_size, self.max_chunk_bytes)
        drift.check_policy(self.on_schema_drift)
        if self.batch is not None and not isinstance(self.batch, BatchSlice):
            object.__setattr__(self, "batch", BatchSlice.from_dict(self.batch))

    @classmethod
    def of(cls, staging_name: str, data: Any, options: Mapping[str, object]) -> StagingSend:
        """A send of ``data`` (or a ``path``/``sql`` option) to ``staging_name``, with ``options`` given as
        keyword arguments; an unknown option is an error naming it."""
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise CarolConfigError(f"Unknown send option(s) {unknown}; the options are {sorted(OPTIONS)}.")
        return cls(staging_name, data, **options)  # type: ignore[arg-type]  # values: __post_init__

    @property
    def planned(self) -> BatchSlice | None:
        """The batch slice this send fills, if any (parsed when the options were built)."""
        return self.batch if isinstance(self.batch, BatchSlice) else None

    def but(self, **changes: Any) -> StagingSend:
        """This send with ``changes``."""
        return dataclasses.replace(self, **changes)


#: Every option's name (the fields but the staging and the in-memory data), in declaration order.
OPTIONS = tuple(f.name for f in dataclasses.fields(StagingSend) if f.name not in ("staging_name", "data"))
