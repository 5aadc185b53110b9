"""Domain values of ingestion: batch ids, the summary of a send, and cross-task batch plans.

The values are plain and JSON-friendly (``as_dict``/``from_dict``) so they travel through XCom;
:class:`StagingBatch` is the one stateful piece: a batch spanning several sends in one task.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from airflow_provider_carol.exceptions import CarolConfigError, CarolError
from airflow_provider_carol.hooks.core.types import LoggerLike


def utc_now_iso() -> str:
    """Now, as Carol's summary timestamps are written (``2024-01-02T03:04:05Z``)."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def derive_batch_id(tenant_id: str | None, *key: object) -> str:
    """A batch id unique per ``key`` and stable across retries: ``{tenantId}-airflow-{32 hex}``.

    pycarol used ``{tenantId}-pycarol-{epochSeconds}``, which collides for tasks starting in the same
    second and changes on retry (so a retry duplicated every chunk). Hashing (dag, run, task, map
    index, ...) fixes both; without a key (plain hook use) a random uuid is used.
    """
    digest = hashlib.sha256(repr(key).encode()).hexdigest()[:32] if key else uuid.uuid4().hex
    return f"{tenant_id or 'tenant'}-airflow-{digest}"


def airflow_task_key() -> tuple[Any, ...] | None:
    """``(dag_id, run_id, task_id, map_index)`` of the running Airflow task, or None outside a task."""
    try:
        from airflow.providers.common.compat.sdk import get_current_context

        ti = get_current_context()["ti"]
    except Exception:  # noqa: BLE001 - not inside a task (plain scripts, tests)
        return None
    return (ti.dag_id, ti.run_id, ti.task_id, getattr(ti, "map_index", -1))


