"""What the event triggers poll, over real HTTP: task queries and connector stats (records per staging)."""

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
    ended = [carol_sandbox.finish_task(task_id) for task_id in ids]
    body = query(("mdmTaskStatus", ["COMPLETED"]), ("mdmData.carolAppName", ["app1"]))
    first = api.post(f"{carol_sandbox.url}{TASK_QUERY}", params=DESC, json=body, timeout=10).json()
    second = api.post(
        f"{carol_sandbox.url}{TASK_QUERY}", params={**DESC, "offset": 2}, json=body, timeout=10
    ).json()
    assert (first["totalHits"], first["count"], second["count"]) == (3, 2, 1)
    found = [hit["mdmId"] for hit in first["hits"] + second["hits"]]
    # Newest first by mdmLastUpdated (milliseconds), ties by id: two tasks ended within the same
    # millisecond come in id order, not in the order the test ended them.
    newest_first = sorted(ended, key=lambda t: (t["mdmLastUpdated"], t["mdmId"]), reverse=True)
    assert found == [t["mdmId"] for t in newest_first]
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
    ).json()["data"]
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


def stats_of(api, carol_sandbox, connector_id: str | None = None) -> dict:
    path = f"{connector_id}/stats" if connector_id else "stats/all"
    answer = api.get(f"{carol_sandbox.url}/api/v1/connectors/{path}", timeout=10)
    answer.raise_for_status()
    return answer.json()


def test_connector_stats_count_the_stored_records_per_staging(api, carol_sandbox):
    cid = carol_sandbox.connector_id
    assert stats_of(api, carol_sandbox, cid) == {"aggs": {cid: {"stagingEntityStats": {}}}}
    carol_sandbox.complete_batch("orders", 3)
    carol_sandbox.complete_batch("customers", 1)
    carol_sandbox.complete_batch("orders", [{"id": "a"}])
    assert stats_of(api, carol_sandbox, cid) == {
        "aggs": {cid: {"stagingEntityStats": {"customers": {"count": 1}, "orders": {"count": 4}}}}
    }
    assert carol_sandbox.records("orders")[-1] == {"id": "a"}


def test_a_redelivered_chunk_counts_once_and_a_drop_removes_the_staging(api, carol_sandbox):
    cid = carol_sandbox.connector_id
    intake = f"{carol_sandbox.url}/api/v2/staging/intake/orders"
    for _ in range(2):  # the same (batchId, batchIdSequence) twice: Carol replaces the chunk
        params = {"connectorId": cid, "batchId": "b1", "batchIdSequence": 1}
        api.post(intake, params=params, json=[{"id": 1}, {"id": 2}], timeout=10).raise_for_status()
    assert stats_of(api, carol_sandbox, cid)["aggs"][cid]["stagingEntityStats"] == {"orders": {"count": 2}}
    api.delete(
        f"{carol_sandbox.url}/api/v2/staging/tables/orders/drop", params={"connectorId": cid}, timeout=10
    ).raise_for_status()
    assert stats_of(api, carol_sandbox, cid)["aggs"][cid]["stagingEntityStats"] == {}


def test_stats_of_all_connectors_and_an_unknown_connector(api, carol_sandbox):
    other = api.post(f"{carol_sandbox.url}/api/v1/connectors", json={"mdmName": "other"}, timeout=10).json()
    carol_sandbox.complete_batch("orders", 2)
    carol_sandbox.complete_batch("orders", 5, connector_id=other["mdmId"])
    aggs = stats_of(api, carol_sandbox)["aggs"]
    assert {cid: stats["stagingEntityStats"] for cid, stats in aggs.items()} == {
        carol_sandbox.connector_id: {"orders": {"count": 2}},
        other["mdmId"]: {"orders": {"count": 5}},
    }
    missing = api.get(f"{carol_sandbox.url}/api/v1/connectors/no-such-connector/stats", timeout=10)
    assert missing.status_code == 404, missing.text


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
