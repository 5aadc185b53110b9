"""Carol's query surface after ingestion: BigQuery processing into a data model, and named queries.

``processQuery`` runs GoogleSQL over the tenant's BigQuery data and writes the result into a data model
as a Carol long task; its POST is never resent (a duplicate would process twice). Named queries read
the realtime layer page by page: the first page from ``v2/queries/named/{name}``, the next ones from
``v2/queries/filter/{scrollId}``, until ``totalHits`` records came or a page is empty.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from airflow_provider_carol.exceptions import CarolApiError, CarolConfigError, CarolUnexpectedAnswer
from airflow_provider_carol.hooks.core import endpoints
from airflow_provider_carol.hooks.core.answers import describe, field_names
from airflow_provider_carol.hooks.core.sync_driver import CarolHookBase
from airflow_provider_carol.hooks.core.transport import Call, Flow
from airflow_provider_carol.hooks.core.types import Json
from airflow_provider_carol.hooks.core.validate import required_string
from airflow_provider_carol.hooks.tasks.models import CarolTask, started_task

#: ``processQuery`` flags and pycarol's defaults (``CDSGolden.process_bigquery``), by query parameter.
PROCESS_QUERY_FLAGS: dict[str, bool] = {
    "saveCds": True,
    "clearCds": False,
    "sendSubscriptions": True,
    "clearRealtime": False,
    "sendRealtime": False,
    "useDataflow": False,
    "saveBigQuery": False,
    "clearBigQuery": False,
    "deduplicateResults": False,
}
DEFAULT_PAGE_SIZE = 500
INDEX_TYPES = ("MASTER", "STAGING", "RELATIONSHIP", "CONFIG", "MONITORING")


def process_query_params(
    data_model: str, flags: Mapping[str, bool] | None = None, extra: Mapping[str, object] | None = None
) -> dict[str, object]:
    """The query string of ``processQuery``: the data model, every flag (defaults filled in), extras.

    Unknown flag names and non-boolean values are errors naming the flag, before anything is sent.
    """
    if not isinstance(data_model, str) or not data_model.strip():
        raise CarolConfigError(f"data_model must be a non-empty data model name, got {data_model!r}.")
    given = dict(flags or {})
    unknown = sorted(set(given) - set(PROCESS_QUERY_FLAGS))
    if unknown:
        raise CarolConfigError(f"Unknown processQuery flags {unknown}; use {sorted(PROCESS_QUERY_FLAGS)}.")
    params: dict[str, object] = {"entityTemplateName": data_model.strip()}
    for name, default in PROCESS_QUERY_FLAGS.items():
        value = given.get(name, default)
        if not isinstance(value, bool):
            raise CarolConfigError(f"processQuery flag {name} must be True or False, got {value!r}.")
        params[name] = "true" if value else "false"
    clash = sorted(set(extra or {}) & set(params))
    if clash:
        raise CarolConfigError(f"extra_params repeats {clash}; set them through their own arguments.")
    return {**params, **{str(k): v for k, v in (extra or {}).items()}}


def process_query(sql: str, params: Mapping[str, object]) -> Flow[CarolTask]:
    """POST the SQL (text/plain) and return the long task Carol created (never resent)."""
    if not isinstance(sql, str) or not sql.strip():
        raise CarolConfigError("sql must be a non-empty GoogleSQL query.")
    body = yield Call.to(
        endpoints.BIGQUERY_PROCESS_QUERY,
        params=params,
        data=sql.encode(),
        headers={"Content-Type": "text/plain"},
        idempotent=False,
    )
    # No public caller reads this answer (carol-evidence.md): every task-id shape is accepted (assumed).
    return started_task(body, "Carol's processQuery", str(endpoints.BIGQUERY_PROCESS_QUERY))


def named_query_params(
    page_size: int, index_type: str, sort_by: str | None, sort_order: str, fields: Sequence[str] | None
) -> dict[str, object]:
    """The query string of a named query page, validated (each bad setting is named)."""
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= 10_000:
        raise CarolConfigError(f"page_size must be between 1 and 10000, got {page_size!r}.")
    if index_type not in INDEX_TYPES:
        raise CarolConfigError(f"index_type must be one of {', '.join(INDEX_TYPES)}, got {index_type!r}.")
    if sort_order not in ("ASC", "DESC"):
        raise CarolConfigError(f"sort_order must be ASC or DESC, got {sort_order!r}.")
    params: dict[str, object] = {
        "offset": 0,
        "pageSize": page_size,
        "sortOrder": sort_order,
        "indexType": index_type,
        "scrollable": "true",
        "sortBy": sort_by,
    }
    if fields:
        params["fields"] = ",".join([fields] if isinstance(fields, str) else list(fields))
    return params


def named_query_page(
    name: str, query: Mapping[str, object], body: Mapping[str, object], scroll_id: str | None = None
) -> Flow[Json]:
    """One page of a named query (the first, or the one after ``scroll_id``); a read, so Carol may be
    asked again (pycarol retries these POSTs too)."""
    endpoint, path_params = (
        (endpoints.NAMED_QUERY, {"name": name})
        if scroll_id is None
        else (endpoints.QUERY_SCROLL, {"scroll_id": scroll_id})
    )
    return (yield Call.to(endpoint, path_params=path_params, params=query, json=dict(body), idempotent=True))


def page_hits(page: Json, name: str, golden_values: bool) -> tuple[list[Any], int, str | None]:
    """(records, totalHits, scrollId) of one page; a malformed page is a :class:`CarolApiError`."""
    if not isinstance(page, dict) or not isinstance(page.get("hits"), list):
        raise CarolUnexpectedAnswer(
            f"Named query {name!r}: the answer has no hits list ({describe(page)}).",
            endpoint=str(endpoints.NAMED_QUERY),
            fields=field_names(page),
        )
    hits = page["hits"]
    if golden_values:
        hits = [hit.get("mdmGoldenFieldAndValues", hit) if isinstance(hit, dict) else hit for hit in hits]
    total = page.get("totalHits")
    return hits, int(total) if isinstance(total, int) else len(hits), page.get("scrollId")


class QueryMethods(CarolHookBase):
    """Query methods of ``CarolHook``: ``process_query`` and ``named_query``."""

    def process_query(
        self,
        sql: str,
        data_model: str,
        *,
        flags: Mapping[str, bool] | None = None,
        extra_params: Mapping[str, object] | None = None,
    ) -> CarolTask:
        """Start Carol's BigQuery processing of ``sql`` into ``data_model``; returns its long task."""
        return self.run(process_query(sql, process_query_params(data_model, flags, extra_params)))

    def named_query(
        self,
        name: str,
        params: Mapping[str, object] | None = None,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        index_type: str = "MASTER",
        sort_by: str | None = None,
        sort_order: str = "ASC",
        fields: Sequence[str] | None = None,
        golden_values: bool = True,
        max_hits: int | None = None,
    ) -> list[Any]:
        """Every record the named query returns (all pages); see :meth:`iter_named_query`."""
        return list(
            self.iter_named_query(
                name,
                params,
                page_size=page_size,
                index_type=index_type,
                sort_by=sort_by,
                sort_order=sort_order,
                fields=fields,
                golden_values=golden_values,
                max_hits=max_hits,
            )
        )

    def iter_named_query(
        self,
        name: str,
        params: Mapping[str, object] | None = None,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        index_type: str = "MASTER",
        sort_by: str | None = None,
        sort_order: str = "ASC",
        fields: Sequence[str] | None = None,
        golden_values: bool = True,
        max_hits: int | None = None,
    ) -> Iterator[Any]:
        """The named query's records one by one, fetching a page only when the previous one is used up.

        ``params`` fill the query's ``{{param}}`` placeholders (the JSON body). ``golden_values`` yields
        each hit's ``mdmGoldenFieldAndValues`` (the hit itself when it has none; pycarol dropped those).
        A page that ends the scroll early (no ``scrollId`` with records still due) is an error.
        """
        required_string("name", name)
        if params is not None and not isinstance(params, Mapping):
            raise CarolConfigError(
                f"params must be a mapping of query parameters, got {type(params).__name__}."
            )
        query = named_query_params(page_size, index_type, sort_by, sort_order, fields)
        body = dict(params or {})
        received, wanted, scroll_id = 0, None, None
        while True:
            page = self.run(named_query_page(name, query, body, scroll_id))
            hits, total, scroll_id = page_hits(page, name, golden_values)
            wanted = total if max_hits is None else min(total, max_hits)
            yield from hits[: max(wanted - received, 0)]
            received += len(hits)
            if not hits or received >= wanted:
                return
            if not scroll_id:
                raise CarolApiError(
                    f"Named query {name!r}: Carol returned {received} of {wanted} records and no scrollId "
                    "to continue."
                )
