"""Auth over real HTTP: password/MFA/refresh grants, API keys, tokens, expiry and 401 bodies."""

from __future__ import annotations

import time

import requests

from .conftest import password_login

TOKEN_FIELDS = {"access_token", "refresh_token", "timeIssuedInMillis", "expires_in"}


def _get(sandbox, path, **headers):
    return requests.get(f"{sandbox.url}{path}", headers=headers, timeout=10)


def test_password_grant_returns_all_token_fields_and_the_token_works_raw(carol_sandbox):
    response = password_login(carol_sandbox)
    body = response.json()
    assert response.status_code == 200
    assert set(body) >= TOKEN_FIELDS
    assert body["expires_in"] == 3600
    assert abs(body["timeIssuedInMillis"] - time.time() * 1000) < 5000
    tenant = _get(carol_sandbox, "/api/v1/tenants/current", Authorization=body["access_token"]).json()
    assert tenant == {
        **tenant,
        "mdmId": carol_sandbox.tenant_id,
        "mdmName": carol_sandbox.tenant,
        "mdmSubdomain": carol_sandbox.tenant,
    }


def test_bad_password_is_401_unauthorized_naming_userlogin_password(carol_sandbox):
    response = password_login(carol_sandbox, password="wrong")
    assert response.status_code == 401
    assert response.reason == "Unauthorized"
    assert response.json() == {
        "applicationErrorCode": None,
        "errorCode": 401,
        "errorMessage": "Invalid user login or password",
        "possibleResponsibleField": "userLogin/password",
    }


def test_missing_bearer_prefixed_and_unknown_tokens_are_rejected_with_carol_bodies(carol_sandbox):
    token = password_login(carol_sandbox).json()["access_token"]
    missing = _get(carol_sandbox, "/api/v1/tenants/current")
    bearer = _get(carol_sandbox, "/api/v1/tenants/current", Authorization=f"Bearer {token}")
    unknown = _get(carol_sandbox, "/api/v1/organizations/current", Authorization="nope")
    for response in (missing, bearer, unknown):
        assert response.status_code == 401
        assert response.reason == "Unauthorized"
        assert set(response.json()) == {
            "applicationErrorCode",
            "errorCode",
            "errorMessage",
            "possibleResponsibleField",
        }
    assert "Missing credentials" in missing.json()["errorMessage"]
    assert "without 'Bearer '" in bearer.json()["errorMessage"]


def test_every_carol_route_needs_credentials(carol_sandbox):
    paths = [
        ("GET", "/api/v1/connectors"),
        ("POST", "/api/v2/staging/intake/x?connectorId=c"),
        ("GET", "/api/v1/tasks/abc"),
        ("GET", "/api/v1/tenantApps/name/sandbox_app"),
        ("POST", "/sql/v1/api/v1/create_temporary_key"),
        ("POST", "/api/v3/staging/batch/b/summary"),
        ("GET", "/api/v2/users/current"),
        ("POST", "/api/v2/oauth2/switchOrgContext/x"),
    ]
    for method, path in paths:
        response = requests.request(method, f"{carol_sandbox.url}{path}", timeout=10)
        assert response.status_code == 401, path


def test_refresh_grant_rotates_the_refresh_token(carol_sandbox):
    first = password_login(carol_sandbox).json()
    form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    second = requests.post(f"{carol_sandbox.url}/api/v5/oauth2/token", data=form, timeout=10)
    replay = requests.post(f"{carol_sandbox.url}/api/v5/oauth2/token", data=form, timeout=10)
    assert second.status_code == 200
    assert set(second.json()) >= TOKEN_FIELDS
    assert second.json()["refresh_token"] != first["refresh_token"]
    assert replay.status_code == 401
    assert (
        _get(
            carol_sandbox, "/api/v1/tenants/current", Authorization=second.json()["access_token"]
        ).status_code
        == 200
    )


