"""TLS: certificates are verified by default, and a missing or wrong CA fails with a message that says so.

Runs against ``carol-sandbox --tls`` (a throw-away CA). Nothing reaches Carol's API when verification
fails: the sandbox's request log stays empty.
"""

from __future__ import annotations

import json

import pytest

from airflow_provider_carol.exceptions import CarolConfigError, CarolConnectionError
from airflow_provider_carol.hooks.carol import CarolHook
from airflow_provider_carol.hooks.carol_async import CarolAsyncHook
from airflow_provider_carol.sandbox.tls import make_tls_files

CONN = "AIRFLOW_CONN_CAROL_TLS"


@pytest.fixture
def no_ambient_ca(monkeypatch):
    """No CA bundle from the environment: what the hook verifies against is its own setting."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)


def tls_connection(sandbox, verify=None) -> str:
    conn = json.loads(sandbox.connection_json("api_key"))
    conn["extra"].pop("verify", None)
    conn["extra"].pop("scheme", None)  # https is the default
    if verify is not None:
        conn["extra"]["verify"] = verify
    return json.dumps(conn)


def assert_clear_tls_failure(message: str, sandbox) -> None:
    assert "TLS verification failed" in message
    assert "'verify'" in message and "CA bundle" in message  # says which setting to change
    assert sandbox.api_key not in message
    assert sandbox.requests() == []  # the request never reached the API


def test_certificates_are_verified_by_default(carol_sandbox_tls, monkeypatch, no_ambient_ca):
    monkeypatch.setenv(CONN, tls_connection(carol_sandbox_tls))
    hook = CarolHook("carol_tls", retry_limit=0)
    assert hook.config.verify is True and hook.config.base_url.startswith("https://")
    with pytest.raises(CarolConnectionError) as failed:
        hook.get_current()
    assert_clear_tls_failure(str(failed.value), carol_sandbox_tls)


def test_a_wrong_ca_bundle_fails_clearly(carol_sandbox_tls, monkeypatch, no_ambient_ca, tmp_path):
    other_ca, _, _ = make_tls_files(tmp_path / "other-ca")
    monkeypatch.setenv(CONN, tls_connection(carol_sandbox_tls, str(other_ca)))
    with pytest.raises(CarolConnectionError) as failed:
        CarolHook("carol_tls", retry_limit=0).get_current()
    assert_clear_tls_failure(str(failed.value), carol_sandbox_tls)
    assert str(other_ca) in str(failed.value)


async def test_the_async_hook_used_by_triggers_rejects_a_wrong_ca_too(
    carol_sandbox_tls, monkeypatch, no_ambient_ca, tmp_path
):
    other_ca, _, _ = make_tls_files(tmp_path / "other-ca")
    monkeypatch.setenv(CONN, tls_connection(carol_sandbox_tls, str(other_ca)))
    with pytest.raises(CarolConnectionError) as failed:
        await CarolAsyncHook("carol_tls", retry_limit=0).call_api("v1/tenants/current")
    assert_clear_tls_failure(str(failed.value), carol_sandbox_tls)


def test_the_right_ca_bundle_connects(carol_sandbox_tls, monkeypatch, no_ambient_ca):
    monkeypatch.setenv(CONN, tls_connection(carol_sandbox_tls, carol_sandbox_tls.ca_bundle))
    assert CarolHook("carol_tls").get_current().tenant_name == carol_sandbox_tls.tenant


def test_a_ca_bundle_that_does_not_exist_is_a_config_error_before_any_request(
    carol_sandbox_tls, monkeypatch, tmp_path
):
    missing = tmp_path / "nope.pem"
    monkeypatch.setenv(CONN, tls_connection(carol_sandbox_tls, str(missing)))
    with pytest.raises(CarolConfigError, match="'verify'") as failed:
        CarolHook("carol_tls").get_current()
    assert str(missing) in str(failed.value)
    assert carol_sandbox_tls.requests() == []
