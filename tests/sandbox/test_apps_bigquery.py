"""Tenant apps, settings and process execution; the BigQuery temporary key and its token_uri."""

from __future__ import annotations

import datetime as dt
import time

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def _app(api, sandbox):
    return api.get(
        f"{sandbox.url}/api/v1/tenantApps/name/{sandbox.app_name}",
        params={"entitySpace": "PRODUCTION"},
        timeout=10,
    ).json()


def test_seeded_app_is_found_by_name_and_id(api, carol_sandbox):
    app = _app(api, carol_sandbox)
    assert app["mdmName"] == carol_sandbox.app_name
    assert len(app["mdmId"]) == len(app["mdmCarolAppId"]) == 32
    assert api.get(f"{carol_sandbox.url}/api/v1/tenantApps/{app['mdmId']}", timeout=10).json() == app
    missing = api.get(f"{carol_sandbox.url}/api/v1/tenantApps/name/nope", timeout=10)
    assert missing.status_code == 404


def test_settings_have_several_types_and_update_with_publish(api, carol_sandbox):
    app_id = _app(api, carol_sandbox)["mdmId"]
    url = f"{carol_sandbox.url}/api/v1/tenantApps/{app_id}/settings"
    settings = api.get(
        url, params={"entitySpace": "PRODUCTION", "checkAllSpaces": "False"}, timeout=10
    ).json()
    values = {item["mdmName"]: item["mdmParameterValue"] for item in settings["mdmTenantAppSettingValues"]}
    assert values == {
        "target_staging": "customers",
        "batch_size": 500,
        "threshold": 0.75,
        "enabled": True,
        "notes": None,
    }
    update = [
        {"mdmName": "batch_size", "mdmParameterValue": 1000},
        {"mdmName": "new", "mdmParameterValue": "x"},
    ]
    assert api.put(f"{url}/{settings['mdmId']}?publish=true", json=update, timeout=10).status_code == 200
    after = api.get(url, timeout=10).json()["mdmTenantAppSettingValues"]
    assert {i["mdmName"]: i["mdmParameterValue"] for i in after} == {**values, "batch_size": 1000, "new": "x"}
    assert api.put(f"{url}/{'0' * 32}?publish=true", json=update, timeout=10).status_code == 404


def test_executing_a_process_creates_a_task_that_completes_after_about_a_second(api, carol_sandbox):
    app_id = _app(api, carol_sandbox)["mdmId"]
    base = f"{carol_sandbox.url}/api/v1/tenantApps/{app_id}/aiprocesses"
    container = api.get(base, params={"entitySpace": "WORKING", "checkAllSpaces": "True"}, timeout=10).json()
    answer = api.post(f"{base}/{container['mdmId']}/execute/main_process", timeout=10).json()
    assert answer["success"] is True  # {"success": true, "data": <task>}, as real tenants answer
    task = answer["data"]
    assert task["mdmTaskStatus"] == "RUNNING"
    time.sleep(1.05)
    done = api.get(f"{carol_sandbox.url}/api/v1/tasks/{task['mdmId']}", timeout=10).json()
    assert done["mdmTaskStatus"] == "COMPLETED"
    unknown = api.post(f"{base}/{container['mdmId']}/execute/no_such_process", timeout=10)
    assert unknown.status_code == 404


def test_temporary_key_is_a_google_service_account_with_a_real_rsa_key(api, carol_sandbox):
    body = {"expirationTime": 2, "mdmOrgId": carol_sandbox.org_id, "mdmTenantId": carol_sandbox.tenant_id}
    before = dt.datetime.now(dt.timezone.utc)
    key = api.post(f"{carol_sandbox.url}/sql/v1/api/v1/create_temporary_key", json=body, timeout=30).json()
    assert key["type"] == "service_account"
    assert key["project_id"] == f"carol-{carol_sandbox.tenant_id[:20]}"
    assert key["client_email"].endswith(".iam.gserviceaccount.com")
    private = serialization.load_pem_private_key(key["private_key"].encode(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    assert private.key_size == 2048
    expires = dt.datetime.strptime(key["expiration_time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=dt.timezone.utc
    )
    assert dt.timedelta(hours=1, minutes=59) < expires - before < dt.timedelta(hours=2, minutes=1)
    assert key["token_uri"].startswith(carol_sandbox.url)
    grant = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": "a.b.c"}
    token = requests.post(key["token_uri"], data=grant, timeout=10).json()
    assert token["token_type"] == "Bearer"
    assert token["access_token"]
    assert token["expires_in"] > 0
    other = api.post(
        f"{carol_sandbox.url}/sql/v1/api/v1/create_temporary_key",
        json={**body, "mdmTenantId": "0" * 32},
        timeout=10,
    )
    assert other.status_code == 404