def test_tokens_expire_server_side_after_the_configured_ttl(carol_sandbox):
    carol_sandbox.configure(token_ttl=1)
    body = password_login(carol_sandbox).json()
    assert body["expires_in"] == 1
    assert (
        _get(carol_sandbox, "/api/v1/tenants/current", Authorization=body["access_token"]).status_code == 200
    )
    time.sleep(1.1)
    expired = _get(carol_sandbox, "/api/v1/tenants/current", Authorization=body["access_token"])
    assert expired.status_code == 401
    assert "expired" in expired.json()["errorMessage"]


def test_expire_tokens_fault_kills_access_tokens_but_refresh_still_works(carol_sandbox):
    body = password_login(carol_sandbox).json()
    assert carol_sandbox.expire_tokens() >= 1
    assert (
        _get(carol_sandbox, "/api/v1/tenants/current", Authorization=body["access_token"]).status_code == 401
    )
    refreshed = requests.post(
        f"{carol_sandbox.url}/api/v5/oauth2/token",
        timeout=10,
        data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]},
    )
    assert (
        _get(
            carol_sandbox, "/api/v1/tenants/current", Authorization=refreshed.json()["access_token"]
        ).status_code
        == 200
    )


def test_mfa_user_gets_mfa_token_then_a_token_response_for_the_right_code(carol_sandbox):
    carol_sandbox.add_user("mfa@example.com", "s3cret", mfa=True)
    first = password_login(carol_sandbox, login="mfa@example.com", password="s3cret").json()
    assert set(first) == {"mfa_token"}
    mfa_url = f"{carol_sandbox.url}/api/v5/oauth2/token/mfa/authenticate"
    wrong = requests.post(
        mfa_url, data={"mfaCode": "000000"}, headers={"Authorization": first["mfa_token"]}, timeout=10
    )
    right = requests.post(
        mfa_url, data={"mfaCode": "123456"}, headers={"Authorization": first["mfa_token"]}, timeout=10
    )
    assert (wrong.status_code, wrong.json()["possibleResponsibleField"]) == (401, "mfaCode")
    assert right.status_code == 200
    assert set(right.json()) >= TOKEN_FIELDS
    user = _get(carol_sandbox, "/api/v2/users/current", Authorization=right.json()["access_token"]).json()
    assert user["mdmUserLogin"] == "mfa@example.com"


def test_api_key_headers_authenticate_until_the_key_is_revoked(carol_sandbox):
    headers = {"x-auth-key": carol_sandbox.api_key, "x-auth-connectorid": carol_sandbox.connector_id}
    assert (
        _get(carol_sandbox, "/api/v1/tenants/current", **headers).json()["mdmId"] == carol_sandbox.tenant_id
    )
    wrong_connector = _get(carol_sandbox, "/api/v1/tenants/current", **{**headers, "x-auth-connectorid": "x"})
    assert wrong_connector.status_code == 401
    carol_sandbox.revoke_api_key()
    assert _get(carol_sandbox, "/api/v1/tenants/current", **headers).status_code == 401
    carol_sandbox.reset()
    assert _get(carol_sandbox, "/api/v1/tenants/current", **headers).status_code == 200


def test_token_validation_endpoints_answer_token_responses(carol_sandbox):
    token = carol_sandbox.issue_token()["access_token"]
    for version in ("v2", "v5"):
        valid = requests.get(f"{carol_sandbox.url}/api/{version}/oauth2/token/{token}", timeout=10)
        invalid = requests.get(f"{carol_sandbox.url}/api/{version}/oauth2/token/nope", timeout=10)
        assert valid.json()["access_token"] == token
        assert set(valid.json()) >= TOKEN_FIELDS
        assert invalid.status_code == 401
        assert "errorCode" in invalid.json()


