"""What the event triggers poll: finished long tasks (task queries) and summarised staging batches.

Each listing is a flow (:mod:`~airflow_provider_carol.hooks.core.transport`), so the async hook runs it
with the same URL building, auth, retries and error mapping as every other call. Both return the items
*newer than a watermark*, oldest first, paging until the watermark is reached; the watermark itself is
plain JSON (:class:`Watermark`), so it can live in Airflow's asset state store.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_carol.exceptions import CarolApiError, CarolConfigError
from airflow_provider_carol.hooks.core import endpoints
from airflow_provider_carol.hooks.core.async_hook import CarolAsyncHookBase
from airflow_provider_carol.hooks.core.transport import Call, Flow, Json
from airflow_provider_carol.hooks.tasks.models import CarolTask

#: Items asked for per page while looking for what is newer than the watermark.
PAGE_SIZE = 100


def epoch_ms(stamp: object) -> int:
    """Carol's ISO-8601 UTC time (``2026-01-02T03:04:05.678Z``) or epoch milliseconds, as epoch ms."""
    if isinstance(stamp, bool) or stamp is None:
        raise ValueError(f"not a Carol timestamp: {stamp!r}")
    if isinstance(stamp, int | float):
        return int(stamp)
    parsed = dt.datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return int(parsed.timestamp() * 1000)


@dataclass(frozen=True)
class Watermark:
    """The newest event already fired: its time (epoch ms) and the ids fired *at* that time (ties).

    An item is new when it is later than ``at``, or at ``at`` with an id not in ``ids``.
    """

    at: int = -1
    ids: tuple[str, ...] = field(default=())

    def admits(self, at: int, item_id: str) -> bool:
        """Whether an item at ``at`` with ``item_id`` comes after this watermark."""
        return at > self.at or (at == self.at and item_id not in self.ids)

    def after(self, at: int, item_id: str) -> Watermark:
        """The watermark once the item (at ``at``, ``item_id``) has fired."""
        if at > self.at:
            return Watermark(at, (item_id,))
        return Watermark(self.at, (*self.ids, item_id)) if at == self.at else self

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at, "ids": list(self.ids)}

    @classmethod
    def from_json(cls, raw: object) -> Watermark | None:
        """A stored watermark, or None when there is none (or it is not one of ours)."""
        if not isinstance(raw, dict) or not isinstance(raw.get("at"), int):
            return None
        ids = raw.get("ids")
        return cls(raw["at"], tuple(str(i) for i in ids) if isinstance(ids, list) else ())


@dataclass(frozen=True)
class BatchSummary:
    """One summarised batch of one staging table, as the summaries listing shows it."""

    batch_id: str
    staging: str
    connector_id: str
    total_records: int
    total_requests: int
    records_received: int | None
    received_at: int
    timestamp_start: str | None = None
    timestamp_end: str | None = None

    @property
    def event_id(self) -> str:
        """What tells this summary apart at one arrival time (a batch may span connectors)."""
        return f"{self.batch_id}@{self.connector_id}"

    @classmethod
    def from_api(cls, body: object) -> BatchSummary:
        if not isinstance(body, dict) or not body.get("batchId") or not body.get("stagingType"):
            raise CarolApiError(f"Carol's batch summaries answered with a non-summary: {str(body)[:200]!r}")
        received = body.get("recordsReceived")
        return cls(
            batch_id=str(body["batchId"]),
            staging=str(body["stagingType"]),
            connector_id=str(body.get("connectorId") or ""),
            total_records=int(body.get("totalRecords") or 0),
            total_requests=int(body.get("totalRequests") or 0),
            records_received=None if received is None else int(received),
            received_at=epoch_ms(body.get("receivedAt")),
            timestamp_start=body.get("timestampStart"),
            timestamp_end=body.get("timestampEnd"),
        )


