"""CarolHook against the Carol sandbox over real HTTP: auth modes, refresh, 401 recovery, retries."""

from __future__ import annotations

import dataclasses
import json
import logging
import time

import pytest

from airflow_provider_carol.exceptions import (
    CarolApiError,
    CarolAuthError,
    CarolConnectionError,
    CarolNotFound,
)
from airflow_provider_carol.hooks.carol import CarolHook

TOKEN_PATH = "/api/v5/oauth2/token"


@pytest.fixture
def use_conn(carol_sandbox, monkeypatch):
    """Install ``AIRFLOW_CONN_<ID>`` for the sandbox with the given auth type and extra overrides."""

    def install(conn_id: str = "carol_test", auth_type: str = "password", **extra) -> str:
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{conn_id.upper()}", carol_sandbox.connection_json(auth_type=auth_type, **extra)
        )
        return conn_id

    return install


def api_requests(sandbox) -> list[tuple[str, str, int]]:
    return [(r["method"], r["path"], r["status"]) for r in sandbox.requests()]


def test_password_auth_logs_in_once_and_reads_the_current_tenant(carol_sandbox, use_conn):
    hook = CarolHook(use_conn(auth_type="password"))
    context = hook.get_current()
    hook.get_current()
    assert (context.tenant_name, context.tenant_id) == (carol_sandbox.tenant, carol_sandbox.tenant_id)
    assert (context.org_name, context.org_id) == (carol_sandbox.organization, carol_sandbox.org_id)
    assert context.org_level is False
    calls = api_requests(carol_sandbox)
    assert [c for c in calls if c[1] == TOKEN_PATH] == [("POST", TOKEN_PATH, 200)]
    assert len(calls) == 5


def test_token_auth_uses_the_given_token_without_logging_in(carol_sandbox, use_conn):
    token = carol_sandbox.issue_token()["access_token"]
    conn_id = use_conn(auth_type="token")
    assert CarolHook(conn_id).get_current().tenant_id == carol_sandbox.tenant_id
    assert all(path != TOKEN_PATH for _, path, _ in api_requests(carol_sandbox))
    assert token  # the fixture issued the token the connection carries


def test_api_key_auth_sends_the_key_pair(carol_sandbox, use_conn):
    hook = CarolHook(use_conn(auth_type="api_key"))
    assert hook.get_current().tenant_name == carol_sandbox.tenant
    assert all(path != TOKEN_PATH for _, path, _ in api_requests(carol_sandbox))


def test_org_level_login_reports_organization_level(carol_sandbox, use_conn):
    hook = CarolHook(use_conn(auth_type="password", org_level=True, tenant=None))
    context = hook.get_current()
    assert context.org_level is True and context.org_id == carol_sandbox.org_id


def test_mfa_challenge_fails_fast_and_points_to_api_key_or_token(carol_sandbox, monkeypatch):
    carol_sandbox.add_user("mfa.user@example.com", "mfa-Passw0rd!", mfa=True)
    conn = json.loads(carol_sandbox.connection_json(auth_type="password"))
    conn["login"], conn["password"] = "mfa.user@example.com", "mfa-Passw0rd!"
    monkeypatch.setenv("AIRFLOW_CONN_CAROL_MFA", json.dumps(conn))
    monkeypatch.setattr("builtins.input", lambda *_: pytest.fail("the hook must never prompt"))
    with pytest.raises(CarolAuthError) as excinfo:
        CarolHook("carol_mfa").get_current()
    assert "MFA" in str(excinfo.value) and "api_key" in str(excinfo.value) and "token" in str(excinfo.value)
    assert "mfa-Passw0rd!" not in str(excinfo.value)


