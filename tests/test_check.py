"""carol-check against the sandbox over HTTP, run as users run it (a child process): every answer shape the
sandbox serves, a deliberately wrong one that must fail, read-only, and no value or secret in its output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CHECK = [sys.executable, "-m", "airflow_provider_carol.check"]


def run_check(sandbox, *args: str, conn: str | None = None, command: list[str] = CHECK):
    env = {**os.environ, "AIRFLOW_CONN_CAROL_CHECK": conn or sandbox.connection_json("password")}
    env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)  # it makes Airflow announce its test config on stdout
    return subprocess.run([*command, "--conn-id", "carol_check", *args], env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def secrets_and_values(sandbox) -> list[str]:
    """What must never be printed: credentials, ids, names of the tenant's data."""
    return [sandbox.password, sandbox.api_key, sandbox.tenant_id, sandbox.org_id, sandbox.connector_id,
            sandbox.user, sandbox.tenant, sandbox.organization, sandbox.app_name, "customers"]


def assert_prints_no_value(sandbox, completed) -> None:
    printed = completed.stdout + completed.stderr
    leaked = [value for value in secrets_and_values(sandbox) if value in printed]
    assert leaked == [], f"carol-check printed {len(leaked)} value(s)"


def requests_made(sandbox) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in sandbox.requests()]


def test_default_shapes_match_and_only_gets_follow_the_login(carol_sandbox):
    carol_sandbox.complete_batch("customers", 3)
    before = len(carol_sandbox.requests())
    completed = run_check(carol_sandbox)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    out = completed.stdout
    assert "result: match" in out
    assert "stagingEntityStats values: an object with count" in out
    for row in ("GET /api/v1/tenants/current", "GET /api/v1/tenantApps/{app_id}/aiprocesses",
                "aggs.*.stagingEntityStats.* (assumed)", "answered: mdmEntityType, mdmId, mdmName"):
        assert row in out
    made = requests_made(carol_sandbox)[before:]
    assert made[0] == ("POST", "/api/v5/oauth2/token")
    assert {method for method, _ in made[1:]} == {"GET"}  # read-only after the login
    assert_prints_no_value(carol_sandbox, completed)


def test_json_report_names_each_endpoint_and_the_stats_shape(carol_sandbox):
    carol_sandbox.set_shapes(stats_value="number")
    carol_sandbox.complete_batch("customers", 2)
    completed = run_check(carol_sandbox, "--json")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    report = json.loads(completed.stdout)
    assert (report["result"], report["stats_value_shape"]) == ("match", "a number")
    outcomes = {e["endpoint"]: e["outcome"] for e in report["endpoints"]}
    assert outcomes["GET /api/v1/connectors/{connector_id}/stats"] == "ok"
    assert outcomes["GET /api/v1/tasks/{task_id}"] == "skipped"
    assert_prints_no_value(carol_sandbox, completed)


@pytest.mark.parametrize("shape", ["count", "number", "total", "doc_count"])
def test_every_readable_stats_shape_matches_and_is_reported(carol_sandbox, shape):
    carol_sandbox.set_shapes(stats_value=shape)
    carol_sandbox.complete_batch("customers", 2)
    report = json.loads(run_check(carol_sandbox, "--json").stdout)
    expected = "a number" if shape == "number" else f"an object with {shape}"
    assert (report["result"], report["stats_value_shape"]) == ("match", expected)


@pytest.mark.parametrize(
    ("shapes", "endpoint", "field"),
    [
        ({"tenant_current": "no_id"}, "GET /api/v1/tenants/current", "mdmId"),
        ({"stats_value": "unreadable"}, "GET /api/v1/connectors/{connector_id}/stats", None),
    ],
    ids=["tenant-without-mdmId", "stats-without-a-count"],
)
def test_a_wrong_shape_is_a_mismatch_with_exit_status_1(carol_sandbox, shapes, endpoint, field):
    carol_sandbox.set_shapes(**shapes)
    carol_sandbox.complete_batch("customers", 2)
    completed = run_check(carol_sandbox, "--json")
    assert completed.returncode == 1, completed.stdout + completed.stderr
    report = json.loads(completed.stdout)
    (row,) = [e for e in report["endpoints"] if e["endpoint"] == endpoint]
    assert report["result"] == "mismatch" and row["outcome"] == "mismatch"
    if field:
        assert [f["match"] for f in row["fields"] if f["field"] == field] == [False]
    assert_prints_no_value(carol_sandbox, completed)


def test_a_task_in_a_status_no_tenant_answers_is_a_mismatch(carol_sandbox):
    task_id = carol_sandbox.create_task([{"status": "PROCESSING", "after": 0}])
    completed = run_check(carol_sandbox, "--task-id", task_id)
    assert completed.returncode == 1
    assert "mdmTaskStatus is none of READY, RUNNING, COMPLETED, FAILED, CANCELED" in completed.stdout
    assert task_id not in completed.stdout


@pytest.mark.parametrize("shape", ["400", "401", "403", "404", "no_name"])
def test_an_org_level_connection_matches_whatever_tenants_current_answers(carol_sandbox, shape):
    carol_sandbox.set_shapes(tenant_current_org=shape)
    conn = carol_sandbox.connection_json("password", org_level=True, tenant=None)
    completed = run_check(carol_sandbox, conn=conn)
    assert completed.returncode == 0, completed.stdout
    assert "organization level" in completed.stdout and "result: match" in completed.stdout


def test_bigquery_is_checked_only_when_asked_and_the_key_never_printed(carol_sandbox):
    before = len(carol_sandbox.requests())
    run_check(carol_sandbox)
    assert not [p for _, p in requests_made(carol_sandbox)[before:] if p.endswith("create_temporary_key")]
    completed = run_check(carol_sandbox, "--bigquery")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "private_key" in completed.stdout and "PRIVATE KEY" not in completed.stdout + completed.stderr
    assert_prints_no_value(carol_sandbox, completed)


def test_refused_credentials_exit_2_without_printing_them(carol_sandbox):
    conn = json.loads(carol_sandbox.connection_json("password"))
    conn["password"] = "wrong-password-31337"
    completed = run_check(carol_sandbox, conn=json.dumps(conn))
    assert completed.returncode == 2
    assert "CarolAuthError" in completed.stdout and "HTTP 401" in completed.stdout
    assert "wrong-password-31337" not in completed.stdout + completed.stderr


def test_the_console_script_is_installed(carol_sandbox):
    script = Path(sys.executable).with_name("carol-check")
    completed = run_check(carol_sandbox, command=[str(script)])
    assert completed.returncode == 0 and "result: match" in completed.stdout
