"""The ``apache_airflow_provider`` entry point: what Airflow learns about this provider.

The connection form is declared here (``conn-fields`` + ``ui-field-behaviour``), the mechanism
Airflow 3.2+ reads; its extra fields come from ``hooks.core.extras.EXTRAS``, the one list of the
connection's extras (documented in docs/connection.md).
"""

from __future__ import annotations

from typing import Any

from airflow_provider_carol.hooks.core.extras import EXTRAS

#: The connection form's extra fields, generated from the connection config's one list of extras.
CONN_FIELDS: dict[str, dict[str, Any]] = {
    extra.name: {"label": extra.label, "description": extra.description, "schema": dict(extra.schema)}
    for extra in EXTRAS
}

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema"],
    "relabeling": {
        "host": "API host (optional)",
        "login": "User e-mail (password auth)",
        "password": "Password / access token / API key",
        "port": "Port",
    },
    "placeholders": {
        "host": "derived from organization or tenant + environment",
        "port": "443",
        "login": "user@example.com",
    },
}


OPERATORS = ("api", "connectors", "staging", "tasks", "apps", "bigquery", "duckdb", "queries")


def _modules(kind: str, *names: str) -> list[str]:
    return [f"airflow_provider_carol.{kind}.{name}" for name in names]


def get_provider_info() -> dict[str, Any]:
    """Return the provider metadata Airflow's ProvidersManager reads (package-name must match the dist)."""
    return {
        "package-name": "airflow-provider-carol",
        "name": "TOTVS Carol",
        "description": "`TOTVS Carol <https://carol.ai/>`__: staging intake, BigQuery, long tasks.",
        "integrations": [{"integration-name": "TOTVS Carol", "external-doc-url": "https://docs.carol.ai/"}],
        "hooks": [
            {"integration-name": "TOTVS Carol", "python-modules": _modules("hooks", "carol", "carol_async")}
        ],
        "operators": [
            {"integration-name": "TOTVS Carol", "python-modules": _modules("operators", *OPERATORS)}
        ],
        "sensors": [{"integration-name": "TOTVS Carol", "python-modules": _modules("sensors", "tasks")}],
        "triggers": [
            {"integration-name": "TOTVS Carol", "python-modules": _modules("triggers", "tasks", "events")}
        ],
        "extra-links": ["airflow_provider_carol.links.tasks.CarolTaskLink"],
        "logging": ["airflow_provider_carol.log.handler.CarolLogHandler"],
        "remote-logging": [
            {"classpath": "airflow_provider_carol.log.remote.CarolRemoteLogIO", "scheme": "carol"}
        ],
        "connection-types": [
            {
                "connection-type": "carol",
                "hook-class-name": "airflow_provider_carol.hooks.carol.CarolHook",
                "hook-name": "TOTVS Carol",
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
            }
        ],
    }
