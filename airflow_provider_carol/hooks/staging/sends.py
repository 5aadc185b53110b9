"""Staging sends and batches: the send path and the batch methods of ``CarolHook``.

Records from a source are checked, chunked and sent exactly once per (batchId, sequence), several in
flight; a batch summary is sent only after every chunk was acknowledged, never on failure. Batches may
span several sends in one task (``staging_batch``) or many tasks (``plan_batch``/``finish_batch``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from airflow_provider_carol.exceptions import CarolConfigError, CarolError
from airflow_provider_carol.hooks.core import endpoints
from airflow_provider_carol.hooks.core.task_state import state_store
from airflow_provider_carol.hooks.core.transport import Call, Flow
from airflow_provider_carol.hooks.core.types import Json
from airflow_provider_carol.hooks.staging import schema_check, sources
from airflow_provider_carol.hooks.staging.ack_ledger import AckLedger
from airflow_provider_carol.hooks.staging.batches import (
    BatchPlan,
    BatchSlice,
    SendSummary,
    StagingBatch,
    airflow_task_key,
    check_results,
    derive_batch_id,
    slice_partitions,
    utc_now_iso,
)
from airflow_provider_carol.hooks.staging.codec import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_MAX_CHUNK_BYTES,
    Chunk,
    Chunker,
    RecordEncoder,
    validate_chunking,
)
from airflow_provider_carol.hooks.staging.connectors import ConnectorMethods
from airflow_provider_carol.hooks.staging.send_value import SOURCE_KEYS, StagingSend
from airflow_provider_carol.hooks.staging.sender import IntakeSender, IntakeStats

PLAN_SAMPLE_ROWS = 1000


def batch_summary(batch_id: str, records: int, requests: int, started_at: str, ended_at: str) -> Flow[Json]:
    """``POST v3/staging/batch/{id}/summary`` (idempotent: the same body for the same batch)."""
    body = {
        "totalRecords": records,
        "totalRequests": requests,
        "timestampStart": started_at,
        "timestampEnd": ended_at,
    }
    answer = yield Call.to(
        endpoints.BATCH_SUMMARY, path_params={"batch_id": batch_id}, json=body, idempotent=True
    )
    return answer


class SendMethods(ConnectorMethods):
    """Staging methods of ``CarolHook``: sends and batches (and, inherited, connectors and schemas)."""

    def send_to_staging(self, staging_name: str, data: Any = None, **options: object) -> SendSummary:
        """Send records from ``data``, or the ``path`` or ``sql`` option, to a staging table, exactly once
        per chunk. ``options`` are the fields of :class:`~.send_value.StagingSend` (an unknown one is an
        error naming it).

        Without ``batch``/``batch_id`` the send is its own batch (id derived from the Airflow task, so a
        retry re-sends the same (batchId, sequence) pairs) and the summary follows the last acknowledged
        chunk. ``batch`` is one task's slice of a :meth:`plan_batch` plan: fixed chunks, no summary.
        In-memory ``data`` is fully encoded before the first request, so bad values send nothing.
        Before the first chunk the records' schema is compared with the staging's in Carol
        (``on_schema_drift``: None fails on type changes and warns on new or missing fields; ``fail``,
        ``warn`` or ``evolve``, which updates the schema first). ``dry_run`` reads, checks and encodes
        everything the same way but posts nothing (no intake, no summary, no schema change).
        """
        return self.send_staging(StagingSend.of(staging_name, data, options))

    def send_staging(self, send: StagingSend) -> SendSummary:
        """Run one :class:`~.send_value.StagingSend`: plan (connector, batch), check the schema, send the
        chunks, summarise (see :meth:`send_to_staging`)."""
        spec = sources.SourceSpec(  # checked before any request
            send.data, send.path, send.sql, send.sql_conn_id, send.sql_parameters, send.file_format
        )
        options = self._resolved(send)
        staging_name = options.staging_name
        sample, blocks = schema_check.peek_sample(spec, sources.iter_blocks(spec, options.chunk_size))
        check = schema_check.check_drift(
            self,
            staging_name,
            sample,
            connector_id=str(options.connector_id),
            policy=options.on_schema_drift,
            dry_run=options.dry_run,
        )
        self.log.info(
            "%s %s to staging %r (connector %s, batch %s).",
            "Dry run: encoding" if options.dry_run else "Sending",
            spec.describe(),
            staging_name,
            options.connector_id,
            options.batch_id,
        )
        started_at = utc_now_iso()
        ledger = None
        if not options.dry_run:  # chunks an earlier try of this Airflow task had acknowledged: not resent
            store = state_store(purpose="the staging chunks Carol acknowledged")
            ledger = AckLedger(store, str(options.batch_id), self.log)
        stats = self._send_chunks(staging_name, spec, blocks, options, ledger)
        summary = SendSummary(
            str(options.batch_id),
            staging_name,
            str(options.connector_id),
            *(stats.records, stats.requests, stats.bytes, stats.compressed_bytes, stats.seconds),
            options.first_sequence,
            schema=check.properties,
            schema_drift=check.report(),
        )
        if options.dry_run:
            return self._dry_run_summary(dataclasses.replace(summary, dry_run=True), check)
        return self._close_send(summary, options, started_at, ledger)

    def _resolved(self, options: StagingSend) -> StagingSend:
        """The send with the connector and batch settled: a planned slice's, else resolved here."""
        planned = options.planned
        if planned is not None:
            return options.but(
                connector_id=planned.connector_id,
                batch_id=planned.batch_id,
                first_sequence=planned.first_sequence,
                chunk_size=planned.chunk_size,
                send_summary=False,
            )
        connector_id = self.resolve_connector_id(options.connector_id, options.connector_name)
        batch_id = options.batch_id or self.new_batch_id(connector_id, options.staging_name)
        return options.but(connector_id=connector_id, connector_name=None, batch_id=batch_id)

    def _send_chunks(
        self,
        staging_name: str,
        spec: sources.SourceSpec,
        blocks: Iterator[list[Any]],
        options: StagingSend,
        ledger: AckLedger | None,
    ) -> IntakeStats:
        """Chunk the records and send them (or encode only, for a dry run); a planned slice must match."""
        planned = options.planned
        chunks = _chunk_stream(
            spec, blocks, planned, options.chunk_size, options.max_chunk_bytes, options.first_sequence
        )
        sender = IntakeSender(
            self,
            staging_name=staging_name,
            connector_id=str(options.connector_id),
            batch_id=str(options.batch_id),
            max_in_flight=options.max_in_flight,
            total_records=planned.records if planned else sources.cheap_count(spec),
            progress_interval=options.progress_interval,
            dry_run=options.dry_run,
        )
        # In-memory data is encoded whole before the first request: a bad value sends nothing.
        stats = sender.send(
            chunks,
            validate_first=spec.in_memory,
            expected_chunks=planned.chunks if planned else None,
            ledger=ledger,
        )
        if planned is not None and (stats.requests, stats.records) != (planned.chunks, planned.records):
            raise CarolError(
                f"Staging {staging_name!r}: the source held {stats.records} records "
                f"({stats.requests} chunks) but the batch plan expected {planned.records} "
                f"({planned.chunks} chunks); the batch gets no summary."
            )
        return stats

    def _close_send(
        self, summary: SendSummary, options: StagingSend, started_at: str, ledger: AckLedger | None
    ) -> SendSummary:
        """The batch summary after the last acknowledged chunk (when this send owns the batch)."""
        summary_sent = bool(options.send_summary and summary.requests)
        if summary_sent:
            self.send_batch_summary(
                summary.batch_id, summary.records, summary.requests, started_at=started_at
            )
        if ledger is not None and ledger.skipped:
            self.log.info(
                "Staging %r: %d chunk(s) acknowledged by an earlier try were not sent again.",
                summary.staging_name,
                ledger.skipped,
            )
        if ledger is not None and (summary_sent or not options.send_summary):
            ledger.forget()  # this task's part of the batch is complete
        return dataclasses.replace(summary, summary_sent=summary_sent)

    def _dry_run_summary(self, summary: SendSummary, check: schema_check.SchemaCheck) -> SendSummary:
        """Log the dry run's one line (records, chunks, bytes, schema, drift) and return its summary."""
        self.log.info(
            "Dry run of staging %r: %d records in %d chunks, %d bytes of JSON (%d gzipped); schema %s; "
            "drift %s; nothing was sent.",
            summary.staging_name,
            summary.records,
            summary.requests,
            summary.bytes,
            summary.compressed_bytes,
            sorted(check.properties or {}),
            "not compared (no schema in Carol)" if check.drift is None else (check.drift.lines() or "none"),
        )
        return summary

    def send_batch_summary(
        self, batch_id: str, records: int, requests: int, *, started_at: str, ended_at: str | None = None
    ) -> Json:
        """Tell Carol the batch is complete (idempotent: the same body for the same batch)."""
        answer = self.run(batch_summary(batch_id, records, requests, started_at, ended_at or utc_now_iso()))
        self.log.info(
            "Batch %s complete: %s records in %s requests; summary sent.", batch_id, records, requests
        )
        return answer

    def new_batch_id(self, *key: object) -> str:
        """A batch id: derived from the running Airflow task (stable on retry) plus ``key``, else random."""
        task = airflow_task_key()
        ordinal = getattr(self, "_batch_ordinal", 0) + 1
        self._batch_ordinal = ordinal
        return (
            derive_batch_id(self.current.tenant_id, *task, *key, ordinal)
            if task
            else derive_batch_id(self.current.tenant_id)
        )

    @contextmanager
    def staging_batch(
        self,
        connector_id: str | None = None,
        *,
        connector_name: str | None = None,
        batch_id: str | None = None,
    ) -> Iterator[StagingBatch]:
        """One batch for several sends; the summary is sent only if the block exits without an exception."""
        resolved = self.resolve_connector_id(connector_id, connector_name)
        batch = StagingBatch(self, resolved, batch_id or self.new_batch_id(resolved, "batch"))
        yield batch  # an exception in the block propagates from here: no summary
        batch.close()

    # ----------------------------------------------------------------- batches planned across tasks
    def plan_batch(
        self,
        partitions: Sequence[Any],
        *,
        connector_id: str | None = None,
        connector_name: str | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        max_chunk_bytes: int = DEFAULT_MAX_CHUNK_BYTES,
        batch_id: str | None = None,
    ) -> BatchPlan:
        """Count each partition's rows and give it a contiguous range of sequence numbers.

        ``chunk_size`` is lowered when a sample says chunks could come near ``max_chunk_bytes`` (a 2x
        margin); a chunk that still exceeds it fails before it is sent, as sequences are fixed up front.
        """
        validate_chunking(chunk_size, max_chunk_bytes)
        kwargs_list = [_partition_kwargs(part, index) for index, part in enumerate(partitions or [])]
        if not kwargs_list:
            raise CarolConfigError("partitions is empty: a batch needs at least one partition.")
        specs = [sources.SourceSpec(**kwargs) for kwargs in kwargs_list]
        counts = [sources.count_rows(spec) for spec in specs]
        chunk_size = self._fitted_chunk_size(specs, counts, chunk_size, max_chunk_bytes)
        connector_id = self.resolve_connector_id(connector_id, connector_name)
        batch_id = batch_id or self.new_batch_id(connector_id, "plan")
        slices = slice_partitions(counts, chunk_size, batch_id=batch_id, connector_id=connector_id)
        parts = [
            {**kwargs, "batch": piece.as_dict()} for kwargs, piece in zip(kwargs_list, slices, strict=True)
        ]
        plan = BatchPlan(batch_id, connector_id, chunk_size, parts, utc_now_iso())
        self.log.info(
            "Planned batch %s: %d partitions, %d records, %d chunks of up to %d records.",
            batch_id,
            len(parts),
            plan.total_records,
            plan.total_chunks,
            chunk_size,
        )
        return plan

    def finish_batch(
        self, plan: BatchPlan | dict[str, Any], results: Sequence[dict[str, Any]]
    ) -> dict[str, Any]:
        """Check every planned slice was sent in full, then send the summary (else raise: no summary)."""
        plan = BatchPlan.from_dict(plan)
        records, requests = check_results(plan, [dict(result) for result in results])
        self.send_batch_summary(plan.batch_id, records, requests, started_at=plan.started_at or utc_now_iso())
        return {"batch_id": plan.batch_id, "records": records, "requests": requests, "summary_sent": True}

    def _fitted_chunk_size(self, specs: list[Any], counts: list[int], chunk_size: int, max_bytes: int) -> int:
        first = next((spec for spec, count in zip(specs, counts, strict=True) if count), None)
        if first is None:
            return chunk_size
        sample = sources.first_records(first, PLAN_SAMPLE_ROWS)
        average = len(RecordEncoder().encode(sample)) / max(len(sample), 1)
        fitted = max(1, min(chunk_size, int(max_bytes / 2 / max(average, 1.0))))
        if fitted < chunk_size:
            self.log.info(
                "Records average %.0f bytes: chunks of %d records, not %d.", average, fitted, chunk_size
            )
        return fitted


