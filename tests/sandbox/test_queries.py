"""The sandbox's named queries and processQuery over raw HTTP, the way pycarol calls them."""

from __future__ import annotations

import pytest


def test_named_query_pages_through_one_use_scroll_ids(api, carol_sandbox):
    carol_sandbox.add_named_query("all", [{"id": i} for i in range(25)], data_model="customer")
    url = f"{carol_sandbox.url}/api/v2/queries/named/all"
    params = {"offset": 0, "pageSize": 10, "sortOrder": "ASC", "indexType": "MASTER", "scrollable": "True"}
    page = api.post(url, params=params, json={}, timeout=10).json()
    assert (page["totalHits"], page["count"]) == (25, 10) and page["scrollId"]
    assert page["hits"][0]["mdmEntityType"] == "customerGolden"
    seen = [hit["mdmGoldenFieldAndValues"]["id"] for hit in page["hits"]]
    scroll = f"{carol_sandbox.url}/api/v2/queries/filter/{page['scrollId']}"
    while page["count"]:
        page = api.post(
            f"{carol_sandbox.url}/api/v2/queries/filter/{page['scrollId']}", json={}, timeout=10
        ).json()
        seen += [hit["mdmGoldenFieldAndValues"]["id"] for hit in page["hits"]]
    assert seen == list(range(25))
    reused = api.post(scroll, json={}, timeout=10)
    assert reused.status_code == 404 and reused.json()["possibleResponsibleField"] == "scrollId"


def test_named_query_parameters_filter_and_a_missing_one_is_a_400(api, carol_sandbox):
    carol_sandbox.add_named_query(
        "byRegion", [{"id": 1, "region": "NE"}, {"id": 2, "region": "S"}], params=["region"]
    )
    url = f"{carol_sandbox.url}/api/v2/queries/named/byRegion"
    found = api.post(url, json={"region": "S"}, timeout=10).json()
    assert [hit["mdmGoldenFieldAndValues"]["id"] for hit in found["hits"]] == [2]
    missing = api.post(url, json={}, timeout=10)
    assert missing.status_code == 400 and missing.json()["possibleResponsibleField"] == "region"
    assert api.post(f"{carol_sandbox.url}/api/v2/queries/named/nope", json={}, timeout=10).status_code == 404


def test_process_query_starts_a_task_on_the_admin_schedule_and_records_the_call(api, carol_sandbox):
    carol_sandbox.set_process_query_schedule(
        [{"status": "RUNNING", "after": 0}, {"status": "FAILED", "after": 5}], error="boom"
    )
    url = f"{carol_sandbox.url}/api/v2/bigQuery/processQuery"
    params = {"entityTemplateName": "customer", "saveCds": "True", "clearCds": "False"}
    task = api.post(
        url, params=params, data="SELECT 1", headers={"Content-Type": "text/plain"}, timeout=10
    ).json()
    assert task["mdmTaskStatus"] == "RUNNING" and task["mdmTaskName"] == "processQuery/customer"
    carol_sandbox.advance_clock(5)
    failed = api.get(f"{carol_sandbox.url}/api/v1/tasks/{task['mdmId']}", timeout=10).json()
    assert (failed["mdmTaskStatus"], failed["mdmErrorMessage"]) == ("FAILED", "boom")
    assert carol_sandbox.process_queries() == [
        {"sql": "SELECT 1", "params": params, "task_id": task["mdmId"]}
    ]


@pytest.mark.parametrize(
    ("params", "body", "field"),
    [
        ({}, "SELECT 1", "entityTemplateName"),
        ({"entityTemplateName": "customer"}, " ", "body"),
        ({"entityTemplateName": "customer", "saveCds": "maybe"}, "SELECT 1", "saveCds"),
    ],
)
def test_process_query_refuses_bad_requests_naming_the_field(api, carol_sandbox, params, body, field):
    url = f"{carol_sandbox.url}/api/v2/bigQuery/processQuery"
    refused = api.post(url, params=params, data=body, headers={"Content-Type": "text/plain"}, timeout=10)
    assert refused.status_code == 400 and refused.json()["possibleResponsibleField"] == field
    assert carol_sandbox.process_queries() == []