def test_wrong_password_is_an_auth_error_naming_the_field(carol_sandbox, monkeypatch):
    conn = json.loads(carol_sandbox.connection_json(auth_type="password"))
    conn["password"] = "definitely-wrong-password"
    monkeypatch.setenv("AIRFLOW_CONN_CAROL_BAD", json.dumps(conn))
    hook = CarolHook("carol_bad")
    with pytest.raises(CarolAuthError) as excinfo:
        hook.get_current()
    assert excinfo.value.status_code == 401
    assert "userLogin/password" in str(excinfo.value)
    assert "definitely-wrong-password" not in str(excinfo.value)
    ok, message = hook.test_connection()
    assert ok is False and "401" in message


def test_refresh_grant_runs_before_expiry_without_a_401(carol_sandbox, use_conn):
    carol_sandbox.configure(token_ttl=3600)
    hook = CarolHook(use_conn(auth_type="password"))
    hook.get_current()
    token = hook._tokens.token
    assert token.renew_at is not None and not token.needs_renewal()
    # The refresh lead (60 s before an hour's expiry) has come: move the token's renewal time to now
    # instead of sleeping 59 minutes. Carol still accepts the token, so no 401 may be seen.
    hook._tokens.token = dataclasses.replace(token, renew_at=time.monotonic())
    hook.get_current()
    calls = api_requests(carol_sandbox)
    assert [c for c in calls if c[1] == TOKEN_PATH] == [("POST", TOKEN_PATH, 200)] * 2
    assert all(status == 200 for _, _, status in calls)


def test_server_side_expiry_triggers_one_reauthentication_and_a_resend(carol_sandbox, use_conn):
    hook = CarolHook(use_conn(auth_type="password"))
    hook.get_current()
    before = len(carol_sandbox.requests())
    carol_sandbox.expire_tokens()
    assert hook.call_api("v1/organizations/current")["mdmId"] == carol_sandbox.org_id
    calls = api_requests(carol_sandbox)[before:]
    assert calls == [
        ("GET", "/api/v1/organizations/current", 401),
        ("POST", TOKEN_PATH, 200),
        ("GET", "/api/v1/organizations/current", 200),
    ]


def test_a_second_401_after_reauthentication_is_final(carol_sandbox, use_conn):
    hook = CarolHook(use_conn(auth_type="password"))
    hook.get_current()
    before = len(carol_sandbox.requests())
    carol_sandbox.add_fault("/api/v1/tenants/current", status=401, times=5)
    with pytest.raises(CarolAuthError):
        hook.call_api("v1/tenants/current")
    calls = api_requests(carol_sandbox)[before:]
    assert [c[1] for c in calls] == ["/api/v1/tenants/current", TOKEN_PATH, "/api/v1/tenants/current"]


def test_expired_token_without_refresh_token_says_how_to_fix_it(carol_sandbox, use_conn):
    carol_sandbox.issue_token()
    hook = CarolHook(use_conn(auth_type="token"))
    hook.get_current()
    carol_sandbox.expire_tokens()
    with pytest.raises(CarolAuthError) as excinfo:
        hook.get_current()
    assert "no refresh token" in str(excinfo.value)


def test_token_mode_refreshes_with_a_configured_refresh_token(carol_sandbox, monkeypatch):
    issued = carol_sandbox.issue_token()
    conn = json.loads(carol_sandbox.connection_json(auth_type="token"))
    conn["password"] = issued["access_token"]
    conn["extra"]["refresh_token"] = issued["refresh_token"]
    monkeypatch.setenv("AIRFLOW_CONN_CAROL_TOK", json.dumps(conn))
    hook = CarolHook("carol_tok")
    hook.get_current()
    carol_sandbox.expire_tokens()
    assert hook.get_current().tenant_id == carol_sandbox.tenant_id


def test_revoked_api_key_fails_once_without_retry_storm(carol_sandbox, use_conn):
    hook = CarolHook(use_conn(auth_type="api_key"))
    carol_sandbox.revoke_api_key()
    with pytest.raises(CarolAuthError) as excinfo:
        hook.call_api("v1/tenants/current")
    assert excinfo.value.status_code == 401
    assert len(carol_sandbox.requests()) == 1


