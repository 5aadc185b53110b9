"""The CLI contract, the admin API's loopback rule, the fixtures' connection JSON and TLS."""

from __future__ import annotations

import json
import os
import re
import signal

import pytest
import requests
from cryptography import x509

from airflow_provider_carol.sandbox.faults import is_loopback
from airflow_provider_carol.sandbox.pytest_plugin import start_sandbox, stop_sandbox

HEX32 = re.compile(r"^[0-9a-f]{32}$")
INFO_KEYS = {
    "url",
    "port",
    "ca_bundle",
    "tenant",
    "organization",
    "user",
    "password",
    "api_key",
    "connector_id",
    "tenant_id",
    "org_id",
    "app_name",
    "environment",
}


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("10.0.0.1", False),
        ("192.168.1.5", False),
        ("::ffff:10.0.0.1", False),
        ("", False),
        (None, False),
        ("testclient", False),
    ],
)
def test_admin_api_only_trusts_loopback_addresses(host, expected):
    assert is_loopback(host) is expected


def test_info_line_has_the_contract_fields_and_32_hex_ids(carol_sandbox):
    info = carol_sandbox.info
    assert set(info) == INFO_KEYS
    assert info["url"] == f"http://127.0.0.1:{info['port']}"
    assert info["ca_bundle"] is None
    for key in ("api_key", "connector_id", "tenant_id", "org_id"):
        assert HEX32.match(info[key]), key
    assert carol_sandbox.session.get(f"{carol_sandbox.url}/__sandbox/info", timeout=10).json() == info


def test_fixture_sets_airflow_conn_carol_default_to_a_password_connection(carol_sandbox):
    conn = json.loads(os.environ["AIRFLOW_CONN_CAROL_DEFAULT"])
    assert conn == {
        "conn_type": "carol",
        "host": "127.0.0.1",
        "port": carol_sandbox.port,
        "login": carol_sandbox.user,
        "password": carol_sandbox.password,
        "extra": {
            "auth_type": "password",
            "tenant": carol_sandbox.tenant,
            "organization": carol_sandbox.organization,
            "connector_id": carol_sandbox.connector_id,
            "app_name": "sandbox_app",
            "scheme": "http",
        },
    }


def test_connection_json_carries_the_secret_of_each_auth_type(carol_sandbox):
    token_conn = json.loads(carol_sandbox.connection_json("token", timeout=5))
    key_conn = json.loads(carol_sandbox.connection_json("api_key"))
    assert key_conn["password"] == carol_sandbox.api_key
    assert token_conn["extra"]["timeout"] == 5
    tenant = requests.get(
        f"{carol_sandbox.url}/api/v1/tenants/current",
        timeout=10,
        headers={"Authorization": token_conn["password"]},
    )
    assert tenant.json()["mdmId"] == carol_sandbox.tenant_id
    with pytest.raises(ValueError, match="auth_type"):
        carol_sandbox.connection_json("kerberos")


def test_tls_sandbox_serves_https_with_a_san_certificate_from_its_ca(carol_sandbox_tls):
    conn = json.loads(os.environ["AIRFLOW_CONN_CAROL_DEFAULT"])
    assert conn["extra"]["scheme"] == "https"
    assert conn["extra"]["verify"] == carol_sandbox_tls.ca_bundle
    assert carol_sandbox_tls.url.startswith("https://")
    token = carol_sandbox_tls.issue_token()["access_token"]
    for host in ("127.0.0.1", "localhost"):
        response = requests.get(
            f"https://{host}:{carol_sandbox_tls.port}/api/v1/tenants/current",
            timeout=10,
            headers={"Authorization": token},
            verify=carol_sandbox_tls.ca_bundle,
        )
        assert response.json()["mdmName"] == carol_sandbox_tls.tenant
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{carol_sandbox_tls.url}/api/v1/tenants/current", timeout=10)
    cert_path = os.path.join(os.path.dirname(carol_sandbox_tls.ca_bundle), "server.pem")
    with open(cert_path, "rb") as handle:
        cert = x509.load_pem_x509_certificate(handle.read())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(sans.get_values_for_type(x509.DNSName)) == {"localhost"}
    assert {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}


def test_sigterm_stops_the_cli_cleanly_with_exit_0_and_new_credentials_each_start(tmp_path, carol_sandbox):
    process, info = start_sandbox(tmp_path)
    assert info["password"] != carol_sandbox.password
    assert info["tenant_id"] != carol_sandbox.tenant_id
    assert requests.get(f"{info['url']}/__sandbox/info", timeout=10).json() == info
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0
    assert stop_sandbox(process) == 0
