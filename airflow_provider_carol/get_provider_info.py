"""The ``apache_airflow_provider`` entry point: what Airflow learns about this provider.

The connection form is declared here (``conn-fields`` + ``ui-field-behaviour``), the mechanism
Airflow 3.2+ reads; the extras' names are the connection contract documented in docs/connection.md.
"""

from __future__ import annotations

from typing import Any

_STR = ["string", "null"]

CONN_FIELDS: dict[str, dict[str, Any]] = {
    "auth_type": {
        "label": "Auth type",
        "description": "password (login + password), token (access token in Password) or api_key "
        "(API key in Password, needs Connector ID). api_key is the one for unattended runs.",
        "schema": {"type": _STR, "enum": ["api_key", "password", "token"], "default": "api_key"},
    },
    "tenant": {
        "label": "Tenant",
        "description": "Carol environment (tenant) name. Required unless Org level is on.",
        "schema": {"type": _STR},
    },
    "organization": {
        "label": "Organization",
        "description": "Organization subdomain; the API host is <organization>.<environment>.",
        "schema": {"type": _STR},
    },
    "environment": {
        "label": "Environment",
        "description": "carol.ai (production), karol.ai (explore) or qarol.ai (QA).",
        "schema": {"type": _STR, "enum": ["carol.ai", "karol.ai", "qarol.ai"], "default": "carol.ai"},
    },
    "connector_id": {
        "label": "Connector ID",
        "description": "Required for api_key auth; the default connector for staging sends.",
        "schema": {"type": _STR},
    },
    "app_name": {
        "label": "App name",
        "description": "Carol app name (settings, processes).",
        "schema": {"type": _STR},
    },
    "org_level": {
        "label": "Org level",
        "description": "Log in at organization level (no tenant).",
        "schema": {"type": ["boolean", "null"], "default": False},
    },
    "timeout": {
        "label": "Timeout (s)",
        "description": "Read timeout of each request, in seconds.",
        "schema": {"type": ["number", "null"], "default": 60},
    },
    "verify": {
        "label": "Verify TLS",
        "description": "true, false, or the path of a CA bundle (PEM).",
        "schema": {"type": _STR, "default": "true"},
    },
    "scheme": {
        "label": "Scheme",
        "description": "https, or http for a local sandbox.",
        "schema": {"type": _STR, "enum": ["https", "http"], "default": "https"},
    },
    "bigquery_endpoint": {
        "label": "BigQuery REST endpoint",
        "description": "Only for a local emulator, e.g. http://127.0.0.1:9050; empty means Google's.",
        "schema": {"type": _STR},
    },
    "bigquery_storage_endpoint": {
        "label": "BigQuery Storage endpoint",
        "description": "Only for a local emulator: host:port, plaintext gRPC on loopback.",
        "schema": {"type": _STR},
    },
    "refresh_token": {
        "label": "Refresh token",
        "description": "Optional, token auth only: lets the hook renew an expired access token.",
        "schema": {"type": _STR, "format": "password"},
    },
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


OPERATORS = ("api", "connectors", "staging", "tasks", "apps", "bigquery", "duckdb")


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
        "triggers": [{"integration-name": "TOTVS Carol", "python-modules": _modules("triggers", "tasks")}],
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