def test_get_is_retried_on_503_and_429_honouring_retry_after(carol_sandbox, use_conn):
    hook = CarolHook(use_conn(auth_type="api_key"), retry_delay=0.01)
    carol_sandbox.add_fault("/api/v1/tenants/current", status=503, times=2)
    carol_sandbox.add_fault("/api/v1/organizations/current", status=429, times=1, retry_after=1)
    started = time.monotonic()
    assert hook.get_current().org_id == carol_sandbox.org_id
    assert time.monotonic() - started >= 1.0
    statuses = [c[2] for c in api_requests(carol_sandbox)]
    assert statuses == [503, 503, 200, 429, 200]


def test_retry_after_is_capped(carol_sandbox, use_conn, capsys):
    hook = CarolHook(use_conn(auth_type="api_key"), max_retry_wait=0.2)
    carol_sandbox.add_fault("/api/v1/tenants/current", status=429, times=1, retry_after=3600)
    hook.call_api("v1/tenants/current")
    assert "HTTP 429; retry 1 of 5 in 0.2 s" in capsys.readouterr().out  # the wait it chose, not 3600 s


def test_retries_give_up_with_carols_error_text(carol_sandbox, use_conn):
    hook = CarolHook(use_conn(auth_type="api_key"), retry_limit=2, retry_delay=0.01)
    carol_sandbox.add_fault(
        "/api/v1/tenants/current",
        status=502,
        times=10,
        body={"errorCode": 502, "errorMessage": "upstream is napping"},
    )
    with pytest.raises(CarolApiError) as excinfo:
        hook.call_api("v1/tenants/current")
    assert excinfo.value.status_code == 502
    assert "upstream is napping" in str(excinfo.value) and "/api/v1/tenants/current" in str(excinfo.value)
    assert len(carol_sandbox.requests()) == 3


def test_post_is_not_retried_unless_marked_idempotent(carol_sandbox, use_conn):
    hook = CarolHook(use_conn(auth_type="api_key"), retry_delay=0.01)
    body = {"mdmName": "retry_probe", "mdmGroupName": "Others", "mdmLabel": {"en-US": "retry_probe"}}
    carol_sandbox.add_fault("/api/v1/connectors", method="POST", status=503, times=1)
    with pytest.raises(CarolApiError) as excinfo:
        hook.call_api("v1/connectors", json=body)
    assert excinfo.value.status_code == 503
    assert len(carol_sandbox.requests()) == 1
    carol_sandbox.add_fault("/api/v1/connectors", method="POST", status=503, times=1)
    created = hook.call_api("v1/connectors", json=body, idempotent=True)
    assert created["mdmName"] == "retry_probe"


def test_dropped_connection_after_processing_is_not_resent_for_a_post(carol_sandbox, use_conn):
    hook = CarolHook(use_conn(auth_type="api_key"), retry_delay=0.01)
    carol_sandbox.add_fault("/api/v1/connectors", method="POST", drop="after", times=1)
    body = {"mdmName": "dropped_probe", "mdmGroupName": "Others", "mdmLabel": {"en-US": "x"}}
    with pytest.raises(CarolConnectionError):
        hook.call_api("v1/connectors", json=body)
    # the server created it once; the hook did not create a duplicate
    assert hook.call_api("v1/connectors/name/dropped_probe")["mdmName"] == "dropped_probe"
    posts = [c for c in api_requests(carol_sandbox) if c[0] == "POST"]
    assert len(posts) == 1


def test_dropped_connection_is_retried_for_a_get(carol_sandbox, use_conn):
    hook = CarolHook(use_conn(auth_type="api_key"), retry_delay=0.01)
    carol_sandbox.add_fault("/api/v1/tenants/current", drop="before", times=1)
    assert hook.call_api("v1/tenants/current")["mdmId"] == carol_sandbox.tenant_id


