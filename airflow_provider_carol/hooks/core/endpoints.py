"""Every Carol endpoint the provider calls, as data: a method and a path template.

What each one sends and the answer fields the provider reads, with their evidence, are in
:mod:`.contract` (``docs/carol-api-contract.md``).

Path parameters are percent-encoded segment by segment, so names with ``/ ? # & %`` or ``..`` can
never change the path or add a query string.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

API_PREFIX = "/api/"
SQL_PREFIX = "/sql/v1/api/"


def quote_segment(value: object) -> str:
    """Percent-encode one path segment; dots-only segments too, so they are never resolved as ``..``."""
    text = str(value)
    if text.strip(".") == "":
        return text.replace(".", "%2E")
    return quote(text, safe="")


@dataclass(frozen=True)
class Endpoint:
    """One Carol endpoint: HTTP method, path template (no leading slash) and URL prefix."""

    method: str
    template: str
    prefix: str = API_PREFIX

    def path(self, **params: object) -> str:
        """The path with each ``{name}`` replaced by its quoted value."""
        return self.template.format(**{k: quote_segment(v) for k, v in params.items()})

    def __str__(self) -> str:
        return f"{self.method} {self.prefix}{self.template}"


# Authentication (form bodies, no auth header).
TOKEN = Endpoint("POST", "v5/oauth2/token")

# Identity and context.
TENANT_CURRENT = Endpoint("GET", "v1/tenants/current")
ORGANIZATION_CURRENT = Endpoint("GET", "v1/organizations/current")

# Connectors and staging (ingestion).
CONNECTOR_CREATE = Endpoint("POST", "v1/connectors")
CONNECTOR_BY_NAME = Endpoint("GET", "v1/connectors/name/{name}")
CONNECTOR_BY_ID = Endpoint("GET", "v1/connectors/{connector_id}")
#: Record counts per staging: ``aggs`` keyed by connector id, each with ``stagingEntityStats``.
CONNECTOR_STATS = Endpoint("GET", "v1/connectors/{connector_id}/stats")
CONNECTOR_STATS_ALL = Endpoint("GET", "v1/connectors/stats/all")
STAGING_SCHEMA_GET = Endpoint("GET", "v2/staging/tables/{staging}/schema")
STAGING_SCHEMA_CREATE = Endpoint("POST", "v2/staging/tables/{staging}/schema")
STAGING_SCHEMA_UPDATE = Endpoint("PUT", "v2/staging/tables/{staging}/schema")
STAGING_INTAKE = Endpoint("POST", "v2/staging/intake/{staging}")
BATCH_SUMMARY = Endpoint("POST", "v3/staging/batch/{batch_id}/summary")

# Queries (the realtime layer; long tasks are searched here with ``TYPE_FILTER mdmTask``).
QUERY_FILTER = Endpoint("POST", "v1/queries/filter")

# Long tasks.
TASK_GET = Endpoint("GET", "v1/tasks/{task_id}")
TASK_LOGS_ADD = Endpoint("POST", "v1/tasks/{task_id}/logs")
TASK_LOGS_GET = Endpoint("GET", "v1/tasks/{task_id}/logs")
TASK_CANCEL = Endpoint("POST", "v1/tasks/{task_id}/cancel")
TASK_FAIL = Endpoint("POST", "v1/tasks/{task_id}/fail")
TASK_REPROCESS = Endpoint("POST", "v1/tasks/{task_id}/reprocess")

# Apps.
APP_BY_NAME = Endpoint("GET", "v1/tenantApps/name/{app_name}")
APP_SETTINGS = Endpoint("GET", "v1/tenantApps/{app_id}/settings")
APP_PROCESSES = Endpoint("GET", "v1/tenantApps/{app_id}/aiprocesses")
APP_PROCESS_EXECUTE = Endpoint(
    "POST", "v1/tenantApps/{app_id}/aiprocesses/{process_id}/execute/{process_name}"
)

# BigQuery.
BIGQUERY_TEMPORARY_KEY = Endpoint("POST", "v1/create_temporary_key", prefix=SQL_PREFIX)

# Queries: BigQuery processing into a data model (a long task), and named queries (paged by scroll).
BIGQUERY_PROCESS_QUERY = Endpoint("POST", "v2/bigQuery/processQuery")
NAMED_QUERY = Endpoint("POST", "v2/queries/named/{name}")
QUERY_SCROLL = Endpoint("POST", "v2/queries/filter/{scroll_id}")
