"""Answer shapes: the sandbox answers as real tenants do by default (carol-evidence.md), and switches to each
documented alternative, or a deliberately unreadable one, through its admin API."""

from __future__ import annotations

import pytest
import requests

from tests.sandbox.conftest import password_login


@pytest.fixture
def api(carol_sandbox):
    session = requests.Session()
    session.headers["Authorization"] = password_login(carol_sandbox).json()["access_token"]
    return session


def _execute(api, sandbox) -> requests.Response:
    app = api.get(f"{sandbox.url}/api/v1/tenantApps/name/{sandbox.app_name}", timeout=10).json()
    base = f"{sandbox.url}/api/v1/tenantApps/{app['mdmId']}/aiprocesses"
    container = api.get(base, params={"entitySpace": "WORKING", "checkAllSpaces": "true"}, timeout=10).json()
    return api.post(f"{base}/{container['mdmId']}/execute/main_process", timeout=10)


def test_defaults_are_the_evidence_shapes_and_reset_restores_them(carol_sandbox):
    defaults = {
        "execute": "data",
        "process_query": "top",
        "tenant_current_org": "400",
        "tenant_current": "tenant",
        "stats_value": "count",
    }
    assert carol_sandbox.shapes()["current"] == defaults
    carol_sandbox.set_shapes(execute="top", stats_value="number")
    assert carol_sandbox.shapes()["current"] == {**defaults, "execute": "top", "stats_value": "number"}
    carol_sandbox.reset()
    assert carol_sandbox.shapes()["current"] == defaults


def test_unknown_answers_and_shapes_are_refused_by_name(carol_sandbox):
    for wrong, named in (({"nope": "data"}, "nope"), ({"execute": "sideways"}, "sideways")):
        response = carol_sandbox.session.post(f"{carol_sandbox.url}/__sandbox/shapes", json=wrong, timeout=10)
        assert response.status_code == 400
        assert named in response.json()["errorMessage"]
    assert carol_sandbox.shapes()["current"]["execute"] == "data"


@pytest.mark.parametrize(
    ("shape", "task_id_at"),
    [("data", ("data", "mdmId")), ("top", ("mdmId",)), ("task_id", ("taskId",)),
     ("data_task_id", ("data", "taskId"))],
)
def test_execute_answers_the_started_task_in_each_shape(api, carol_sandbox, shape, task_id_at):
    carol_sandbox.set_shapes(execute=shape)
    answer = _execute(api, carol_sandbox).json()
    task_id = answer
    for key in task_id_at:
        task_id = task_id[key]
    assert carol_sandbox.task(task_id)["mdmTaskStatus"] in ("READY", "RUNNING", "COMPLETED")


def test_execute_refused_and_unreadable_shapes_still_start_nothing_readable(api, carol_sandbox):
    carol_sandbox.set_shapes(execute="refused")
    assert _execute(api, carol_sandbox).json()["success"] is False
    carol_sandbox.set_shapes(execute="unreadable")
    answer = _execute(api, carol_sandbox).json()
    assert answer["success"] is True and "mdmId" not in answer["data"] and "taskId" not in answer["data"]


@pytest.mark.parametrize("shape", ["400", "401", "403", "404"])
def test_org_level_tenants_current_fails_with_the_status_in_force(carol_sandbox, shape):
    carol_sandbox.set_shapes(tenant_current_org=shape)
    token = password_login(carol_sandbox, tenant=False).json()["access_token"]
    answer = requests.get(f"{carol_sandbox.url}/api/v1/tenants/current", headers={"Authorization": token},
                          timeout=10)
    assert answer.status_code == int(shape)
    assert answer.json()["errorCode"] == int(shape)


def test_org_level_tenants_current_can_answer_a_tenant_without_a_name(carol_sandbox):
    carol_sandbox.set_shapes(tenant_current_org="no_name")
    token = password_login(carol_sandbox, tenant=False).json()["access_token"]
    answer = requests.get(f"{carol_sandbox.url}/api/v1/tenants/current", headers={"Authorization": token},
                          timeout=10)
    assert answer.status_code == 200 and "mdmName" not in answer.json()


@pytest.mark.parametrize(
    ("shape", "value"),
    [("count", {"count": 2}), ("number", 2), ("total", {"total": 2}), ("doc_count", {"doc_count": 2}),
     ("unreadable", {"size": "2"})],
)
def test_connector_stats_values_follow_the_shape_in_force(api, carol_sandbox, shape, value):
    carol_sandbox.set_shapes(stats_value=shape)
    carol_sandbox.complete_batch("customers", records=2)
    stats = api.get(f"{carol_sandbox.url}/api/v1/connectors/{carol_sandbox.connector_id}/stats", timeout=10)
    assert stats.json()["aggs"][carol_sandbox.connector_id]["stagingEntityStats"]["customers"] == value