@dataclass(frozen=True)
class SendSummary:
    """What one send put into Carol: the XCom value of ``CarolStagingSendOperator``."""

    batch_id: str
    staging_name: str
    connector_id: str
    records: int
    requests: int
    bytes: int
    compressed_bytes: int
    seconds: float
    first_sequence: int
    summary_sent: bool = False
    #: True when nothing was posted: the counts are what a real send would send.
    dry_run: bool = False
    #: The records' schema properties, as compared with the staging's (None: not inferred).
    schema: dict[str, Any] | None = None
    #: ``{added, missing, changed, evolved}`` against Carol's schema (None: Carol had none).
    schema_drift: dict[str, Any] | None = None

    @property
    def last_sequence(self) -> int:
        """The highest sequence number used (``first_sequence - 1`` when nothing was sent)."""
        return self.first_sequence + self.requests - 1

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for XCom (a dry run's also says ``chunks``: the requests it would make)."""
        extra = {"chunks": self.requests} if self.dry_run else {}
        return {**asdict(self), "seconds": round(self.seconds, 3), **extra}


@dataclass(frozen=True)
class BatchSlice:
    """One mapped task's share of a planned batch: a contiguous range of sequence numbers."""

    batch_id: str
    connector_id: str
    first_sequence: int
    chunks: int
    records: int
    chunk_size: int

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for XCom."""
        return asdict(self)

    @classmethod
    def from_dict(cls, value: dict[str, Any] | BatchSlice) -> BatchSlice:
        """Rebuild from the XCom value, naming what is missing."""
        if isinstance(value, BatchSlice):
            return value
        try:
            return cls(**{name: value[name] for name in cls.__dataclass_fields__})
        except (KeyError, TypeError) as exc:
            raise CarolConfigError(
                f"batch must be a slice of a CarolStartBatchOperator plan: missing {exc}"
            ) from None


@dataclass(frozen=True)
class BatchPlan:
    """A batch planned up front: every partition gets a contiguous, gap-free range of sequences."""

    batch_id: str
    connector_id: str
    chunk_size: int
    partitions: list[dict[str, Any]] = field(default_factory=list)  # source kwargs + "batch": slice dict
    started_at: str = ""

    @property
    def total_records(self) -> int:
        """Records over all partitions."""
        return sum(part["batch"]["records"] for part in self.partitions)

    @property
    def total_chunks(self) -> int:
        """Intake requests over all partitions."""
        return sum(part["batch"]["chunks"] for part in self.partitions)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for XCom (``partitions`` doubles as ``expand_kwargs`` input)."""
        return {
            "batch_id": self.batch_id,
            "connector_id": self.connector_id,
            "chunk_size": self.chunk_size,
            "total_records": self.total_records,
            "total_chunks": self.total_chunks,
            "partitions": self.partitions,
            "started_at": self.started_at,
        }

    @classmethod
    def from_dict(cls, value: dict[str, Any] | BatchPlan) -> BatchPlan:
        """Rebuild from the XCom value."""
        if isinstance(value, BatchPlan):
            return value
        try:
            return cls(
                value["batch_id"],
                value["connector_id"],
                value["chunk_size"],
                list(value["partitions"]),
                value.get("started_at", ""),
            )
        except (KeyError, TypeError) as exc:
            raise CarolConfigError(
                f"plan must be the value CarolStartBatchOperator returned: missing {exc}"
            ) from None


def slice_partitions(
    counts: list[int], chunk_size: int, *, batch_id: str, connector_id: str
) -> list[BatchSlice]:
    """Give each partition (by row count) a contiguous range of sequence numbers, starting at 1."""
    slices, next_sequence = [], 1
    for records in counts:
        chunks = -(-records // chunk_size)
        slices.append(BatchSlice(batch_id, connector_id, next_sequence, chunks, records, chunk_size))
        next_sequence += chunks
    return slices


def check_results(plan: BatchPlan, results: list[dict[str, Any]]) -> tuple[int, int]:
    """Compare what the send tasks report with the plan; return (records, requests) or raise.

    Each planned range must be reported exactly once with the planned chunk and record counts, so a
    summary is only ever sent for a batch Carol received completely.
    """
    remaining = []
    for result in results:
        if not isinstance(result, dict) or result.get("batch_id") != plan.batch_id:
            raise CarolError(f"A send result does not belong to batch {plan.batch_id}: {result!r:.200}")
        if result.get("dry_run"):
            raise CarolError(
                f"A send of batch {plan.batch_id} (sequences from {result.get('first_sequence')}) was a "
                "dry run and sent nothing; the batch gets no summary."
            )
        remaining.append(result)
    problems = []
    for index, part in enumerate(plan.partitions):
        planned = part["batch"]
        # Empty partitions share their first sequence with the next one, so match on the range too.
        same_start = [r for r in remaining if r["first_sequence"] == planned["first_sequence"]]
        exact = [
            r for r in same_start if (r["requests"], r["records"]) == (planned["chunks"], planned["records"])
        ]
        if exact:
            remaining.remove(exact[0])
        elif same_start:
            got = same_start[0]
            remaining.remove(got)
            problems.append(
                f"partition {index} sent {got['records']} records in {got['requests']} requests, "
                f"planned {planned['records']} in {planned['chunks']}"
            )
        else:
            problems.append(
                f"partition {index} (sequences from {planned['first_sequence']}) reported nothing"
            )
    if remaining:
        problems.append(f"unplanned results from sequences {sorted(r['first_sequence'] for r in remaining)}")
    if problems:
        raise CarolError(f"Batch {plan.batch_id} is incomplete; no summary sent: " + "; ".join(problems))
    return plan.total_records, plan.total_chunks


class StagingClient(Protocol):
    """What :class:`StagingBatch` needs of ``CarolHook``: sends and a summary (written against this so the
    batch does not import the hook that imports it)."""

    @property
    def log(self) -> LoggerLike: ...

    def send_to_staging(self, staging_name: str, data: Any = ..., **options: object) -> SendSummary: ...

    def send_batch_summary(
        self, batch_id: str, records: int, requests: int, *, started_at: str, ended_at: str | None = ...
    ) -> object: ...


class StagingBatch:
    """One Carol batch spanning several sends (stagings) in one task; see ``CarolHook.staging_batch``.

    Sequence numbers continue across sends, so they are unique and gap-free in the whole batch.
    """

    def __init__(self, hook: StagingClient, connector_id: str, batch_id: str) -> None:
        self.hook, self.connector_id, self.batch_id = hook, connector_id, batch_id
        self.next_sequence = 1
        self.records = 0
        self.requests = 0
        self.started_at = utc_now_iso()
        self.failed = False
        self.summaries: list[SendSummary] = []

    def send(self, staging_name: str, data: object = None, **options: object) -> SendSummary:
        """Send one source of records to ``staging_name`` within this batch (see ``send_to_staging``)."""
        if self.failed:
            raise CarolError(f"Batch {self.batch_id} already failed; it will get no summary.")
        if options.get("dry_run"):
            raise CarolConfigError(
                f"Batch {self.batch_id}: a dry run sends nothing, so it cannot be part of a batch; "
                "call send_to_staging(..., dry_run=True) outside the batch."
            )
        fixed = sorted(
            {"connector_id", "connector_name", "batch_id", "batch", "first_sequence", "send_summary"}
            & set(options)
        )
        if fixed:
            raise CarolConfigError(
                f"Batch {self.batch_id} sets {', '.join(fixed)} itself; do not pass them to send()."
            )
        options["connector_id"], options["batch_id"] = self.connector_id, self.batch_id
        options["first_sequence"], options["send_summary"] = self.next_sequence, False
        try:
            summary = self.hook.send_to_staging(staging_name, data, **options)
        except BaseException:
            self.failed = True
            raise
        self.next_sequence += summary.requests
        self.records += summary.records
        self.requests += summary.requests
        self.summaries.append(summary)
        return summary

    def close(self) -> object:
        """Send the summary (the caller guarantees every send succeeded); None when nothing was sent."""
        if self.failed:
            raise CarolError(f"Batch {self.batch_id} failed; no summary sent.")
        if not self.requests:
            self.hook.log.warning("Batch %s sent no records; no summary sent.", self.batch_id)
            return None
        return self.hook.send_batch_summary(
            self.batch_id, self.records, self.requests, started_at=self.started_at
        )
