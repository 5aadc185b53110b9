"""Fault injection, the request log and reset, observed from a real HTTP client."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.dagutil import wait_until


def _chunk(api, sandbox, seq, staging="stg"):
    return api.post(
        f"{sandbox.url}/api/v2/staging/intake/{staging}",
        json=[{"seq": seq}],
        timeout=10,
        params={"connectorId": sandbox.connector_id, "batchId": "b", "batchIdSequence": seq},
    )


def test_status_fault_answers_with_retry_after_for_the_next_n_matching_requests(api, carol_sandbox):
    carol_sandbox.add_fault("/api/v2/staging/intake/*", method="POST", status=503, times=2, retry_after=7)
    first, second, third = (_chunk(api, carol_sandbox, seq) for seq in (1, 2, 3))
    assert [r.status_code for r in (first, second, third)] == [503, 503, 200]
    assert first.headers["Retry-After"] == "7"
    assert first.json()["errorCode"] == 503
    assert [r["record"]["seq"] for r in carol_sandbox.staging("stg")] == [3]
    assert carol_sandbox.faults() == []


def test_fault_only_hits_its_method_and_path_and_can_carry_a_custom_body(api, carol_sandbox):
    carol_sandbox.add_fault("/api/v1/tasks/*", method="GET", status=429, body={"errorMessage": "slow down"})
    assert _chunk(api, carol_sandbox, 1).status_code == 200
    response = api.get(f"{carol_sandbox.url}/api/v1/tasks/abc", timeout=10)
    assert (response.status_code, response.json()) == (429, {"errorMessage": "slow down"})


def test_latency_fault_delays_then_processes_normally(api, carol_sandbox):
    carol_sandbox.add_fault("/api/v1/tenants/current", latency=0.4)
    started = time.monotonic()
    response = api.get(f"{carol_sandbox.url}/api/v1/tenants/current", timeout=10)
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.4


def test_hold_fault_parks_requests_until_released_then_processes_them(api, carol_sandbox):
    carol_sandbox.add_fault("/api/v2/staging/intake/stg", method="POST", hold=True, times=1000)
    with ThreadPoolExecutor(2) as pool:
        sent = [pool.submit(_chunk, api, carol_sandbox, seq) for seq in (1, 2)]
        wait_until(lambda: carol_sandbox.held() == 2, "both chunks to be held")
        assert carol_sandbox.staging_count("stg") == 0 and not any(f.done() for f in sent)
        assert carol_sandbox.release_held() == 2
        assert [f.result().status_code for f in sent] == [200, 200]
    assert (carol_sandbox.held(), carol_sandbox.faults()) == (0, [])  # the hold fault went with the release
    assert _chunk(api, carol_sandbox, 3).status_code == 200  # ... so the next request is not held
    assert carol_sandbox.staging_count("stg") == 3
    assert [e["fault"] for e in carol_sandbox.requests()[-3:]] == ["hold", "hold", None]


def test_reset_releases_held_requests(api, carol_sandbox):
    carol_sandbox.add_fault("/api/v1/tenants/current", hold=True)
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(api.get, f"{carol_sandbox.url}/api/v1/tenants/current", timeout=30)
        wait_until(lambda: carol_sandbox.held() == 1, "the request to be held")
        carol_sandbox.reset()
        # Answered, not left hanging; after the reset its token is unknown, as every issued token is.
        assert held.result().status_code == 401
    assert carol_sandbox.held() == 0


def test_drop_before_closes_the_connection_and_stores_nothing(api, carol_sandbox):
    carol_sandbox.add_fault("/api/v2/staging/intake/stg", drop="before")
    with pytest.raises(requests.ConnectionError):
        _chunk(api, carol_sandbox, 1)
    assert carol_sandbox.staging_count("stg") == 0
    assert _chunk(api, carol_sandbox, 1).status_code == 200  # the session reconnects
    assert carol_sandbox.staging_count("stg") == 1


def test_drop_after_stores_the_chunk_then_closes_without_answering(api, carol_sandbox):
    carol_sandbox.add_fault("/api/v2/staging/intake/stg", drop="after")
    with pytest.raises(requests.ConnectionError):
        _chunk(api, carol_sandbox, 1)
    assert carol_sandbox.staging_count("stg") == 1
    _chunk(api, carol_sandbox, 1)  # the client's retry is a redelivery, not a duplicate
    assert carol_sandbox.staging_count("stg") == 1
    assert carol_sandbox.batch("b")["redeliveries"] == 1


def test_request_log_records_carol_calls_with_status_but_not_admin_calls(api, carol_sandbox):
    carol_sandbox.add_fault("/api/v1/connectors", status=500)
    api.get(f"{carol_sandbox.url}/api/v1/connectors", params={"offset": 0}, timeout=10)
    api.get(f"{carol_sandbox.url}/api/v1/connectors/name/none", timeout=10)
    log = carol_sandbox.requests()
    tail = [(e["method"], e["path"], e["query"], e["status"], e["fault"]) for e in log[-2:]]
    assert tail == [
        ("GET", "/api/v1/connectors", "offset=0", 500, "status"),
        ("GET", "/api/v1/connectors/name/none", "", 404, None),
    ]
    assert not any(e["path"].startswith("/__sandbox/") for e in log)


def test_request_log_filters_narrow_by_method_path_glob_and_status(api, carol_sandbox):
    carol_sandbox.add_fault("/api/v1/connectors", status=500)
    api.get(f"{carol_sandbox.url}/api/v1/connectors", timeout=10)
    api.get(f"{carol_sandbox.url}/api/v1/connectors/name/none", timeout=10)
    _chunk(api, carol_sandbox, 1)

    def calls(**filters):
        return [(e["method"], e["path"], e["status"]) for e in carol_sandbox.requests(**filters)]

    assert calls() == [
        ("POST", "/api/v5/oauth2/token", 200),  # the api fixture's login
        ("GET", "/api/v1/connectors", 500),
        ("GET", "/api/v1/connectors/name/none", 404),
        ("POST", "/api/v2/staging/intake/stg", 200),
    ]
    assert calls(method="post") == [
        ("POST", "/api/v5/oauth2/token", 200),
        ("POST", "/api/v2/staging/intake/stg", 200),
    ]
    assert calls(path="/api/v1/connectors") == [("GET", "/api/v1/connectors", 500)]  # no wildcard: exact
    assert calls(path="/api/v1/connectors*") == [
        ("GET", "/api/v1/connectors", 500),
        ("GET", "/api/v1/connectors/name/none", 404),
    ]
    assert calls(path="*/none") == [("GET", "/api/v1/connectors/name/none", 404)]
    assert calls(path="*/intake/*", method="GET") == []
    assert calls(status=404) == [("GET", "/api/v1/connectors/name/none", 404)]
    assert calls(method="GET", path="*connectors*", status=500) == [("GET", "/api/v1/connectors", 500)]


def test_invalid_fault_specs_are_rejected(carol_sandbox):
    for spec in (
        {"path": "no-slash", "status": 500},
        {"path": "/x", "drop": "sideways"},
        {"path": "/x"},
        {"path": "/x", "status": 500, "times": 0},
        {"path": "/x", "hold": "yes"},
    ):
        response = carol_sandbox.session.post(f"{carol_sandbox.url}/__sandbox/faults", json=spec, timeout=10)
        assert response.status_code == 400, spec


def test_reset_clears_data_faults_tasks_and_log_but_keeps_seeded_credentials(api, carol_sandbox):
    _chunk(api, carol_sandbox, 1)
    carol_sandbox.add_fault("/nothing", status=500)
    task_id = carol_sandbox.create_task([{"status": "RUNNING", "after": 0}])
    api.post(f"{carol_sandbox.url}/api/v1/connectors", json={"mdmName": "extra"}, timeout=10)
    carol_sandbox.configure(token_ttl=5)
    carol_sandbox.reset()
    assert carol_sandbox.staging_count("stg") == 0
    assert (carol_sandbox.batches(), carol_sandbox.faults(), carol_sandbox.requests()) == ([], [], [])
    assert (
        carol_sandbox.session.get(f"{carol_sandbox.url}/__sandbox/tasks/{task_id}", timeout=10).status_code
        == 404
    )
    token = carol_sandbox.issue_token()
    assert token["expires_in"] == 3600
    connectors = requests.get(
        f"{carol_sandbox.url}/api/v1/connectors", timeout=10, headers={"Authorization": token["access_token"]}
    ).json()
    assert [c["mdmId"] for c in connectors["hits"]] == [carol_sandbox.connector_id]


def test_drop_after_works_over_tls_too(carol_sandbox_tls):
    sandbox = carol_sandbox_tls
    sandbox.add_fault("/api/v2/staging/intake/*", drop="after")
    with requests.Session() as session:
        session.headers.update({"x-auth-key": sandbox.api_key, "x-auth-connectorid": sandbox.connector_id})
        with pytest.raises(requests.ConnectionError):
            _chunk_tls(session, sandbox)
        assert _chunk_tls(session, sandbox).status_code == 200
    assert sandbox.staging_count("stg") == 1
    assert sandbox.requests()[0]["fault"] == "drop_after"


def _chunk_tls(session, sandbox):
    params = {"connectorId": sandbox.connector_id, "batchId": "b", "batchIdSequence": 1}
    return session.post(
        f"{sandbox.url}/api/v2/staging/intake/stg",
        json=[{"seq": 1}],
        params=params,
        timeout=10,
        verify=sandbox.ca_bundle,
    )


def test_rate_fault_hits_a_seeded_random_share_of_matching_requests(api, carol_sandbox):
    def statuses(staging: str) -> list[int]:
        carol_sandbox._admin("DELETE", "faults")
        carol_sandbox._admin(
            "POST",
            "faults",
            json={"path": "/api/v2/staging/intake/*", "status": 503, "times": 1000, "rate": 0.25, "seed": 7},
        )
        return [_chunk(api, carol_sandbox, seq, staging).status_code for seq in range(1, 81)]

    first, second = statuses("first"), statuses("second")
    assert first == second  # the same seed fails the same requests
    assert set(first) == {200, 503} and 8 <= first.count(503) <= 35
    stored = sorted(row["batchIdSequence"] for row in carol_sandbox.staging("second"))
    assert stored == [seq for seq, status in enumerate(second, 1) if status == 200]
    (pending,) = carol_sandbox.faults()
    assert (pending["rate"], pending["seed"], pending["times"]) == (0.25, 7, 1000 - second.count(503))


def test_rate_fault_rejects_a_rate_outside_0_to_1(carol_sandbox):
    for rate in (0, 1.5, "half"):
        with pytest.raises(requests.HTTPError) as refused:
            carol_sandbox._admin("POST", "faults", json={"path": "/api/*", "status": 500, "rate": rate})
        assert refused.value.response.json()["possibleResponsibleField"] == "rate"
