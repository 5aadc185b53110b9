"""The Airflow UI of the running deployment, in Debian's Chromium via Playwright.

``tests/deployment/dags/deploy_ui.py`` runs a deferrable ``CarolTaskSensor`` on a Carol task the test
holds RUNNING, then ``report``, whose log lines go to that Carol task through the deployment's remote
logging (``CarolRemoteLogIO``, set in ``services.SHARED_ENV``). In the browser:

* while the sensor is deferred, its task instance's Details tab shows the "Carol task" extra link with
  the Carol UI URL of the task it waits on; the page is rendered while the sandbox refuses every Carol
  request but the trigger's polls, and the request log shows nobody else even tried: rendering the
  link needs no Carol call;
* once the run is done, ``report``'s log view shows the lines it logged, with their levels;
* the Carol task's log (the sandbox's admin API) has every line of ``report``'s Airflow log, in order,
  each once: nothing lost when the task process and its supervisor exit.

Screenshots go to docs/img (``CAROL_UI_SCREENSHOT_DIR`` redirects them), shown in docs/links.md and
docs/logging.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, Expect, Page

from tests.deployment.harness import Deployment, wait_for
from tests.deployment.services import ADMIN_USER
from tests.deployment.test_events import POLLS as WATCHER_POLL
from tests.deployment.test_events import watcher_trigger
from tests.deployment.test_faults import clear_faults, requests_to
from tests.ui.browser import chromium, fresh_page, screenshot_dir

pytestmark = pytest.mark.deployment
DAG_ID = "deploy_ui"
LINK_NAME = "Carol task"
#: What ``report`` logs (deploy_ui.py), as the UI shows the level and as Carol stores it.
REPORT_LINES = (
    ("INFO", "INFO", "Carol task {held} ended COMPLETED"),
    ("WARNING", "WARN", "UI check: this warning is in the Airflow log and in the Carol task log"),
    ("INFO", "INFO", "UI check: report done"),
)
#: The group the api-server puts in front of a served log (which files it read), not a task line.
SOURCE_GROUP = "::group::Log message source details"
# The deployment and Chromium share 2 cores with other jobs: generous waits, never a measurement.
TIMEOUT_MS = 60_000
#: This module's own assertions (the global ``expect`` is tests/ui's, with its own timeout).
expect = Expect()
expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium for the module (tests/ui/browser.py)."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context per test (no login carried over)."""
    with fresh_page(browser, 1400, 900, TIMEOUT_MS) as fresh:
        yield fresh


@pytest.fixture(scope="module")
def ui_run(deployment: Deployment) -> Iterator[dict[str, str]]:
    """A ``deploy_ui`` run whose sensor is deferred and polled by the triggerer; its ids.

    The reset forgets every token, so the event-driven example's asset watcher (if a triggerer runs it)
    must authenticate again; the fixture waits for its first answered poll after the reset, so no token
    request of the watcher falls in a test's window. Teardown completes the Carol task if a failed test
    left the sensor waiting, so the run ends.
    """
    sandbox = deployment.sandbox
    sandbox.reset()
    held = sandbox.create_task([{"status": "RUNNING", "after": 0}], name="ui-held")
    run_id = deployment.trigger(DAG_ID, {"carol_task_id": held})

    def deferred_and_polled() -> bool:
        deployment.check_alive()
        states = deployment.task_states(DAG_ID, run_id)
        assert "failed" not in states.values(), states
        # One GET from the sensor before it deferred, then the trigger's own polls.
        polls = len(requests_to(deployment, f"/api/v1/tasks/{held}", "GET"))
        watcher = watcher_trigger(deployment)
        watcher_ready = (
            watcher is None
            or watcher[1] is None
            or any(e["status"] == 200 for e in requests_to(deployment, WATCHER_POLL[1], WATCHER_POLL[0]))
        )
        return (
            states["wait_task"] == "deferred"
            and bool(deployment.triggerers_of(DAG_ID, run_id))
            and polls >= 2
            and watcher_ready
        )

    wait_for(
        "wait_task deferred and polled by its trigger, the asset watcher authenticated",
        deferred_and_polled,
        600,
        1.0,
        deployment.log_tails,
    )
    yield {"held": held, "run_id": run_id}
    if deployment.dag_run(DAG_ID, run_id)["state"] not in ("success", "failed"):
        sandbox.set_task_status(held, "COMPLETED")
        deployment.wait_run(DAG_ID, run_id)


