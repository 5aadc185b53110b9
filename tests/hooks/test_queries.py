"""processQuery and named queries through CarolHook against the sandbox over HTTP."""

from __future__ import annotations

import itertools

import pytest

from airflow_provider_carol.exceptions import (
    CarolApiError,
    CarolConfigError,
    CarolInvalidRequest,
    CarolStartedUnreadable,
)
from tests.hooks.hookutil import fast_retry_hook

SQL = "SELECT id, name FROM `stg_erp_customers` WHERE active"


def customers(n: int) -> list[dict]:
    return [{"id": i, "name": f"c{i}", "region": "NE" if i % 2 else "S"} for i in range(n)]


def query_calls(sandbox) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in sandbox.requests(path="*/queries/*")]


# ------------------------------------------------------------------------------------------- named queries
def test_named_query_returns_every_page_through_the_scroll(carol_sandbox):
    carol_sandbox.add_named_query("allCustomers", customers(1234))
    found = fast_retry_hook().named_query("allCustomers", page_size=100)
    assert found == customers(1234)  # each hit's mdmGoldenFieldAndValues, in order, none twice
    calls = query_calls(carol_sandbox)
    assert calls[0] == ("POST", "/api/v2/queries/named/allCustomers")
    assert len(calls) == 13 and all(path.startswith("/api/v2/queries/filter/") for _, path in calls[1:])
    first = carol_sandbox.requests(path="/api/v2/queries/named/allCustomers")[0]
    assert "pageSize=100" in first["query"] and "scrollable=true" in first["query"]


def test_params_fill_the_query_and_a_missing_one_is_carols_400_naming_it(carol_sandbox):
    carol_sandbox.add_named_query("byRegion", customers(10), params=["region"])
    assert [c["id"] for c in fast_retry_hook().named_query("byRegion", {"region": "NE"})] == [1, 3, 5, 7, 9]
    with pytest.raises(CarolInvalidRequest, match="Parameter region is required") as refused:
        fast_retry_hook().named_query("byRegion", {})
    assert refused.value.status_code == 400


def test_the_iterator_fetches_a_page_only_when_it_is_needed(carol_sandbox):
    carol_sandbox.add_named_query("allCustomers", customers(500))
    records = fast_retry_hook().iter_named_query("allCustomers", page_size=50)
    first = list(itertools.islice(records, 60))
    assert [c["id"] for c in first] == list(range(60))
    assert len(query_calls(carol_sandbox)) == 2  # the first page and one scroll, not all ten


def test_max_hits_and_raw_hits(carol_sandbox):
    carol_sandbox.add_named_query("allCustomers", customers(300), data_model="customer")
    capped = fast_retry_hook().named_query("allCustomers", page_size=100, max_hits=150)
    assert [c["id"] for c in capped] == list(range(150)) and len(query_calls(carol_sandbox)) == 2
    raw = fast_retry_hook().named_query("allCustomers", page_size=100, golden_values=False, max_hits=1)
    assert raw[0]["mdmEntityType"] == "customerGolden" and raw[0]["mdmGoldenFieldAndValues"]["id"] == 0


def test_an_empty_result_is_one_request(carol_sandbox):
    carol_sandbox.add_named_query("nobody", [])
    assert fast_retry_hook().named_query("nobody") == [] and len(query_calls(carol_sandbox)) == 1


def test_an_unknown_named_query_is_not_found(carol_sandbox):
    with pytest.raises(CarolApiError, match="Named query missing Not found"):
        fast_retry_hook().named_query("missing")


