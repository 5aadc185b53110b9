"""Long tasks driven by schedules, over real HTTP."""

from __future__ import annotations


def _task(api, sandbox, task_id, suffix="", method="GET", **kwargs):
    response = api.request(method, f"{sandbox.url}/api/v1/tasks/{task_id}{suffix}", timeout=10, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


def test_task_follows_its_schedule_and_exposes_the_fields_pycarol_reads(api, carol_sandbox):
    task_id = carol_sandbox.create_task(
        [
            {"status": "READY", "after": 0},
            {"status": "RUNNING", "after": 100},
            {"status": "COMPLETED", "after": 200},
        ]
    )
    first = _task(api, carol_sandbox, task_id)
    assert len(task_id) == 32
    assert (first["mdmId"], first["mdmTaskStatus"], first["mdmTaskReady"]) == (task_id, "READY", True)
    assert {
        "mdmUserId",
        "mdmConnectorId",
        "mdmTaskProcessing",
        "mdmTaskOwner",
        "mdmTaskProgress",
        "mdmDistributionValue",
        "mdmTaskPreference",
        "mdmNumberOfSteps",
        "mdmNumberOfStepsExecuted",
        "mdmEntityType",
        "mdmCreated",
        "mdmStartDate",
        "mdmCreatedUser",
        "mdmUpdatedUser",
        "mdmLastUpdated",
        "mdmTenantId",
        "mdmProcessAfter",
        "mdmData",
        "mdmTaskProgressData",
    } <= set(first)
    carol_sandbox.advance_clock(150)  # the schedule moves, no test sleeps through it
    assert _task(api, carol_sandbox, task_id)["mdmTaskStatus"] == "RUNNING"
    carol_sandbox.advance_clock(100)
    done = _task(api, carol_sandbox, task_id)
    assert (done["mdmTaskStatus"], done["mdmNumberOfStepsExecuted"]) == ("COMPLETED", 3)


def test_scheduled_failure_carries_its_error_in_the_task_and_its_logs(api, carol_sandbox):
    task_id = carol_sandbox.create_task([{"status": "FAILED", "after": 0}], error="disk full")
    task = _task(api, carol_sandbox, task_id)
    assert (task["mdmTaskStatus"], task["mdmErrorMessage"]) == ("FAILED", "disk full")
    logs = _task(api, carol_sandbox, task_id, "/logs")
    assert [(entry["mdmLogLevel"], entry["mdmLogMessage"]) for entry in logs] == [("ERROR", "disk full")]


def test_logs_are_stored_in_arrival_order_with_timestamps(api, carol_sandbox):
    task_id = carol_sandbox.create_task([{"status": "RUNNING", "after": 0}])
    for message in ("one", "two"):
        ack = _task(
            api,
            carol_sandbox,
            task_id,
            "/logs",
            method="POST",
            json=[{"mdmTaskId": task_id, "mdmLogMessage": message, "mdmLogLevel": "INFO"}],
        )
        assert ack == {"success": True}
    _task(
        api,
        carol_sandbox,
        task_id,
        "/logs",
        method="POST",
        json=[
            {"mdmTaskId": task_id, "mdmLogMessage": "three", "mdmLogLevel": "WARN"},
            {"mdmTaskId": task_id, "mdmLogMessage": "four", "mdmLogLevel": "ERROR"},
        ],
    )
    logs = _task(api, carol_sandbox, task_id, "/logs")
    assert [entry["mdmLogMessage"] for entry in logs] == ["one", "two", "three", "four"]
    assert all(entry["mdmLogDate"].endswith("Z") and entry["mdmTimestamp"] > 0 for entry in logs)
    assert carol_sandbox.task(task_id)["logs"] == logs


def test_cancel_and_fail_change_a_running_task_but_not_a_finished_one(api, carol_sandbox):
    running = carol_sandbox.create_task([{"status": "RUNNING", "after": 0}])
    doomed = carol_sandbox.create_task([{"status": "RUNNING", "after": 0}])
    finished = carol_sandbox.create_task([{"status": "COMPLETED", "after": 0}])
    cancelled = _task(api, carol_sandbox, running, "/cancel?force=False", method="POST")
    failed = _task(api, carol_sandbox, doomed, "/fail", method="POST", params={"message": "stop it"})
    untouched = _task(api, carol_sandbox, finished, "/cancel?force=True", method="POST")
    assert cancelled["mdmTaskStatus"] == "CANCELED"
    assert (failed["mdmTaskStatus"], failed["mdmErrorMessage"]) == ("FAILED", "stop it")
    assert untouched["mdmTaskStatus"] == "COMPLETED"
    assert carol_sandbox.task(running)["cancel_count"] == 1


def test_reprocess_restarts_with_the_reprocess_schedule_and_counts(api, carol_sandbox):
    task_id = carol_sandbox.create_task(
        [{"status": "FAILED", "after": 0}],
        error="first run broke",
        reprocess_schedule=[{"status": "RUNNING", "after": 0}, {"status": "COMPLETED", "after": 100}],
    )
    assert _task(api, carol_sandbox, task_id)["mdmTaskStatus"] == "FAILED"
    again = _task(api, carol_sandbox, task_id, "/reprocess", method="POST")
    assert again["mdmTaskStatus"] == "RUNNING"
    assert again["mdmErrorMessage"] is None
    carol_sandbox.advance_clock(150)
    assert _task(api, carol_sandbox, task_id)["mdmTaskStatus"] == "COMPLETED"
    assert carol_sandbox.task(task_id)["reprocess_count"] == 1


def test_progress_is_stored_with_its_data(api, carol_sandbox):
    task_id = carol_sandbox.create_task([{"status": "RUNNING", "after": 0}])
    task = _task(api, carol_sandbox, task_id, "/progress/40", method="POST", json={"step": "load"})
    assert (task["mdmTaskProgress"], task["mdmTaskProgressData"]) == (40, {"step": "load"})


def test_unknown_task_is_404_and_bad_schedule_is_400(api, carol_sandbox):
    missing = api.get(f"{carol_sandbox.url}/api/v1/tasks/{'0' * 32}", timeout=10)
    bad = carol_sandbox.session.post(
        f"{carol_sandbox.url}/__sandbox/tasks",
        json={"schedule": [{"status": "RUNNING", "after": -1}]},
        timeout=10,
    )
    assert (missing.status_code, bad.status_code) == (404, 400)
    assert "Not found" in missing.json()["errorMessage"]


def test_a_task_can_be_driven_step_by_step(api, carol_sandbox):
    task_id = carol_sandbox.create_task([{"status": "RUNNING", "after": 0}])
    carol_sandbox.set_task_status(task_id, "FAILED", error="node lost")
    failed = _task(api, carol_sandbox, task_id)
    assert (failed["mdmTaskStatus"], failed["mdmErrorMessage"]) == ("FAILED", "node lost")
    assert _task(api, carol_sandbox, task_id, "/logs")[-1]["mdmLogMessage"] == "node lost"
    assert _task(api, carol_sandbox, task_id, "/reprocess", method="POST")["mdmTaskStatus"] == "RUNNING"
    carol_sandbox.set_task_status(task_id, "COMPLETED")
    assert _task(api, carol_sandbox, task_id)["mdmTaskStatus"] == "COMPLETED"
