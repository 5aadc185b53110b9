"""Connection parsing: every field of the contract, both AIRFLOW_CONN_ forms, and clear errors."""

from __future__ import annotations

import json

import pytest
from airflow.providers.common.compat.sdk import BaseHook, Connection

from airflow_provider_carol.exceptions import CarolConfigError
from airflow_provider_carol.hooks.core.config import CarolConnectionConfig


def make(extra: dict | None = None, **fields) -> CarolConnectionConfig:
    base = {"conn_id": "c", "conn_type": "carol", "login": "u@x.com", "password": "s3cret-value"}
    base.update(fields)
    return CarolConnectionConfig.from_connection(Connection(**base, extra=json.dumps(extra or {})))


def test_host_is_derived_from_organization_then_tenant_like_the_reference_sdk():
    assert make({"auth_type": "password", "tenant": "t1"}).base_url == "https://t1.carol.ai:443"
    org = make({"auth_type": "password", "tenant": "t1", "organization": "acme", "environment": "karol.ai"})
    assert org.base_url == "https://acme.karol.ai:443"


def test_host_and_port_fields_override_the_derived_host():
    config = make(
        {"auth_type": "api_key", "tenant": "t", "connector_id": "c1", "scheme": "http"},
        host="127.0.0.1",
        port=8123,
    )
    assert config.base_url == "http://127.0.0.1:8123"
    pasted = make({"auth_type": "token", "tenant": "t"}, host="https://example.test")
    assert pasted.base_url == "https://example.test:443"


def test_secret_stays_out_of_repr():
    assert "s3cret-value" not in repr(make({"auth_type": "password", "tenant": "t"}))


@pytest.mark.parametrize(
    ("extra", "fields", "expected"),
    [
        ({}, {}, "extra 'auth_type' is required"),
        (
            {"auth_type": "oauth"},
            {},
            "extra 'auth_type' is 'oauth'; expected one of: password, token, api_key",
        ),
        ({"auth_type": "password", "tenant": "t"}, {"login": None}, "needs the user's e-mail"),
        ({"auth_type": "api_key", "tenant": "t"}, {}, "needs extra 'connector_id'"),
        ({"auth_type": "token"}, {}, "extra 'tenant' (the Carol environment name) is required"),
        (
            {"auth_type": "token", "tenant": "t"},
            {"password": None},
            "password field must hold a Carol access token",
        ),
        ({"auth_type": "token", "tenant": "t", "environment": "example.com"}, {}, "extra 'environment'"),
        ({"auth_type": "token", "tenant": "t", "scheme": "ftp"}, {}, "extra 'scheme' is 'ftp'"),
        ({"auth_type": "token", "tenant": "t", "timeout": "soon"}, {}, "extra 'timeout' must be a positive"),
        (
            {"auth_type": "token", "tenant": "t", "org_level": "maybe"},
            {},
            "extra 'org_level' must be true or false",
        ),
        (
            {"auth_type": "token", "tenant": "t", "verify": "/no/such/ca.pem"},
            {},
            "CA bundle '/no/such/ca.pem'",
        ),
        ({"auth_type": "token", "org_level": True}, {}, "set extra 'organization' or 'tenant'"),
    ],
)
def test_bad_configs_name_the_field_to_fix(extra, fields, expected):
    with pytest.raises(CarolConfigError) as excinfo:
        make(extra, **fields)
    assert expected in str(excinfo.value)
    assert "'c'" in str(excinfo.value)  # the connection id
    assert "s3cret-value" not in str(excinfo.value)


def test_org_level_needs_no_tenant():
    config = make({"auth_type": "password", "organization": "acme", "org_level": "true"})
    assert config.org_level is True and config.tenant is None


def test_uri_connection_with_string_booleans(monkeypatch):
    uri = (
        "carol://user%40x.com:pa%2Fss@127.0.0.1:9000/"
        "?auth_type=password&tenant=t1&org_level=false&verify=false&scheme=http&timeout=12.5"
    )
    monkeypatch.setenv("AIRFLOW_CONN_CAROL_URI", uri)
    config = CarolConnectionConfig.from_connection(BaseHook.get_connection("carol_uri"))
    assert (config.login, config.secret, config.tenant) == ("user@x.com", "pa/ss", "t1")
    assert config.org_level is False and config.verify is False and config.timeout == 12.5
    assert config.base_url == "http://127.0.0.1:9000"


def test_json_connection_with_typed_extras(monkeypatch, tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    conn = {
        "conn_type": "carol",
        "password": "k" * 32,
        "extra": {
            "auth_type": "api_key",
            "tenant": "t1",
            "organization": "acme",
            "connector_id": "c1",
            "app_name": "app",
            "org_level": False,
            "timeout": 5,
            "verify": str(ca),
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_CAROL_JSON", json.dumps(conn))
    config = CarolConnectionConfig.from_connection(BaseHook.get_connection("carol_json"))
    assert config.auth_type == "api_key" and config.connector_id == "c1" and config.app_name == "app"
    assert config.verify == str(ca) and config.timeout == 5.0
    assert config.base_url == "https://acme.carol.ai:443"


def test_prefixed_extras_from_older_forms_are_read():
    config = make({"extra__carol__auth_type": "token", "extra__carol__tenant": "t9"})
    assert (config.auth_type, config.tenant) == ("token", "t9")