def test_a_scroll_that_stops_early_is_an_error_not_a_short_result(carol_sandbox):
    carol_sandbox.add_named_query("allCustomers", customers(30))
    # Carol answers the first page without a scrollId although 30 records are due.
    page = {"totalHits": 30, "count": 10, "hits": [{"mdmGoldenFieldAndValues": c} for c in customers(10)]}
    carol_sandbox.add_fault("/api/v2/queries/named/allCustomers", status=200, body=page)
    with pytest.raises(CarolApiError, match="returned 10 of 30 records and no scrollId"):
        fast_retry_hook().named_query("allCustomers", page_size=10)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"name": ""}, "non-empty string"),
        ({"name": "q", "page_size": 0}, "page_size must be between 1 and 10000"),
        ({"name": "q", "index_type": "GOLDEN"}, "index_type must be one of"),
        ({"name": "q", "params": ["region"]}, "params must be a mapping"),
    ],
)
def test_bad_named_query_arguments_fail_before_any_request(carol_sandbox, kwargs, error):
    with pytest.raises(CarolConfigError, match=error):
        fast_retry_hook().named_query(**kwargs)
    assert carol_sandbox.requests() == []


# ------------------------------------------------------------------------------------------- processQuery
def test_process_query_posts_the_sql_as_text_with_every_flag_and_returns_the_task(carol_sandbox):
    task = fast_retry_hook().process_query(
        SQL, "customer", flags={"clearCds": True}, extra_params={"priority": "HIGH"}
    )
    (call,) = carol_sandbox.process_queries()
    assert call["sql"] == SQL and call["task_id"] == task.task_id
    assert call["params"] == {
        "entityTemplateName": "customer",
        "saveCds": "true",
        "clearCds": "true",
        "sendSubscriptions": "true",
        "clearRealtime": "false",
        "sendRealtime": "false",
        "useDataflow": "false",
        "saveBigQuery": "false",
        "clearBigQuery": "false",
        "deduplicateResults": "false",
        "priority": "HIGH",
    }
    assert carol_sandbox.task(task.task_id)["mdmTaskName"] == "processQuery/customer"


def test_process_query_is_never_resent(carol_sandbox):
    carol_sandbox.add_fault("/api/v2/bigQuery/processQuery", method="POST", status=503, times=1)
    with pytest.raises(CarolApiError) as failed:
        fast_retry_hook().process_query(SQL, "customer")
    assert failed.value.status_code == 503
    posts = carol_sandbox.requests(path="/api/v2/bigQuery/processQuery")
    assert len(posts) == 1  # a resend could process the data model twice


@pytest.mark.parametrize(
    ("args", "kwargs", "error"),
    [
        (("", "customer"), {}, "sql must be a non-empty"),
        ((SQL, " "), {}, "data_model must be a non-empty"),
        ((SQL, "customer"), {"flags": {"saveCDS": True}}, "Unknown processQuery flags \\['saveCDS'\\]"),
        ((SQL, "customer"), {"flags": {"saveCds": "yes"}}, "saveCds must be True or False"),
        ((SQL, "customer"), {"extra_params": {"saveCds": "false"}}, "extra_params repeats \\['saveCds'\\]"),
    ],
)
def test_bad_process_query_arguments_fail_before_any_request(carol_sandbox, args, kwargs, error):
    with pytest.raises(CarolConfigError, match=error):
        fast_retry_hook().process_query(*args, **kwargs)
    assert carol_sandbox.requests() == []


@pytest.mark.parametrize("shape", ["top", "data", "task_id", "data_task_id"])
def test_process_query_reads_the_task_id_in_every_task_start_shape(carol_sandbox, shape):
    """No caller ever read processQuery's answer (carol-evidence.md): every task-start shape is accepted."""
    carol_sandbox.set_shapes(process_query=shape)
    task = fast_retry_hook().process_query(SQL, "customer")
    (call,) = carol_sandbox.process_queries()
    assert task.task_id == call["task_id"]


@pytest.mark.parametrize(
    ("shape", "error"), [("refused", CarolApiError), ("unreadable", CarolStartedUnreadable)]
)
def test_process_query_that_cannot_be_read_fails_once_and_is_never_resent(carol_sandbox, shape, error):
    carol_sandbox.set_shapes(process_query=shape)
    with pytest.raises(error):
        fast_retry_hook().process_query(SQL, "customer")
    assert len(carol_sandbox.process_queries()) == 1
