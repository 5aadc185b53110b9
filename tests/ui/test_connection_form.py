"""The Carol connection form in a real browser: Airflow's api-server + Debian's Chromium via Playwright.

One api-server start for the module (tests/ui/airflow_server.py). The test logs in, opens "Add
Connection", picks "TOTVS Carol", checks every field of the connection contract (labels, help texts,
defaults, enum options, hidden ``schema``, secret inputs), fills it in for the running sandbox, saves,
checks what Airflow stored, presses the row's Test button and sees the hook's success message, then
makes the sandbox refuse the login and sees the failure. It writes the screenshots docs/connection.md
shows (``CAROL_UI_SCREENSHOT_DIR`` redirects them; default ``docs/img``).

Chromium and Playwright come from scripts/bootstrap-browser.sh; a missing one is a failure, not a skip.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Locator, Page, expect

from airflow_provider_carol.get_provider_info import CONN_FIELDS, UI_FIELD_BEHAVIOUR
from airflow_provider_carol.sandbox.control import Sandbox

from .airflow_server import ApiServer, start_api_server
from .browser import chromium, fresh_page, screenshot_dir

CONN_ID = "carol_ui"
STANDARD_FIELDS = ("host", "login", "password", "port")
TIMEOUT_MS = 30_000
# Generous waits: the api-server and Chromium share 2 cores with the rest of the suite.
expect.set_options(timeout=15_000)


@pytest.fixture(scope="module")
def airflow_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """One api-server on 127.0.0.1 for the module, stopped (whole process group) even on failure."""
    server = start_api_server(tmp_path_factory.mktemp("airflow-ui-home"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium driven by Playwright; never a downloaded browser."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    # Tall enough for the whole dialog with its extras open (element screenshots cannot scroll it).
    with fresh_page(browser, 1280, 2200, TIMEOUT_MS) as fresh:
        yield fresh


def field_group(page: Page, name: str) -> Locator:
    """The form row (label + input + help text) holding the input named ``name``."""
    return page.locator('div[data-part="root"][role="group"]').filter(has=page.locator(f'[name="{name}"]'))


def label_of(group: Locator) -> str:
    return group.locator('label[data-part="label"]').first.inner_text().strip()


def enum_options(page: Page, group: Locator, current: str) -> list[str]:
    """Open a react-select dropdown, read its options, close it by picking ``current`` again.

    (Escape would close the whole dialog.)
    """
    group.get_by_role("combobox").click()
    options = page.get_by_role("option")
    expect(options.first).to_be_visible()
    texts = [text.strip() for text in options.all_inner_texts()]
    page.get_by_role("option", name=current, exact=True).click()
    expect(options).to_have_count(0)
    return texts


def choose(page: Page, name: str, value: str) -> None:
    field_group(page, name).get_by_role("combobox").click()
    page.get_by_role("option", name=value, exact=True).click()
    expect(page.locator(f'input[name="{name}"]')).to_have_value(value)


def log_in(page: Page, server: ApiServer) -> None:
    page.goto(f"{server.url}/auth/login?next=/connections")
    page.fill("input[name=username]", server.username)
    page.fill("input[name=password]", server.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/connections**")


def check_standard_fields(page: Page) -> None:
    """host/login/password/port relabelled with their placeholders; schema hidden; password masked."""
    placeholders = UI_FIELD_BEHAVIOUR["placeholders"]
    for name in STANDARD_FIELDS:
        group = field_group(page, name)
        expect(group).to_be_visible()
        assert label_of(group) == UI_FIELD_BEHAVIOUR["relabeling"][name], name
        if name in placeholders:
            expect(page.locator(f'input[name="{name}"]')).to_have_attribute("placeholder", placeholders[name])
    assert "schema" in UI_FIELD_BEHAVIOUR["hidden-fields"]
    expect(page.locator('[name="schema"]')).to_have_count(0)
    expect(page.locator('input[name="password"]')).to_have_attribute("type", "password")


def check_extra_fields(page: Page) -> None:
    """Every conn-field: its label, help text, default and (for enums) exactly its options."""
    for name, spec in CONN_FIELDS.items():
        element = f"element_{name}"
        group = field_group(page, element)
        expect(group).to_be_visible()
        assert label_of(group) == spec["label"], name
        expect(group.locator('[data-part="helper-text"]')).to_have_text(spec["description"])
        schema = spec["schema"]
        value = page.locator(f'input[name="{element}"]')
        if "boolean" in schema["type"]:
            assert value.is_checked() is bool(schema.get("default")), name
        elif "default" in schema:
            expect(value).to_have_value(str(schema["default"]))
        if "enum" in schema:
            assert sorted(enum_options(page, group, str(schema["default"]))) == sorted(schema["enum"]), name
        if schema.get("format") == "password":
            expect(value).to_have_attribute("type", "password")


def fill_for_sandbox(page: Page, sandbox: Sandbox) -> dict[str, Any]:
    """Fill the extras for the sandbox (password auth over plain HTTP); return what Airflow should store."""
    choose(page, "element_auth_type", "password")
    page.fill('input[name="element_tenant"]', sandbox.tenant)
    page.fill('input[name="element_organization"]', sandbox.organization)
    page.fill('input[name="element_connector_id"]', sandbox.connector_id)
    page.fill('input[name="element_app_name"]', sandbox.app_name)
    choose(page, "element_scheme", "http")
    return {"auth_type": "password", "tenant": sandbox.tenant, "organization": sandbox.organization,
            "environment": "carol.ai", "connector_id": sandbox.connector_id, "app_name": sandbox.app_name,
            "org_level": False, "timeout": 60, "verify": "true", "scheme": "http",
            # the form stores an empty optional field as null
            "bigquery_endpoint": None, "bigquery_storage_endpoint": None, "refresh_token": None}


def stored_connection(server: ApiServer, conn_id: str) -> dict[str, Any]:
    """The connection as the REST API returns it (a JWT from ``/auth/token``, like any API client)."""
    token = requests.post(f"{server.url}/auth/token", timeout=30,
                          json={"username": server.username, "password": server.password})
    token.raise_for_status()
    answer = requests.get(f"{server.url}/api/v2/connections/{conn_id}", timeout=30,
                          headers={"Authorization": f"Bearer {token.json()['access_token']}"})
    answer.raise_for_status()
    return answer.json()


def press_test(page: Page) -> dict[str, Any]:
    """Press the row's Test button; return the api-server's answer to the test request."""
    row = page.get_by_role("row").filter(has_text=CONN_ID)
    with page.expect_response("**/api/v2/connections/test") as response:
        row.get_by_role("button", name="Test Connection").click()
    return response.value.json()


def test_connection_form_fields_save_and_test(airflow_ui: ApiServer, page: Page,
                                              carol_sandbox: Sandbox) -> None:
    images = screenshot_dir()
    log_in(page, airflow_ui)
    page.get_by_role("button", name="Add Connection").click()
    page.get_by_label("Connection ID").fill(CONN_ID)
    conn_type = page.get_by_role("combobox", name="Connection Type")
    conn_type.fill("TOTVS Carol")
    page.get_by_role("option", name="TOTVS Carol", exact=True).click()

    # Standard fields (the accordion opens one section at a time): check, then fill for the sandbox.
    check_standard_fields(page)
    page.fill('input[name="host"]', "127.0.0.1")
    # Airflow 3.3.2's row Test button posts port 0 for an empty port and the API refuses it: set it.
    page.fill('input[name="port"]', str(carol_sandbox.port))
    page.fill('input[name="login"]', carol_sandbox.user)
    page.fill('input[name="password"]', carol_sandbox.password)

    page.get_by_role("button", name="Extra Fields", exact=True).click()
    check_extra_fields(page)
    expected_extra = fill_for_sandbox(page, carol_sandbox)
    dialog = page.get_by_role("dialog")
    dialog.screenshot(path=str(images / "connection-form.png"), animations="disabled")
    page.get_by_role("button", name="Standard Fields", exact=True).click()
    expect(page.locator('input[name="host"]')).to_be_visible()
    dialog.screenshot(path=str(images / "connection-form-standard.png"), animations="disabled")

    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Connection has been successfully created.")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text=CONN_ID)).to_be_visible()

    page.set_viewport_size({"width": 1280, "height": 600})
    stored = stored_connection(airflow_ui, CONN_ID)
    assert (stored["conn_type"], stored["host"], stored["port"], stored["login"]) == (
        "carol", "127.0.0.1", carol_sandbox.port, carol_sandbox.user)
    assert json.loads(stored["extra"]) == expected_extra

    # Let the "created" toast go so the screenshot shows only the test result.
    expect(page.get_by_text("Connection has been successfully created.")).to_be_hidden(timeout=30_000)
    result = press_test(page)
    expected = (f"Connected to tenant '{carol_sandbox.tenant}' of organization "
                f"'{carol_sandbox.organization}' with auth_type 'password'.")
    assert result == {"status": True, "message": expected}
    toast = page.locator('[data-scope="toast"][data-part="root"]').filter(
        has_text="Test Connection Successful")
    expect(toast).to_be_visible()
    expect(toast).to_contain_text(expected)
    page.mouse.move(640, 400)  # no hover tooltip in the picture
    page.screenshot(path=str(images / "connection-test-ok.png"), animations="disabled")
    # The hook really logged in to the sandbox and read the tenant (the api-server ran the test).
    calls = {(call["method"], call["path"], call["status"]) for call in carol_sandbox.requests()}
    assert ("POST", "/api/v5/oauth2/token", 200) in calls
    assert ("GET", "/api/v1/tenants/current", 200) in calls

    # A refused login shows as a failed test with the hook's message, not as a crash.
    carol_sandbox.add_fault("/api/v5/oauth2/token", status=401, times=5)
    failed = press_test(page)
    assert failed["status"] is False
    assert "401" in failed["message"]
    assert carol_sandbox.password not in failed["message"]
    failure_toast = page.locator('[data-scope="toast"][data-part="root"]').filter(
        has_text="Test Connection Failed")
    expect(failure_toast).to_be_visible()
