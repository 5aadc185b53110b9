"""Helpers for the sandbox tests: log in over real HTTP and get a session that carries the token."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from airflow_provider_carol.sandbox.control import Sandbox


def password_login(
    sandbox: Sandbox,
    *,
    login: str | None = None,
    password: str | None = None,
    tenant: bool = True,
    **form: str,
) -> requests.Response:
    """POST the password grant the way pycarol does (form body, raw fields)."""
    data = {
        "username": login or sandbox.user,
        "password": password or sandbox.password,
        "grant_type": "password",
        "connectorId": sandbox.connector_id,
        "orgSubdomain": sandbox.organization,
        **form,
    }
    if tenant:
        data.setdefault("subdomain", sandbox.tenant)
    return requests.post(
        f"{sandbox.url}/api/v5/oauth2/token", data=data, timeout=10, verify=sandbox.ca_bundle or True
    )


@pytest.fixture
def api(carol_sandbox: Sandbox) -> Iterator[requests.Session]:
    """A keep-alive session that sends a fresh access token raw in ``Authorization``."""
    token = password_login(carol_sandbox).json()["access_token"]
    with requests.Session() as session:
        session.headers["Authorization"] = token
        yield session


@pytest.fixture
def url(carol_sandbox: Sandbox) -> str:
    return carol_sandbox.url
