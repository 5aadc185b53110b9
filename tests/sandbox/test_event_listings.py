"""What the event triggers poll, over real HTTP: task queries and the batch summaries listing."""

from __future__ import annotations

import pytest

TASK_QUERY = "/api/v1/queries/filter"
DESC = {"indexType": "MASTER", "sortBy": "mdmLastUpdated", "sortOrder": "DESC", "pageSize": 2}


def query(*terms: tuple[str, list[str]]) -> dict:
    must = [{"mdmFilterType": "TYPE_FILTER", "mdmValue": "mdmTask"}]
    must += [{"mdmKey": f"{k}.raw", "mdmFilterType": "TERMS_FILTER", "mdmValue": v} for k, v in terms]
    return {"mustList": must, "mustNotList": [], "shouldList": []}


def test_task_query_filters_sorts_newest_first_and_pages(api, carol_sandbox):
    running = [{"status": "RUNNING", "after": 0}]
    ids = [carol_sandbox.create_task(running, name="q", app_name="app1") for _ in range(3)]
    carol_sandbox.create_task(running, name="q", app_name="app1")  # stays RUNNING
    for task_id in ids:
        carol_sandbox.finish_task(task_id)
    body = query(("mdmTaskStatus", ["COMPLETED"]), ("mdmData.carolAppName", ["app1"]))
    first = api.post(f"{carol_sandbox.url}{TASK_QUERY}", params=DESC, json=body, timeout=10).json()
    second = api.post(
        f"{carol_sandbox.url}{TASK_QUERY}", params={**DESC, "offset": 2}, json=body, timeout=10
    ).json()
    assert (first["totalHits"], first["count"], second["count"]) == (3, 2, 1)
    found = [hit["mdmId"] for hit in first["hits"] + second["hits"]]
    assert found == ids[::-1]
    hit = first["hits"][0]
    assert (hit["mdmTaskType"], hit["mdmData"], hit["mdmTaskName"]) == (
        "SANDBOX_TASK",
        {"carolAppName": "app1"},
        "q",
    )


def test_an_app_process_task_names_its_type_and_app(api, carol_sandbox):
    app = api.get(f"{carol_sandbox.url}/api/v1/tenantApps/name/{carol_sandbox.app_name}", timeout=10).json()
    container = api.get(
        f"{carol_sandbox.url}/api/v1/tenantApps/{app['mdmId']}/aiprocesses", timeout=10
    ).json()
    task = api.post(
        f"{carol_sandbox.url}/api/v1/tenantApps/{app['mdmId']}/aiprocesses/{container['mdmId']}/execute/long_process",
        timeout=10,
    ).json()
    assert (task["mdmTaskType"], task["mdmData"]) == (
        "EXECUTE_AI_PROCESS",
        {"carolAppName": carol_sandbox.app_name},
    )


@pytest.mark.parametrize(
    "body",
    [
        {"mustList": []},
        query(("mdmOwner", ["x"])),
        {
            "mustList": [
                {"mdmFilterType": "TYPE_FILTER", "mdmValue": "mdmTask"},
                {"mdmFilterType": "RANGE_FILTER"},
            ]
        },
    ],
)
def test_task_queries_the_sandbox_cannot_answer_are_a_400(api, carol_sandbox, body):
    answer = api.post(f"{carol_sandbox.url}{TASK_QUERY}", params=DESC, json=body, timeout=10)
    assert answer.status_code == 400, answer.text


def test_summaries_list_completed_batches_oldest_first_with_counts(api, carol_sandbox):
    first = carol_sandbox.complete_batch("orders", 3)
    carol_sandbox.complete_batch("customers", 1)
    second = carol_sandbox.complete_batch("orders", [{"id": "a"}])
    url = f"{carol_sandbox.url}/api/v3/staging/batch/summaries"
    listed = api.get(url, params={"stagingType": "orders"}, timeout=10).json()
    assert [h["batchId"] for h in listed["hits"]] == [first["batchId"], second["batchId"]]
    hit = listed["hits"][0]
    assert (hit["stagingType"], hit["connectorId"], hit["totalRecords"], hit["recordsReceived"]) == (
        "orders",
        carol_sandbox.connector_id,
        3,
        3,
    )
    later = api.get(
        url, params={"stagingType": "orders", "receivedAfter": second["summary"]["receivedAt"]}, timeout=10
    ).json()
    assert second["batchId"] in [h["batchId"] for h in later["hits"]]
    assert carol_sandbox.records("orders")[-1] == {"id": "a"}


def test_a_resent_summary_keeps_the_first_arrival_time(api, carol_sandbox):
    batch = carol_sandbox.complete_batch("orders", 1)
    again = api.post(
        f"{carol_sandbox.url}/api/v3/staging/batch/{batch['batchId']}/summary",
        json={
            k: batch["summary"][k]
            for k in ("totalRecords", "totalRequests", "timestampStart", "timestampEnd")
        },
        timeout=10,
    )
    assert again.status_code == 200
    resent = carol_sandbox.batch(batch["batchId"])
    assert (
        resent["summaries_posted"] == 2 and resent["summary"]["receivedAt"] == batch["summary"]["receivedAt"]
    )


def test_admin_helpers_refuse_bad_input(carol_sandbox):
    import requests

    with pytest.raises(ValueError, match="status"):
        carol_sandbox.finish_task("any", "RUNNING")
    with pytest.raises(requests.HTTPError):
        carol_sandbox.complete_batch("", 1)
    with pytest.raises(requests.HTTPError):
        carol_sandbox.complete_batch("orders", "three")  # type: ignore[arg-type]