def test_read_timeout_is_retried_for_a_get(carol_sandbox, use_conn):
    hook = CarolHook(use_conn(auth_type="api_key", timeout=0.5), retry_delay=0.01)
    carol_sandbox.add_fault("/api/v1/tenants/current", latency=2, times=1)
    assert hook.call_api("v1/tenants/current")["mdmId"] == carol_sandbox.tenant_id


def test_unreachable_server_is_a_connection_error(carol_sandbox, monkeypatch):
    conn = json.loads(carol_sandbox.connection_json(auth_type="api_key"))
    conn["port"] = 1  # nothing listens there
    monkeypatch.setenv("AIRFLOW_CONN_CAROL_DOWN", json.dumps(conn))
    with pytest.raises(CarolConnectionError) as excinfo:
        CarolHook("carol_down", retry_limit=1, retry_delay=0.01).call_api("v1/tenants/current")
    assert "127.0.0.1:1" in str(excinfo.value)


def test_404_is_not_found_with_carols_message(carol_sandbox, use_conn):
    hook = CarolHook(use_conn(auth_type="api_key"))
    with pytest.raises(CarolNotFound) as excinfo:
        hook.call_api("v1/connectors/name/no_such_connector")
    assert excinfo.value.status_code == 404 and "Not found" in str(excinfo.value)


def test_path_segments_are_encoded_never_traversed(carol_sandbox, use_conn):
    from airflow_provider_carol.hooks.core.endpoints import Endpoint

    hook = CarolHook(use_conn(auth_type="api_key"))
    hostile = "../a/b?c=#d&e%f"
    with pytest.raises(CarolNotFound):
        hook.call_api(Endpoint("GET", "v1/connectors/name/{name}").path(name=hostile))
    with pytest.raises(CarolNotFound):
        hook.call_api(Endpoint("GET", "v1/connectors/name/{name}").path(name=".."))
    logged = carol_sandbox.requests()
    # the server saw the literal names (decoded), nothing resolved away and nothing leaked into the query
    assert [c["path"] for c in logged] == ["/api/v1/connectors/name/" + hostile, "/api/v1/connectors/name/.."]
    assert [c["query"] for c in logged] == ["", ""]


def test_uri_connection_with_string_booleans_reaches_the_sandbox(carol_sandbox, monkeypatch):
    from urllib.parse import quote

    uri = (
        f"carol://{quote(carol_sandbox.user, safe='')}:{quote(carol_sandbox.password, safe='')}"
        f"@127.0.0.1:{carol_sandbox.port}/?auth_type=password&tenant={carol_sandbox.tenant}"
        f"&organization={carol_sandbox.organization}&org_level=false&verify=false&scheme=http"
    )
    monkeypatch.setenv("AIRFLOW_CONN_CAROL_URI", uri)
    context = CarolHook("carol_uri").get_current()
    assert context.org_level is False and context.tenant_name == carol_sandbox.tenant


def test_airflow_connection_test_path_uses_the_hook(carol_sandbox, monkeypatch):
    """The Test button: ``POST /connections/test`` runs the ORM ``Connection.test_connection`` on the API
    server with the connection exported as ``AIRFLOW_CONN_<id>`` (every 3.x line); 3.3 adds
    worker-dispatched tests through ``airflow.sdk.Connection``, which older task SDKs do not have
    (documented degradation: no ``enqueue-test`` before 3.3)."""
    from airflow.models import Connection as ServerConnection
    from airflow.providers.common.compat.sdk import Connection

    from airflow_provider_carol import compat

    paths: list[type] = [ServerConnection]
    if compat.AIRFLOW_V_3_3_PLUS:
        paths.append(Connection)
    elif compat.AIRFLOW_V_3_0_PLUS:  # on 2.11 the one Connection is the ORM model
        assert not hasattr(Connection, "test_connection")
    for cls in paths:
        conn = cls.from_json(carol_sandbox.connection_json(auth_type="api_key"), conn_id="carol_ui_test")
        if cls is ServerConnection:  # what the route does before calling test_connection()
            monkeypatch.setenv("AIRFLOW_CONN_CAROL_UI_TEST", conn.get_uri())
        ok, message = conn.test_connection()
        assert ok is True, (cls, message)
        assert carol_sandbox.organization in message


