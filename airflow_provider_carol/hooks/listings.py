"""What the event triggers poll: finished long tasks (task queries) and staging record counts.

Each is a flow (:mod:`~airflow_provider_carol.hooks.core.transport`), so both hooks run it with the same
URL building, auth, retries and error mapping as every other call. :func:`tasks_after` returns the tasks
*newer than a watermark*, oldest first, paging until the watermark is reached; :func:`staging_counts`
reads a staging's record count per connector from Carol's connector stats. Both watermarks are plain
JSON (:class:`Watermark`, :class:`RecordCounts`), so they can live in Airflow's asset state store.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_carol.exceptions import CarolUnexpectedAnswer
from airflow_provider_carol.hooks.core import endpoints
from airflow_provider_carol.hooks.core.answers import describe, field_names
from airflow_provider_carol.hooks.core.async_driver import CarolAsyncHookBase
from airflow_provider_carol.hooks.core.transport import Call, Flow
from airflow_provider_carol.hooks.core.types import Json
from airflow_provider_carol.hooks.core.validate import optional_string, required_string
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
class RecordCounts:
    """The record count of one staging table per connector, as last fired (the staging watermark).

    A connector's count fires when Carol reports more records than held here for it.
    """

    counts: Mapping[str, int] = field(default_factory=dict)

    def get(self, connector_id: str) -> int:
        """The count held for ``connector_id`` (0 when none was seen yet)."""
        return self.counts.get(connector_id, 0)

    def with_count(self, connector_id: str, count: int) -> RecordCounts:
        """These counts with ``connector_id`` at ``count``."""
        return RecordCounts({**self.counts, connector_id: count})

    def to_json(self) -> dict[str, Any]:
        return {"counts": dict(sorted(self.counts.items()))}

    @classmethod
    def from_json(cls, raw: object) -> RecordCounts | None:
        """Stored counts, or None when there are none (or the value is not ours)."""
        counts = raw.get("counts") if isinstance(raw, dict) else None
        if not isinstance(counts, dict):
            return None
        return cls({str(k): v for k, v in counts.items() if isinstance(v, int) and not isinstance(v, bool)})


#: Fields of a per-staging stats object that may hold its record count, in the order they are tried.
#: ASSUMED: every public caller reads only the keys of ``stagingEntityStats`` (carol-evidence.md), so
#: what a value holds is not known; carol-check reports the shape a tenant answers (field names only).
COUNT_FIELDS = ("count", "total", "totalRecords", "recordCount", "doc_count")


def stat_count(value: object, where: str) -> int:
    """The record count in one ``stagingEntityStats`` value: a bare integer or an object with a count field.

    :raises CarolApiError: naming ``where`` (connector and staging) when no count can be read.
    """
    if isinstance(value, dict):
        for name in COUNT_FIELDS:
            if name in value:
                return stat_count(value[name], f"{where}.{name}")
    elif isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value == int(value):
        return int(value)
    raise CarolUnexpectedAnswer(
        f"Carol's connector stats hold no record count at {where} ({describe(value)}; expected a "
        f"non-negative integer or an object with one of {', '.join(COUNT_FIELDS)}). The shape of these "
        "values is not documented by Carol: run carol-check against this tenant and report its output.",
        endpoint=str(endpoints.CONNECTOR_STATS),
        fields=field_names(value),
    )


def staging_counts_in(body: Json, staging: str) -> dict[str, int]:
    """``{connector id: record count}`` of ``staging`` in a connector stats answer.

    A connector whose ``stagingEntityStats`` does not name the staging is left out (no count known).
    """
    aggs = body.get("aggs") if isinstance(body, dict) else None
    if not isinstance(aggs, dict):
        raise CarolUnexpectedAnswer(
            f"Carol's connector stats answered without an aggs object ({describe(body)}).",
            endpoint=str(endpoints.CONNECTOR_STATS),
            fields=field_names(body),
        )
    found: dict[str, int] = {}
    for connector_id, stats in aggs.items():
        entities = stats.get("stagingEntityStats") if isinstance(stats, dict) else None
        if entities is None:
            continue
        if not isinstance(entities, dict):
            raise CarolUnexpectedAnswer(
                f"Carol's connector stats: aggs.{connector_id}.stagingEntityStats is not an object "
                f"({describe(entities)}).",
                endpoint=str(endpoints.CONNECTOR_STATS),
            )
        if staging in entities:
            where = f"aggs.{connector_id}.stagingEntityStats.{staging}"
            found[str(connector_id)] = stat_count(entities[staging], where)
    return found


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
        raise CarolUnexpectedAnswer(
            f"Carol's {what} answered without a hits list ({describe(body)}).",
            endpoint=str(endpoints.QUERY_FILTER),
            fields=field_names(body),
        )
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


def staging_counts(staging: str, connector_id: str | None = None) -> Flow[dict[str, int]]:
    """``{connector id: record count}`` of ``staging``, from Carol's connector stats.

    ``GET v1/connectors/{connector_id}/stats`` for one connector, ``GET v1/connectors/stats/all`` for
    every connector when none is given.
    """
    staging = required_string("staging", staging)
    connector_id = optional_string("connector_id", connector_id)
    if connector_id:
        body = yield Call.to(endpoints.CONNECTOR_STATS, path_params={"connector_id": connector_id})
        counts = staging_counts_in(body, staging)
        return {connector_id: counts[connector_id]} if connector_id in counts else {}
    body = yield Call.to(endpoints.CONNECTOR_STATS_ALL)
    return staging_counts_in(body, staging)


class AsyncListingMethods(CarolAsyncHookBase):
    """The event listings of ``CarolAsyncHook`` (each runs one flow above)."""

    async def tasks_after(self, query: dict[str, Any], watermark: Watermark) -> list[CarolTask]:
        """Tasks matching ``query`` (see :func:`task_query`) updated after ``watermark``, oldest first."""
        return await self.run(tasks_after(query, watermark))

    async def staging_counts(self, staging: str, connector_id: str | None = None) -> dict[str, int]:
        """``{connector id: record count}`` of ``staging`` (see :func:`staging_counts`)."""
        return await self.run(staging_counts(staging, connector_id))