def _partition_kwargs(part: Any, index: int) -> dict[str, Any]:
    """A partition as send-operator source kwargs: a path string, or a dict of source keys."""
    if isinstance(part, dict):
        unknown = set(part) - set(SOURCE_KEYS)
        if unknown:
            raise CarolConfigError(
                f"Partition {index} has unknown keys {sorted(unknown)}; use {SOURCE_KEYS}."
            )
        return {key: value for key, value in part.items() if value is not None}
    return {"path": part if isinstance(part, str) else str(part)}


def _chunk_stream(
    spec: sources.SourceSpec,
    blocks: Iterator[list[Any]],
    planned: BatchSlice | None,
    chunk_size: int,
    max_chunk_bytes: int,
    first_sequence: int,
) -> Iterator[Chunk]:
    """The source's records as numbered, byte-bounded chunks (fixed size and range for a planned slice)."""
    fixed = planned is not None
    chunker = Chunker(
        chunk_size,
        max_chunk_bytes,
        first_sequence=first_sequence,
        fixed=fixed,
        utc=not spec.normalised,
        defer_utc=spec.in_memory,  # validated whole first: the sender's pool runs the UTC pass
    )
    chunks = chunker.chunks(blocks)
    return _within_plan(chunks, planned) if planned is not None else chunks


def _within_plan(chunks: Any, planned: BatchSlice) -> Iterator[Chunk]:
    """Refuse (before sending it) any chunk beyond the slice's planned range."""
    for chunk in chunks:
        if chunk.sequence >= planned.first_sequence + planned.chunks:
            raise CarolError(
                f"The source holds more records than the batch plan counted ({planned.records}); chunk "
                f"{chunk.sequence} is outside the planned range, so it was not sent and the batch gets no "
                "summary."
            )
        yield chunk