def test_empty_body_is_an_empty_dict_and_a_non_json_body_is_an_error():
    from airflow_provider_carol.hooks.core import errors as client

    assert client.parse_json_body(b"", "POST", "/api/x") == {}
    assert client.parse_json_body(b"  \n", "POST", "/api/x") == {}
    assert client.parse_json_body(b'{"a": 1}', "GET", "/api/x") == {"a": 1}
    with pytest.raises(CarolApiError) as excinfo:
        client.parse_json_body(b"<html>oops</html>", "GET", "/api/x")
    assert "GET /api/x" in str(excinfo.value) and "not JSON" in str(excinfo.value)


def test_nan_in_a_json_body_is_refused_before_sending(carol_sandbox, use_conn):
    from airflow_provider_carol.exceptions import CarolConfigError

    hook = CarolHook(use_conn(auth_type="api_key"))
    with pytest.raises(CarolConfigError):
        hook.call_api("v1/connectors", json={"mdmName": float("nan")})
    assert carol_sandbox.requests() == []


def test_secrets_never_reach_the_logs(carol_sandbox, use_conn, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    hook = CarolHook(use_conn(auth_type="password"), retry_delay=0.01)
    carol_sandbox.add_fault("/api/v1/tenants/current", status=503, times=1)
    hook.get_current()
    carol_sandbox.expire_tokens()
    hook.get_current()
    token = hook._tokens.token.access_token
    with pytest.raises(CarolAuthError):
        carol_sandbox.add_fault("/api/v1/tenants/current", status=401, times=5)
        hook.get_current()
    captured = capsys.readouterr()
    text = caplog.text + captured.out + captured.err  # self.log is structlog (stdout); libraries use stdlib
    assert "retry 1 of" in text  # the retry really was logged
    for secret in (carol_sandbox.password, token, hook._tokens.token.refresh_token):
        assert secret and secret not in text
    from airflow.providers.common.compat.sdk import redact

    assert redact(f"x {carol_sandbox.password} y") != f"x {carol_sandbox.password} y"
    assert token not in str(redact(f"Authorization: {token}"))


def test_tls_with_the_sandbox_ca_bundle(carol_sandbox_tls, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_CAROL_TLS", carol_sandbox_tls.connection_json(auth_type="api_key"))
    assert CarolHook("carol_tls").get_current().tenant_id == carol_sandbox_tls.tenant_id


def test_tls_without_the_ca_fails_with_a_clear_message(carol_sandbox_tls, monkeypatch):
    conn = json.loads(carol_sandbox_tls.connection_json(auth_type="api_key"))
    conn["extra"].pop("verify", None)  # default: verify against the system CAs
    monkeypatch.setenv("AIRFLOW_CONN_CAROL_TLS_BAD", json.dumps(conn))
    with pytest.raises(CarolConnectionError) as excinfo:
        CarolHook("carol_tls_bad", retry_limit=0).call_api("v1/tenants/current")
    assert "TLS verification failed" in str(excinfo.value) and "'verify'" in str(excinfo.value)


def test_test_connection_really_authenticates(carol_sandbox, use_conn):
    ok, message = CarolHook(use_conn(auth_type="password")).test_connection()
    assert ok is True and carol_sandbox.tenant in message
    assert any(path == TOKEN_PATH for _, path, _ in api_requests(carol_sandbox))


# ---------------------------------------------------------------------------------------------- fidelity
@pytest.mark.parametrize("shape", ["400", "401", "403", "404", "no_name"])
@pytest.mark.parametrize("auth_type", ["password", "token"])
def test_org_level_connection_passes_the_test_button_whatever_tenants_current_answers(
    carol_sandbox, monkeypatch, shape, auth_type
):
    """At organization level Carol has no current tenant and fails tenants/current (the status is not
    known: every candidate is served); pycarol reads it with errors="ignore" (carol.py L546, L580)."""
    carol_sandbox.set_shapes(tenant_current_org=shape)
    secret = {"password": carol_sandbox.password,
              "token": carol_sandbox.issue_token(org_level=True)["access_token"]}[auth_type]
    conn = json.loads(carol_sandbox.connection_json(auth_type, org_level=True, tenant=None))
    conn["password"] = secret
    monkeypatch.setenv("AIRFLOW_CONN_CAROL_ORG", json.dumps(conn))
    ok, message = CarolHook("carol_org").test_connection()
    assert ok, message
    assert message == (f"Connected at organization level of organization {carol_sandbox.organization!r} "
                       f"with auth_type {auth_type!r}.")
    context = CarolHook("carol_org").get_current()
    assert (context.org_level, context.tenant_id, context.org_id) == (True, None, carol_sandbox.org_id)


def test_tenant_level_connection_does_not_take_a_failing_tenants_current_for_org_level(
    carol_sandbox, use_conn
):
    carol_sandbox.add_fault("/api/v1/tenants/current", status=400, times=1)
    ok, message = CarolHook(use_conn(auth_type="password")).test_connection()
    assert ok is False and "HTTP 400" in message and "v1/tenants/current" in message


def test_org_level_connection_with_a_refused_token_still_fails_the_test_button(carol_sandbox, monkeypatch):
    """A 401 from tenants/current is "no tenant" at organization level, but the organization call that
    follows needs the same session: a bad token is reported, never taken for an org-level session."""
    carol_sandbox.set_shapes(tenant_current_org="401")
    conn = json.loads(carol_sandbox.connection_json("token", org_level=True, tenant=None))
    conn["password"] = "not-a-token"
    monkeypatch.setenv("AIRFLOW_CONN_CAROL_ORG_BAD", json.dumps(conn))
    ok, message = CarolHook("carol_org_bad").test_connection()
    assert ok is False and "rejected the access token" in message
    assert [(path, status) for _, path, status in api_requests(carol_sandbox)] == [
        ("/api/v1/tenants/current", 401),
        ("/api/v1/organizations/current", 401),
    ]


def test_password_grant_sends_pycarols_default_connector_when_the_connection_names_none(
    carol_sandbox, use_conn
):
    """Carol's auth docs list connectorId as required; pycarol sends f9953f... when none is given."""
    context = CarolHook(use_conn(auth_type="password", connector_id=None)).get_current()
    assert context.tenant_id == carol_sandbox.tenant_id


def test_org_level_login_refused_for_pycarols_connector_names_the_extra_to_set(carol_sandbox, use_conn):
    hook = CarolHook(use_conn(auth_type="password", org_level=True, tenant=None, connector_id=None))
    with pytest.raises(CarolAuthError) as failure:
        hook.get_current()
    message = str(failure.value)
    assert "Login to organization cannot be with this connectorId" in message
    assert "set extra 'connector_id'" in message and "f9953f6645f449baaccd16ab462f9b64" in message
    assert failure.value.possible_responsible_field == "connectorId"


def test_carol_error_bodies_keep_the_application_error_code(carol_sandbox, use_conn):
    body = {"applicationErrorCode": "APP-17", "errorCode": 400, "errorMessage": "bad thing",
            "possibleResponsibleField": "name"}
    carol_sandbox.add_fault("/api/v1/connectors/name/*", status=400, body=body, times=1)
    with pytest.raises(CarolApiError) as failure:
        CarolHook(use_conn(auth_type="api_key")).call_api("v1/connectors/name/x")
    assert failure.value.application_error_code == "APP-17"
    assert "(applicationErrorCode APP-17)" in str(failure.value)
