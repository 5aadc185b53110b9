"""The GETs of one connection, each answer compared with the contract."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import TYPE_CHECKING

from airflow_provider_carol.check.compare import EndpointResult, compare, stats_shape, values_at
from airflow_provider_carol.exceptions import CarolApiError, CarolAuthError
from airflow_provider_carol.hooks.core import endpoints
from airflow_provider_carol.hooks.core.answers import text_at
from airflow_provider_carol.hooks.core.endpoints import Endpoint
from airflow_provider_carol.hooks.core.transport import Call
from airflow_provider_carol.hooks.tasks.models import ACTIVE_STATUSES, TERMINAL_STATUSES

if TYPE_CHECKING:
    from airflow_provider_carol.hooks.carol import CarolHook

#: What a tenant-level connection reads after the identity.
TENANT_ENDPOINTS = (
    endpoints.CONNECTOR_BY_ID,
    endpoints.CONNECTOR_STATS,
    endpoints.STAGING_SCHEMA_GET,
    endpoints.APP_BY_NAME,
    endpoints.APP_SETTINGS,
    endpoints.APP_PROCESSES,
    endpoints.TASK_GET,
    endpoints.BIGQUERY_TEMPORARY_KEY,
)


class Checker:
    """Runs the GETs of one connection and collects one :class:`EndpointResult` per endpoint."""

    def __init__(self, hook: CarolHook, args: argparse.Namespace) -> None:
        self.hook, self.args = hook, args
        self.results: list[EndpointResult] = []
        self.stats_value_shape: str | None = None

    def get(self, endpoint: Endpoint, *, params: Mapping[str, object] | None = None, **path: str) -> object:
        """One GET of ``endpoint``, compared; None when it failed (the failure is a result row)."""
        try:
            body = self.hook.call_api(endpoint.path(**path), "GET", params=params, prefix=endpoint.prefix)
        except CarolAuthError:
            if not self.results:  # the first call: the login itself was refused
                raise
            self.results.append(EndpointResult(str(endpoint), "error", 401, note="CarolAuthError"))
            return None
        except CarolApiError as exc:
            self.results.append(
                EndpointResult(str(endpoint), "error", exc.status_code, note=type(exc).__name__)
            )
            return None
        self.results.append(compare(endpoint, body))
        return body

    def skip(self, endpoint: Endpoint, why: str) -> None:
        self.results.append(EndpointResult(str(endpoint), "skipped", note=why))

    def identity(self) -> None:
        """The tenant and the organization; at organization level the organization first, so a refused
        login fails there, and any 4xx of ``tenants/current`` is the contract's "no tenant"."""
        if not self.hook.config.org_level:
            self.get(endpoints.TENANT_CURRENT)
            self.get(endpoints.ORGANIZATION_CURRENT)
            return
        self.get(endpoints.ORGANIZATION_CURRENT)
        endpoint = endpoints.TENANT_CURRENT
        try:  # a 401 here is an answer, not a stale token: no re-login (hooks/core/context.py)
            body = self.hook.run(self.hook.pipeline.call(Call.to(endpoint, reauthenticate=False)))
        except CarolApiError as exc:
            if exc.status_code is None or not 400 <= exc.status_code < 500:
                raise
            note = f"HTTP {exc.status_code}: no current tenant at organization level"
            self.results.append(EndpointResult(str(endpoint), "ok", exc.status_code, note=note))
            return
        result = compare(endpoint, body)
        if not text_at(body, "mdmName"):  # pycarol: no mdmName means organization level (carol.py L580)
            result.fields = [f for f in result.fields if f.field != "mdmName"]
            result.outcome, result.note = "ok", "no mdmName: organization level, as pycarol reads it"
        self.results.append(result)

    def connector(self) -> str | None:
        """The connector and its stats; returns a staging to read the schema of (never printed)."""
        connector_id = self.args.connector_id or self.hook.config.connector_id
        if not connector_id:
            for endpoint in (
                endpoints.CONNECTOR_BY_ID,
                endpoints.CONNECTOR_STATS,
                endpoints.STAGING_SCHEMA_GET,
            ):
                self.skip(endpoint, "no connector: pass --connector-id or set extra 'connector_id'")
            return None
        self.get(endpoints.CONNECTOR_BY_ID, connector_id=connector_id)
        stats = self.get(endpoints.CONNECTOR_STATS, connector_id=connector_id)
        if stats is not None:
            self.stats_value_shape, readable = stats_shape(stats)
            row = self.results[-1]
            row.note = f"stagingEntityStats values: {self.stats_value_shape}"
            if not readable:
                row.outcome = "mismatch"
                row.note += " (no record count the provider can read)"
        return self.args.staging or next(iter(_staging_names(stats)), None)

    def schema(self, staging: str | None) -> None:
        connector_id = self.args.connector_id or self.hook.config.connector_id
        if not connector_id:
            return
        if not staging:
            self.skip(endpoints.STAGING_SCHEMA_GET, "no staging: pass --staging (the connector lists none)")
            return
        body = self.get(endpoints.STAGING_SCHEMA_GET, params={"connectorId": connector_id}, staging=staging)
        last = self.results[-1]
        if body is None and last.status == 404:
            last.outcome, last.note = "ok", "HTTP 404: the staging has no schema (the contract's 'no schema')"

    def app(self) -> None:
        name = self.args.app or self.hook.config.app_name
        app_endpoints = (endpoints.APP_BY_NAME, endpoints.APP_SETTINGS, endpoints.APP_PROCESSES)
        if not name:
            for endpoint in app_endpoints:
                self.skip(endpoint, "no app: pass --app or set extra 'app_name'")
            return
        app = self.get(endpoints.APP_BY_NAME, params={"entitySpace": "PRODUCTION"}, app_name=name)
        app_id = app.get("mdmId") if isinstance(app, dict) else None
        if not isinstance(app_id, str) or not app_id:
            for endpoint in app_endpoints[1:]:
                self.skip(endpoint, "the app answer named no mdmId")
            return
        space = {"entitySpace": "PRODUCTION", "checkAllSpaces": "false"}
        self.get(endpoints.APP_SETTINGS, params=space, app_id=app_id)
        listing = self.get(
            endpoints.APP_PROCESSES,
            params={"entitySpace": "WORKING", "checkAllSpaces": "true"},
            app_id=app_id,
        )
        if listing == {}:
            row = self.results[-1]
            row.outcome, row.fields, row.note = (
                "ok",
                [],
                "{}: the app has no AI process (as Carol answers it)",
            )

    def task(self) -> None:
        if not self.args.task_id:
            self.skip(endpoints.TASK_GET, "no task: pass --task-id")
            return
        body = self.get(endpoints.TASK_GET, task_id=self.args.task_id)
        status = body.get("mdmTaskStatus") if isinstance(body, dict) else None
        if body is not None and status not in TERMINAL_STATUSES | ACTIVE_STATUSES:
            row = self.results[-1]
            row.outcome = "mismatch"
            row.note = "mdmTaskStatus is none of READY, RUNNING, COMPLETED, FAILED, CANCELED"

    def bigquery(self) -> None:
        if not self.args.bigquery:
            self.skip(endpoints.BIGQUERY_TEMPORARY_KEY, "creates a temporary key: pass --bigquery")
            return
        try:
            key = self.hook._mint_key()
        except CarolApiError as exc:
            self.results.append(
                EndpointResult(
                    str(endpoints.BIGQUERY_TEMPORARY_KEY),
                    "mismatch",
                    exc.status_code,
                    note=type(exc).__name__,
                )
            )
            return
        self.results.append(compare(endpoints.BIGQUERY_TEMPORARY_KEY, key.info))

    def matches(self) -> bool:
        """Whether every answer read matched the contract (skipped endpoints do not count)."""
        return all(r.outcome in ("ok", "skipped") for r in self.results)

    def run(self) -> None:
        self.identity()
        if self.hook.config.org_level:  # an organization-level session reads no tenant data
            why = "organization-level connection: no tenant data to read"
            for endpoint in TENANT_ENDPOINTS:
                self.skip(endpoint, why)
            return
        self.schema(self.connector())
        self.app()
        self.task()
        self.bigquery()


def _staging_names(stats: object) -> list[str]:
    names: list[str] = []
    for entities in values_at(stats, "aggs.*.stagingEntityStats"):
        if isinstance(entities, dict):
            names.extend(str(name) for name in entities)
    return names
