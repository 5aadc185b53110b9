"""The one list of the ``carol`` connection's extras: names (the contract), labels and form schemas.

The connection parser (:mod:`.config`) reads extras by these names and the connection form
(``get_provider_info``) is generated from this list, so the two cannot disagree. Pure data: importing
it imports nothing else (``get_provider_info`` is loaded while Airflow itself is starting).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

ENVIRONMENTS = ("carol.ai", "karol.ai", "qarol.ai")
SCHEMES = ("https", "http")
DEFAULT_TIMEOUT = 60.0
_STR = ["string", "null"]


@dataclass(frozen=True)
class Extra:
    """One connection extra: its name (the contract), and how the connection form shows it."""

    name: str
    label: str
    description: str
    schema: Mapping[str, object]


EXTRAS: tuple[Extra, ...] = (
    Extra(
        "auth_type",
        "Auth type",
        "password (login + password), token (access token in Password) or api_key "
        "(API key in Password, needs Connector ID). api_key is the one for unattended runs.",
        {"type": _STR, "enum": ["api_key", "password", "token"], "default": "api_key"},
    ),
    Extra(
        "tenant",
        "Tenant",
        "Carol environment (tenant) name. Required unless Org level is on.",
        {"type": _STR},
    ),
    Extra(
        "organization",
        "Organization",
        "Organization subdomain; the API host is <organization>.<environment>.",
        {"type": _STR},
    ),
    Extra(
        "environment",
        "Environment",
        "carol.ai (production), karol.ai (explore) or qarol.ai (QA).",
        {"type": _STR, "enum": list(ENVIRONMENTS), "default": "carol.ai"},
    ),
    Extra(
        "connector_id",
        "Connector ID",
        "Required for api_key auth; the default connector for staging sends.",
        {"type": _STR},
    ),
    Extra("app_name", "App name", "Carol app name (settings, processes).", {"type": _STR}),
    Extra(
        "org_level",
        "Org level",
        "Log in at organization level (no tenant).",
        {"type": ["boolean", "null"], "default": False},
    ),
    Extra(
        "timeout",
        "Timeout (s)",
        "Read timeout of each request, in seconds.",
        {"type": ["number", "null"], "default": int(DEFAULT_TIMEOUT)},
    ),
    Extra(
        "verify",
        "Verify TLS",
        "true, false, or the path of a CA bundle (PEM).",
        {"type": _STR, "default": "true"},
    ),
    Extra(
        "scheme",
        "Scheme",
        "https, or http for a local sandbox.",
        {"type": _STR, "enum": list(SCHEMES), "default": "https"},
    ),
    Extra(
        "bigquery_endpoint",
        "BigQuery REST endpoint",
        "Only for a local emulator, e.g. http://127.0.0.1:9050; empty means Google's.",
        {"type": _STR},
    ),
    Extra(
        "bigquery_storage_endpoint",
        "BigQuery Storage endpoint",
        "Only for a local emulator: host:port, plaintext gRPC on loopback.",
        {"type": _STR},
    ),
    Extra(
        "refresh_token",
        "Refresh token",
        "Optional, token auth only: lets the hook renew an expired access token.",
        {"type": _STR, "format": "password"},
    ),
)
EXTRA_NAMES = frozenset(extra.name for extra in EXTRAS)