def test_org_level_login_has_no_current_tenant_and_cannot_read_tenant_data(carol_sandbox):
    token = password_login(carol_sandbox, tenant=False).json()["access_token"]
    tenant = _get(carol_sandbox, "/api/v1/tenants/current", Authorization=token)
    org = _get(carol_sandbox, "/api/v1/organizations/current", Authorization=token).json()
    assert tenant.status_code == 400  # pycarol reads it with errors="ignore": a JSON error body, no mdmName
    assert "mdmName" not in tenant.json() and tenant.json()["errorCode"] == 400
    assert (org["mdmId"], org["mdmName"]) == (carol_sandbox.org_id, carol_sandbox.organization)
    assert _get(carol_sandbox, "/api/v2/orgUsers/current", Authorization=token).status_code == 200
    assert _get(carol_sandbox, "/api/v1/connectors", Authorization=token).status_code == 403


def test_switch_context_returns_the_single_tenant_and_org(carol_sandbox):
    token = carol_sandbox.issue_token(org_level=True)["access_token"]
    base = f"{carol_sandbox.url}/api/v2/oauth2"
    to_tenant = requests.post(
        f"{base}/switchTenantContext/{carol_sandbox.tenant_id}", headers={"Authorization": token}, timeout=10
    ).json()
    assert (
        _get(carol_sandbox, "/api/v1/tenants/current", Authorization=to_tenant["access_token"]).json()[
            "mdmName"
        ]
        == carol_sandbox.tenant
    )
    other = requests.post(
        f"{base}/switchTenantContext/{'0' * 32}", headers={"Authorization": token}, timeout=10
    )
    assert other.status_code == 404
    with_key = requests.post(
        f"{base}/switchTenantContextWithApiKey/{carol_sandbox.tenant_id}",
        timeout=10,
        headers={"x-auth-key": carol_sandbox.api_key, "x-auth-connectorid": carol_sandbox.connector_id},
    ).json()
    assert with_key == {"apiKey": carol_sandbox.api_key, "connectorId": carol_sandbox.connector_id}


def test_domain_lookups_work_without_a_session_and_404_for_other_names(carol_sandbox):
    tenant = _get(carol_sandbox, f"/api/v2/tenants/domain/{carol_sandbox.tenant}").json()
    org = _get(carol_sandbox, f"/api/v1/organizations/domain/{carol_sandbox.organization}").json()
    assert (tenant["mdmId"], org["mdmId"]) == (carol_sandbox.tenant_id, carol_sandbox.org_id)
    missing = _get(carol_sandbox, "/api/v2/tenants/domain/other")
    assert missing.status_code == 404
    assert "Not found" in missing.json()["errorMessage"]


def test_token_endpoint_rejects_json_bodies_and_unknown_grants(carol_sandbox):
    as_json = requests.post(
        f"{carol_sandbox.url}/api/v5/oauth2/token",
        timeout=10,
        json={"username": carol_sandbox.user, "grant_type": "password"},
    )
    unknown = requests.post(
        f"{carol_sandbox.url}/api/v5/oauth2/token", data={"grant_type": "magic"}, timeout=10
    )
    assert (as_json.status_code, unknown.status_code) == (400, 400)
    assert "form body" in as_json.json()["errorMessage"]


def test_password_grant_requires_a_connector_id(carol_sandbox):
    """Carol's auth docs list connectorId as required; pycarol always sends one."""
    missing = password_login(carol_sandbox, connectorId="")
    assert missing.status_code == 400
    assert missing.json()["possibleResponsibleField"] == "connectorId"


def test_org_level_login_with_pycarols_default_connector_is_refused_as_carol_refuses_it(carol_sandbox):
    """pyCarol PR #362 quotes Carol's answer to an org-level login with pycarol's connector."""
    default = "f9953f6645f449baaccd16ab462f9b64"
    refused = password_login(carol_sandbox, tenant=False, connectorId=default)
    assert refused.status_code == 400
    assert refused.json() == {
        "applicationErrorCode": None,
        "errorCode": 400,
        "errorMessage": f"Login to organization cannot be with this connectorId {default}",
        "possibleResponsibleField": "connectorId",
    }
    assert password_login(carol_sandbox, tenant=True, connectorId=default).status_code == 200
    assert password_login(carol_sandbox, tenant=False).status_code == 200  # the tenant's own connector
