"""App hook methods: settings flattening (pure), then lookup, settings and processes on the sandbox."""

from __future__ import annotations

import json

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_carol.exceptions import (
    CarolApiError,
    CarolConfigError,
    CarolNotFound,
    CarolStartedUnreadable,
)
from airflow_provider_carol.hooks.apps import flatten_settings
from airflow_provider_carol.hooks.carol import CarolHook

SEEDED_SETTINGS = {
    "target_staging": "customers",
    "batch_size": 500,
    "threshold": 0.75,
    "enabled": True,
    "notes": None,
}


def test_flatten_settings_matches_the_reference_sdk_shape():
    body = {
        "mdmId": "s",
        "mdmTenantAppSettingValues": [{"mdmName": "a", "mdmParameterValue": 1}, {"mdmName": "b"}],
    }
    assert flatten_settings(body, "app") == {"a": 1, "b": None}
    assert flatten_settings({"mdmId": "s"}, "app") == {}


def test_flatten_settings_names_the_malformed_item():
    with pytest.raises(CarolApiError, match="setting 1 has no mdmName"):
        flatten_settings({"mdmTenantAppSettingValues": [{"mdmName": "a"}, {"mdmParameterValue": 2}]}, "app")
    with pytest.raises(CarolApiError, match="not an object"):
        flatten_settings([], "app")


def test_get_app_by_the_connection_app_name(carol_sandbox, hook):
    app = hook.get_app()
    assert app.name == carol_sandbox.app_name and app.app_id


def test_get_app_settings_returns_the_flattened_dict(carol_sandbox, hook):
    assert hook.get_app_settings(carol_sandbox.app_name) == SEEDED_SETTINGS
    settings_calls = carol_sandbox.requests(path="*/settings")
    assert len(settings_calls) == 1 and "entitySpace=PRODUCTION" in (settings_calls[0]["query"] or "")


def test_unknown_app_is_not_found(carol_sandbox, hook):
    with pytest.raises(CarolNotFound, match="no_such_app"):
        hook.get_app_settings("no_such_app")


def test_missing_app_name_fails_before_any_request(carol_sandbox, monkeypatch):
    conn = json.loads(carol_sandbox.connection_json())
    conn["extra"].pop("app_name")
    monkeypatch.setenv("AIRFLOW_CONN_CAROL_NOAPP", json.dumps(conn))
    with pytest.raises(CarolConfigError, match="app_name"):
        CarolHook("carol_noapp").get_app_settings()
    assert carol_sandbox.requests() == []


def test_start_app_process_creates_a_long_task(carol_sandbox, hook):
    task = hook.start_app_process(None, "main_process")
    assert task.task_id and not task.state.is_failed
    assert carol_sandbox.task(task.task_id)["mdmTaskName"] == f"{carol_sandbox.app_name}/main_process"
    assert hook.wait_for_task(task.task_id, poll_interval=0.2).status == "COMPLETED"


def test_start_unknown_process_is_not_found_and_empty_name_is_rejected(carol_sandbox, hook):
    with pytest.raises(CarolNotFound, match="nope"):
        hook.start_app_process(carol_sandbox.app_name, "nope")
    with pytest.raises(CarolConfigError, match="process_name"):
        hook.start_app_process(carol_sandbox.app_name, " ")


def test_start_app_process_is_not_resent_after_a_dropped_connection(carol_sandbox, hook):
    carol_sandbox.add_fault("/api/v1/tenantApps/*/aiprocesses/*/execute/*", drop="after", times=1)
    with pytest.raises(Exception, match="could not be completed"):
        hook.start_app_process(None, "main_process")
    executes = carol_sandbox.requests(path="*/execute/*")
    assert len(executes) == 1


def _executes(sandbox) -> list[dict]:
    return sandbox.requests(path="*/execute/*")


@pytest.mark.parametrize("shape", ["data", "top", "task_id", "data_task_id"])
def test_start_app_process_reads_the_task_id_in_every_shape_carol_answers(carol_sandbox, hook, shape):
    """Real tenants answer {"success": true, "data": task} (TR, CAM); the other task-start shapes too."""
    carol_sandbox.set_shapes(execute=shape)
    task = hook.start_app_process(None, "main_process")
    assert carol_sandbox.task(task.task_id)["mdmTaskName"] == f"{carol_sandbox.app_name}/main_process"
    assert hook.wait_for_task(task.task_id, poll_interval=0.2).status == "COMPLETED"
    assert len(_executes(carol_sandbox)) == 1


def test_start_app_process_answered_success_false_is_a_clear_error(carol_sandbox, hook):
    carol_sandbox.set_shapes(execute="refused")
    with pytest.raises(CarolApiError, match="success=false: The process could not be started"):
        hook.start_app_process(None, "main_process")
    assert len(_executes(carol_sandbox)) == 1


def test_an_unreadable_start_answer_fails_without_a_resend_naming_only_field_names(
    carol_sandbox, hook, caplog
):
    carol_sandbox.set_shapes(execute="unreadable")
    with pytest.raises(CarolStartedUnreadable) as failure:
        hook.start_app_process(None, "main_process")
    message = str(failure.value)
    assert "fields data, data.status, success" in message and "started" not in message.split("got ")[1]
    assert isinstance(failure.value, AirflowFailException)  # no Airflow retry: it would start it again
    assert len(_executes(carol_sandbox)) == 1
    assert "the answer, redacted" in caplog.text and '"status":"started"' in caplog.text


def test_an_app_without_ai_processes_is_a_clear_error_before_any_execute(carol_sandbox, hook):
    carol_sandbox.add_fault("/api/v1/tenantApps/*/aiprocesses", status=200, body={}, times=1)
    with pytest.raises(CarolConfigError, match="has no AI process"):
        hook.start_app_process(None, "main_process")
    assert _executes(carol_sandbox) == []