def open_task(page: Page, deployment: Deployment, run_id: str, task_id: str, tab: str = "") -> None:
    """Log in as the admin and land on a task instance's page (``tab``: "" for Logs, "/details")."""
    target = f"/dags/{DAG_ID}/runs/{quote(run_id, safe='')}/tasks/{task_id}{tab}"
    page.goto(f"{deployment.api_url}/auth/login?next={quote(target, safe='')}")
    page.fill("input[name=username]", ADMIN_USER)
    page.fill("input[name=password]", deployment.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/tasks/{task_id}{tab}**")
    expect(page.get_by_role("heading", name=task_id)).to_be_visible()


def served_log(deployment: Deployment, run_id: str, task_id: str) -> list[str]:
    """A try's log lines as the api-server serves them, without its "source details" group."""
    lines = deployment.task_log(DAG_ID, run_id, task_id, 1).splitlines()
    if lines and lines[0] == SOURCE_GROUP:
        lines = lines[lines.index("::endgroup::") + 1 :]
    return lines


def test_carol_task_link_shows_while_the_sensor_is_deferred_without_calling_carol(
    deployment: Deployment, ui_run: dict[str, str], page: Page, observations: dict[str, Any]
) -> None:
    sandbox, held, run_id = deployment.sandbox, ui_run["held"], ui_run["run_id"]
    expected = f"{sandbox.url}/{sandbox.tenant}/carol-ui/tasks/{held}"  # docs/links.md's URL pattern
    poll_path = f"/api/v1/tasks/{held}"
    first = len(sandbox.requests())
    # The triggers' polls pass (a zero-latency fault matches first): the sensor's, and the asset watcher's
    # of the deployment's event-driven example. Every other Carol request is refused.
    sandbox.add_fault(poll_path, method="GET", latency=0, times=1_000_000)
    sandbox.add_fault(WATCHER_POLL[1], method=WATCHER_POLL[0], latency=0, times=1_000_000)
    sandbox.add_fault("/*", status=503, times=1_000_000)
    try:
        open_task(page, deployment, run_id, "wait_task", "/details")
        link = page.get_by_role("link", name=LINK_NAME, exact=True)
        expect(link).to_be_visible()
        expect(link).to_have_attribute("href", expected)
        expect(link).to_have_attribute("target", "_blank")
        expect(page.get_by_text("Deferred", exact=True).first).to_be_visible()
        page.mouse.move(700, 600)  # no hover tooltip in the picture
        page.screenshot(path=str(screenshot_dir() / "deployment-extra-link.png"), animations="disabled")
        window = sandbox.requests()[first:]
    finally:
        clear_faults(deployment)
    refused = [e for e in window if e["fault"] == "status"]
    assert refused == [], refused  # nothing but the trigger asked Carol anything while the page rendered
    assert {(e["method"], e["path"]) for e in window} <= {("GET", poll_path), WATCHER_POLL}, window
    assert deployment.task_states(DAG_ID, run_id)["wait_task"] == "deferred"
    links = deployment.api(
        "GET", f"dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances/wait_task/links"
    )
    assert links["extra_links"] == {LINK_NAME: expected}
    sensor_polls = sum(1 for e in window if e["path"] == poll_path)
    observations["ui_link"] = {"href": expected, "sensor_polls_while_rendering": sensor_polls}


def test_report_log_lines_in_the_ui_and_in_the_carol_task(
    deployment: Deployment, ui_run: dict[str, str], page: Page, observations: dict[str, Any]
) -> None:
    sandbox, held, run_id = deployment.sandbox, ui_run["held"], ui_run["run_id"]
    sandbox.set_task_status(held, "COMPLETED")
    run = deployment.wait_run(DAG_ID, run_id)
    assert run["state"] == "success", deployment.task_states(DAG_ID, run_id)
    lines = [(ui, carol, text.format(held=held)) for ui, carol, text in REPORT_LINES]

    open_task(page, deployment, run_id, "report")  # the Logs tab is the default
    rows = page.get_by_test_id(re.compile(r"^virtualized-item-\d+$"))
    for ui_level, _, text in lines:
        row = rows.filter(has_text=text)
        expect(row).to_have_count(1)
        expect(row).to_contain_text(f"{ui_level} - {text}")
    page.mouse.move(700, 700)
    page.screenshot(path=str(screenshot_dir() / "deployment-task-log.png"), animations="disabled")

    # Every line of the served Airflow log reached the Carol task, in order and once (extras are
    # appended there as key=value, so each Carol line starts with its Airflow line).
    airflow_lines = served_log(deployment, run_id, "report")

    def shipped() -> list[tuple[str, str]]:
        carol = [(e["mdmLogLevel"], e["mdmLogMessage"]) for e in sandbox.task(held)["logs"]]
        return carol if len(carol) >= len(airflow_lines) else []

    carol = wait_for("report's lines in the Carol task", shipped, 120, 1.0, deployment.log_tails)
    assert len(carol) == len(airflow_lines), (carol, airflow_lines)
    mismatched = [
        (line, message)
        for line, (_, message) in zip(airflow_lines, carol, strict=True)
        if not message.startswith(line)
    ]
    assert mismatched == [], mismatched
    for _, carol_level, text in lines:
        assert carol.count((carol_level, text)) == 1, (text, carol)
    assert airflow_lines[-1] == "::endgroup::"  # the last line the supervisor wrote is there too
    observations["ui_log"] = {"airflow_lines": len(airflow_lines), "carol_lines": len(carol)}
