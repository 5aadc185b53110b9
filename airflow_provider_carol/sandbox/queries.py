"""Named queries (paged by scroll) and BigQuery ``processQuery`` calls (section 10), in memory.

The sandbox does not evaluate Carol's query language: a named query is seeded through the admin API
with its parameter names and the golden records it returns (given, or the data model's records that
processQuery wrote), filtered by equality on each parameter that is also a field. processQuery is
recorded and answered with a long task. With a BigQuery emulator attached (``sandbox/bigquery.py``)
the SQL really runs there, on the tenant's dataset (staging intake is mirrored into it): the task
COMPLETES with the rows written as the data model's golden records, or FAILS with BigQuery's error.
Without one, the task follows a schedule the admin API sets (default: RUNNING, then COMPLETED after
1 s) and the SQL is not run.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from .auth import new_id
from .errors import CarolError


@dataclass
class NamedQuery:
    """A seeded named query: the parameters it requires and the records it returns."""

    name: str
    params: list[str]
    records: list[dict[str, Any]] | None  # None: the data model's golden records (see processQuery)
    data_model: str = "customer"


@dataclass
class Scroll:
    """The rest of one query's result, handed out a page at a time."""

    query: NamedQuery
    hits: list[dict[str, Any]]
    position: int
    page_size: int


@dataclass
class QueryStore:
    """Thread-safe named queries, open scrolls and the processQuery calls received."""

    named: dict[str, NamedQuery] = field(default_factory=dict)
    scrolls: dict[str, Scroll] = field(default_factory=dict)
    process_calls: list[dict[str, Any]] = field(default_factory=list)
    golden: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    process_schedule: list[dict[str, Any]] | None = None
    process_error: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def reset(self) -> None:
        with self._lock:
            self.named.clear()
            self.scrolls.clear()
            self.process_calls.clear()
            self.golden.clear()
            self.process_schedule, self.process_error = None, None

    def add(self, body: dict[str, Any]) -> NamedQuery:
        name, params, records = body.get("name"), body.get("params") or [], body.get("records")
        if not isinstance(name, str) or not name:
            raise CarolError(400, "name is required", "name")
        if not all(isinstance(p, str) for p in params) or not all(isinstance(r, dict) for r in records or []):
            raise CarolError(400, "params must be names and records objects", "records")
        rows = None if records is None else list(records)
        query = NamedQuery(name, list(params), rows, str(body.get("data_model") or "customer"))
        with self._lock:
            self.named[name] = query
        return query

    def first_page(
        self, name: str, values: Any, page_size: int, offset: int, scrollable: bool
    ) -> dict[str, Any]:
        """Run the named query; every declared parameter must be given (400 naming the first missing)."""
        with self._lock:
            query = self.named.get(name)
        if query is None:
            raise CarolError(404, f"Named query {name} Not found", "name")
        if not isinstance(values, dict):
            raise CarolError(400, "The named query's parameters must be a JSON object", "body")
        missing = [param for param in query.params if param not in values]
        if missing:
            raise CarolError(400, f"Parameter {missing[0]} is required by named query {name}", missing[0])
        if page_size < 1:
            raise CarolError(400, "pageSize must be at least 1", "pageSize")
        with self._lock:
            records = list(
                query.records if query.records is not None else self.golden.get(query.data_model, [])
            )
        hits = [
            self._hit(query, record)
            for record in records
            if all(record[p] == values[p] for p in query.params if p in record)
        ]
        return self._page(Scroll(query, hits, offset, page_size), scrollable)

    def next_page(self, scroll_id: str) -> dict[str, Any]:
        with self._lock:
            scroll = self.scrolls.pop(scroll_id, None)
        if scroll is None:
            raise CarolError(404, f"Scroll {scroll_id} Not found or expired", "scrollId")
        return self._page(scroll, True)

    def _page(self, scroll: Scroll, scrollable: bool) -> dict[str, Any]:
        page = scroll.hits[scroll.position : scroll.position + scroll.page_size]
        body: dict[str, Any] = {"totalHits": len(scroll.hits), "count": len(page), "took": 1, "hits": page}
        if scrollable:
            scroll_id = new_id()
            with self._lock:
                self.scrolls[scroll_id] = Scroll(
                    scroll.query, scroll.hits, scroll.position + len(page), scroll.page_size
                )
            body["scrollId"] = scroll_id
        return body

    @staticmethod
    def _hit(query: NamedQuery, record: dict[str, Any]) -> dict[str, Any]:
        return {
            "mdmId": str(record.get("mdmId") or new_id()),
            "mdmEntityType": f"{query.data_model}Golden",
            "mdmGoldenFieldAndValues": record,
            "mdmErrors": {},
        }

    def write_golden(self, data_model: str, rows: list[dict[str, Any]], clear: bool) -> None:
        """What a processQuery wrote into a data model (replacing its records when ``clear``)."""
        with self._lock:
            kept = [] if clear else self.golden.get(data_model, [])
            self.golden[data_model] = kept + rows
