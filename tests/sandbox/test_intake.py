"""Staging intake, batches and summaries, schemas and connectors, over real HTTP."""

from __future__ import annotations

import gzip
import json

import pytest

MIB = 1024 * 1024


def _intake(api, sandbox, staging, body, *, batch=None, seq=None, gz=False, connector=None, raw=False):
    params = {"returnData": "false", "connectorId": connector or sandbox.connector_id}
    if batch is not None:
        params.update(batchId=batch, batchIdSequence=seq)
    data = body if raw else json.dumps(body).encode()
    headers = {"content-type": "application/json"}
    if gz:
        data, headers["Content-Encoding"] = gzip.compress(data), "gzip"
    return api.post(
        f"{sandbox.url}/api/v2/staging/intake/{staging}",
        params=params,
        data=data,
        headers=headers,
        timeout=30,
    )


def _summary(api, sandbox, batch, records, requests_):
    body = {
        "totalRecords": records,
        "totalRequests": requests_,
        "timestampStart": "2026-01-01T00:00:00Z",
        "timestampEnd": "2026-01-01T00:00:01Z",
    }
    return api.post(f"{sandbox.url}/api/v3/staging/batch/{batch}/summary", json=body, timeout=10)


def test_plain_and_gzip_chunks_are_stored_with_their_batch_and_sequence(api, carol_sandbox):
    assert (
        _intake(api, carol_sandbox, "customers", [{"id": 1}, {"id": 2}], batch="b1", seq=1).status_code == 200
    )
    assert (
        _intake(api, carol_sandbox, "customers", [{"id": 3}], batch="b1", seq=2, gz=True).status_code == 200
    )
    rows = carol_sandbox.staging("customers")
    assert [(r["batchId"], r["batchIdSequence"], r["record"]["id"]) for r in rows] == [
        ("b1", 1, 1),
        ("b1", 1, 2),
        ("b1", 2, 3),
    ]
    assert carol_sandbox.staging_count("customers") == 3


def test_redelivered_sequence_replaces_its_chunk_and_counts_redelivery_and_conflict(api, carol_sandbox):
    _intake(api, carol_sandbox, "stg", [{"id": 1}, {"id": 2}], batch="b", seq=1)
    _intake(api, carol_sandbox, "stg", [{"id": 1}, {"id": 2}], batch="b", seq=1, gz=True)
    _intake(api, carol_sandbox, "stg", [{"id": 3}], batch="b", seq=3)
    _intake(api, carol_sandbox, "stg", [{"id": 30}], batch="b", seq=3)
    assert sorted(r["id"] for r in carol_sandbox.records("stg")) == [1, 2, 30]
    batch = carol_sandbox.batch("b")
    assert (batch["redeliveries"], batch["conflicts"], batch["deliveries"]) == (2, 1, 4)
    assert (batch["records"], batch["requests"]) == (3, 2)
    assert batch["sequences"] == [1, 3]
    assert batch["missing_sequences"] == [2]
    assert batch["stagings"] == ["stg"]
    assert batch["connector"] == carol_sandbox.connector_id


def test_summary_is_recorded_and_matched_against_distinct_chunks(api, carol_sandbox):
    _intake(api, carol_sandbox, "stg", [{"id": 1}, {"id": 2}], batch="good", seq=1)
    _intake(api, carol_sandbox, "stg", [{"id": 1}, {"id": 2}], batch="good", seq=1)
    _intake(api, carol_sandbox, "stg", [{"id": 3}], batch="bad", seq=1)
    assert _summary(api, carol_sandbox, "good", 2, 1).status_code == 200
    _summary(api, carol_sandbox, "bad", 5, 1)
    _summary(api, carol_sandbox, "bad", 5, 1)
    good, bad = carol_sandbox.batch("good"), carol_sandbox.batch("bad")
    assert good["totals_match"] is True
    assert good["summary"]["totalRecords"] == 2
    assert (bad["totals_match"], bad["summaries_posted"]) == (False, 2)


def test_summary_without_required_fields_is_400(api, carol_sandbox):
    response = api.post(
        f"{carol_sandbox.url}/api/v3/staging/batch/x/summary", json={"totalRecords": 1}, timeout=10
    )
    assert response.status_code == 400


def test_intake_without_batch_is_appended(api, carol_sandbox):
    _intake(api, carol_sandbox, "loose", [{"id": 1}])
    _intake(api, carol_sandbox, "loose", [{"id": 1}])
    rows = carol_sandbox.staging("loose")
    assert [(r["batchId"], r["record"]) for r in rows] == [(None, {"id": 1}), (None, {"id": 1})]
    assert carol_sandbox.batches() == []


def test_body_over_10_mib_decoded_is_413_even_when_gzip_is_small(api, carol_sandbox):
    payload = json.dumps([{"pad": "x" * MIB} for _ in range(11)]).encode()
    response = _intake(api, carol_sandbox, "big", payload, raw=True, gz=True)
    assert response.status_code == 413
    assert response.json()["errorCode"] == 413
    assert carol_sandbox.staging_count("big") == 0


def test_plain_body_over_10_mib_is_413(api, carol_sandbox):
    payload = json.dumps([{"pad": "x" * (10 * MIB)}]).encode()
    response = _intake(api, carol_sandbox, "big", payload, raw=True)
    assert response.status_code == 413
    assert "10485760 bytes" in response.json()["errorMessage"]


def test_body_just_under_10_mib_is_accepted(api, carol_sandbox):
    payload = json.dumps([{"pad": "x" * (10 * MIB - 20)}]).encode()
    assert len(payload) <= 10 * MIB
    assert _intake(api, carol_sandbox, "big", payload, raw=True, gz=True).status_code == 200