def task_query(
    statuses: Iterable[str], task_types: Sequence[str], task_names: Sequence[str], app_names: Sequence[str]
) -> dict[str, Any]:
    """The ``v1/queries/filter`` body for long tasks with these statuses, types, names and apps."""
    must: list[dict[str, Any]] = [{"mdmFilterType": "TYPE_FILTER", "mdmValue": "mdmTask"}]
    for key, values in (
        ("mdmTaskStatus", sorted(statuses)),
        ("mdmTaskType", list(task_types)),
        ("mdmTaskName", list(task_names)),
        ("mdmData.carolAppName", list(app_names)),
    ):
        if values:
            must.append({"mdmKey": f"{key}.raw", "mdmFilterType": "TERMS_FILTER", "mdmValue": values})
    return {"mustList": must, "mustNotList": [], "shouldList": []}


def _hits(body: Json, what: str) -> list[object]:
    hits = body.get("hits") if isinstance(body, dict) else None
    if not isinstance(hits, list):
        raise CarolApiError(f"Carol's {what} answered without a hits list: {str(body)[:200]!r}")
    return hits


def tasks_after(query: dict[str, Any], watermark: Watermark) -> Flow[list[CarolTask]]:
    """Tasks matching ``query`` last updated after ``watermark``, oldest first.

    Pages newest-first (``sortBy=mdmLastUpdated&sortOrder=DESC``) until a page reaches the watermark.
    """
    found: list[CarolTask] = []
    offset = 0
    while True:
        params = {
            "indexType": "MASTER",
            "scrollable": "false",
            "pageSize": PAGE_SIZE,
            "offset": offset,
            "sortBy": "mdmLastUpdated",
            "sortOrder": "DESC",
        }
        body = yield Call.to(endpoints.QUERY_FILTER, params=params, json=query, idempotent=True)
        hits = _hits(body, "task query")
        page = [CarolTask.from_api(hit) for hit in hits if isinstance(hit, dict) and hit.get("mdmId")]
        newer = [t for t in page if watermark.admits(epoch_ms(t.last_updated), t.task_id)]
        found.extend(newer)
        if len(newer) < len(page) or len(hits) < PAGE_SIZE:
            return sorted(found, key=lambda t: (epoch_ms(t.last_updated), t.task_id))
        offset += len(hits)


def summaries_after(staging: str, connector_id: str | None, watermark: Watermark) -> Flow[list[BatchSummary]]:
    """Summaries of ``staging`` (of ``connector_id`` if given) received after ``watermark``, oldest first."""
    if not staging:
        raise CarolConfigError("staging must be a non-empty string.")
    found: list[BatchSummary] = []
    offset = 0
    while True:
        params: dict[str, object] = {
            "stagingType": staging,
            "receivedAfter": max(watermark.at, 0),  # inclusive: ties at the watermark are checked here
            "offset": offset,
            "pageSize": PAGE_SIZE,
        }
        if connector_id:
            params["connectorId"] = connector_id
        body = yield Call.to(endpoints.BATCH_SUMMARIES, params=params)
        hits = _hits(body, "batch summaries")
        page = [BatchSummary.from_api(hit) for hit in hits]
        found.extend(s for s in page if watermark.admits(s.received_at, s.event_id))
        if len(hits) < PAGE_SIZE:
            return found
        offset += len(hits)


class AsyncEventsApi(CarolAsyncHookBase):
    """The event listings of ``CarolAsyncHook`` (each runs one flow above)."""

    async def tasks_after(self, query: dict[str, Any], watermark: Watermark) -> list[CarolTask]:
        """Tasks matching ``query`` (see :func:`task_query`) updated after ``watermark``, oldest first."""
        return await self.run(tasks_after(query, watermark))

    async def summaries_after(
        self, staging: str, connector_id: str | None, watermark: Watermark
    ) -> list[BatchSummary]:
        """Batch summaries of ``staging`` received after ``watermark``, oldest first."""
        return await self.run(summaries_after(staging, connector_id, watermark))