@pytest.mark.parametrize(
    ("body", "gz", "message"),
    [
        (b'[{"a": NaN}]', True, "NaN/Infinity literals are not valid JSON"),
        (b'[{"a": -Infinity}]', False, "NaN/Infinity literals are not valid JSON"),
        (b'[{"a": 1}', False, "Invalid JSON"),
        (b'{"a": 1}', False, "JSON array of objects"),
        (b"[1, 2]", False, "JSON array of objects"),
        (gzip.compress(b'[{"a": 1}]'), False, "no 'Content-Encoding: gzip'"),
    ],
    ids=["nan-gzip", "infinity-plain", "truncated-json", "object", "array-of-ints", "gzip-without-header"],
)
def test_invalid_bodies_are_400_with_a_message_saying_why(api, carol_sandbox, body, gz, message):
    response = _intake(api, carol_sandbox, "bad", body, raw=True, gz=gz)
    assert response.status_code == 400
    assert message in response.json()["errorMessage"]


def test_truncated_gzip_is_400(api, carol_sandbox):
    data = gzip.compress(json.dumps([{"id": i} for i in range(1000)]).encode())
    response = api.post(
        f"{carol_sandbox.url}/api/v2/staging/intake/stg",
        data=data[: len(data) // 2],
        params={"connectorId": carol_sandbox.connector_id},
        headers={"Content-Encoding": "gzip", "content-type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 400
    assert "gzip" in response.json()["errorMessage"]


def test_unknown_connector_is_404_and_extra_pycarol_params_are_accepted(api, carol_sandbox):
    assert _intake(api, carol_sandbox, "stg", [{"id": 1}], connector="0" * 32).status_code == 404
    url = (
        f"{carol_sandbox.url}/api/v2/staging/intake/stg?returnData=false&connectorId="
        f"{carol_sandbox.connector_id}&batchId=t-pycarol-1&batchIdSequence=1&whatever=True"
    )
    assert api.post(url, json=[{"id": 1}], timeout=10).status_code == 200


def test_admin_staging_view_pages_and_filters_by_connector(api, carol_sandbox):
    other = api.post(f"{carol_sandbox.url}/api/v1/connectors", json={"mdmName": "other"}, timeout=10).json()
    _intake(api, carol_sandbox, "stg", [{"id": i} for i in range(5)], batch="b", seq=1)
    _intake(api, carol_sandbox, "stg", [{"id": 99}], connector=other["mdmId"])
    page = carol_sandbox.session.get(
        f"{carol_sandbox.url}/__sandbox/staging/stg", params={"offset": 1, "limit": 2}, timeout=10
    ).json()
    assert page["count"] == 6
    assert [r["record"]["id"] for r in page["records"]] == [1, 2]
    assert carol_sandbox.staging_count("stg", connector_id=other["mdmId"]) == 1


def test_schema_get_is_404_until_posted_then_put_replaces_and_drop_removes(api, carol_sandbox):
    base = f"{carol_sandbox.url}/api/v2/staging/tables/customers"
    params = {"connectorId": carol_sandbox.connector_id}
    schema = {
        "mdmStagingType": "customers",
        "mdmFlexible": False,
        "mdmCrosswalkTemplate": {"mdmCrossreference": {"customers": ["id"]}},
        "mdmStagingMapping": {"properties": {"id": {"type": "integer"}}},
    }
    assert api.get(f"{base}/schema", params=params, timeout=10).status_code == 404
    assert api.post(f"{base}/schema", params=params, json=schema, timeout=10).status_code == 200
    fetched = api.get(f"{base}/schema", params=params, timeout=10).json()
    assert fetched["mdmCrosswalkTemplate"] == schema["mdmCrosswalkTemplate"]
    schema["mdmFlexible"] = True
    api.put(f"{base}/schema", params=params, json=schema, timeout=10)
    assert api.get(f"{base}/schema", params=params, timeout=10).json()["mdmFlexible"] is True
    tables = api.get(
        f"{carol_sandbox.url}/api/v1/staging/connectors/{carol_sandbox.connector_id}/tables", timeout=10
    ).json()
    assert tables == ["customers"]
    drop_params = {**params, "rejectOnNoSchema": "False", "rejectOnETLExistence": "False"}
    assert api.delete(f"{base}/drop", params=drop_params, timeout=10).status_code == 200
    assert api.get(f"{base}/schema", params=params, timeout=10).status_code == 404


def test_connectors_create_duplicate_get_list_and_delete(api, carol_sandbox):
    base = f"{carol_sandbox.url}/api/v1/connectors"
    body = {"mdmName": "crm", "mdmGroupName": "Others", "mdmLabel": {"en-US": "crm"}}
    created = api.post(base, json=body, timeout=10).json()
    duplicate = api.post(base, json=body, timeout=10)
    assert len(created["mdmId"]) == 32
    assert duplicate.status_code == 400
    assert "already exists" in duplicate.json()["errorMessage"]
    assert api.get(f"{base}/name/crm", timeout=10).json()["mdmId"] == created["mdmId"]
    missing = api.get(f"{base}/name/nope", timeout=10)
    assert (missing.status_code, missing.json()["errorMessage"]) == (404, "Not found")
    assert api.get(f"{base}/name/sandbox_connector", timeout=10).json()["mdmId"] == carol_sandbox.connector_id
    page = api.get(base, params={"offset": 1, "pageSize": "1", "includeMappings": "False"}, timeout=10).json()
    assert (page["count"], page["totalHits"], page["hits"][0]["mdmName"]) == (1, 2, "crm")
    assert api.delete(f"{base}/{created['mdmId']}?forceDeletion=True", timeout=10).status_code == 200
    assert api.get(f"{base}/{created['mdmId']}", timeout=10).status_code == 404
