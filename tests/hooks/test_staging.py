"""Staging through CarolHook against the sandbox over HTTP: exactly once, faults, bad input, batches."""

from __future__ import annotations

import datetime as dt
import json
import zlib
from urllib.parse import parse_qs

import pandas as pd
import pyarrow as pa
import pytest

from airflow_provider_carol.exceptions import CarolApiError, CarolConfigError, CarolError
from airflow_provider_carol.hooks.carol import CarolHook
from airflow_provider_carol.hooks.staging.ack_ledger import AckLedger
from airflow_provider_carol.hooks.staging.codec import Chunker
from airflow_provider_carol.hooks.staging.sender import IntakeSender, IntakeStats
from tests.hooks.hookutil import fast_retry_hook

INTAKE = "/api/v2/staging/intake/*"


def rows(n: int, start: int = 0) -> list[dict]:
    return [
        {"id": i, "name": f"customer {i}", "amount": i * 1.25, "tags": {"tier": i % 3}}
        for i in range(start, n)
    ]


def stored_ids(sandbox, staging="customers") -> list[int]:
    return sorted(record["id"] for record in sandbox.records(staging))


def intake_calls(sandbox) -> list[dict]:
    return sandbox.requests(path=INTAKE)


def only_batch(sandbox) -> dict:
    (batch,) = sandbox.batches()
    return batch


def test_records_arrive_exactly_once_with_a_matching_summary(carol_sandbox):
    summary = fast_retry_hook().send_to_staging("customers", rows(2500), chunk_size=1000)
    assert stored_ids(carol_sandbox) == list(range(2500))
    batch = only_batch(carol_sandbox)
    assert batch["batchId"] == summary.batch_id and summary.batch_id.startswith(carol_sandbox.tenant_id)
    assert (batch["sequences"], batch["missing_sequences"], batch["redeliveries"]) == ([1, 2, 3], [], 0)
    assert batch["summary"]["totalRecords"] == 2500 and batch["totals_match"] is True
    assert (summary.records, summary.requests, summary.summary_sent) == (2500, 3, True)
    assert summary.compressed_bytes < summary.bytes


def test_each_call_outside_airflow_gets_its_own_batch_id(carol_sandbox):
    first = fast_retry_hook().send_to_staging("customers", rows(10))
    second = fast_retry_hook().send_to_staging("customers", rows(20, 10))
    assert first.batch_id != second.batch_id
    assert stored_ids(carol_sandbox) == list(range(20))


@pytest.mark.parametrize("kind", ["json", "dataframe", "arrow"])
def test_json_strings_dataframes_and_arrow_tables_are_sent(carol_sandbox, kind):
    data = [
        {"id": 1, "at": dt.datetime(2024, 1, 1, 12, tzinfo=dt.timezone.utc), "x": 0.5},
        {"id": 2, "at": None, "x": None},
    ]
    source = {
        "json": lambda: json.dumps(data, default=str),
        "dataframe": lambda: pd.DataFrame(data),
        "arrow": lambda: pa.Table.from_pylist(data),
    }[kind]()
    fast_retry_hook().send_to_staging("customers", source)
    stored = carol_sandbox.records("customers")
    assert [r["id"] for r in stored] == [1, 2]
    assert stored[1]["x"] is None and stored[1]["at"] is None
    assert stored[0]["at"] in ("2024-01-01T12:00:00Z", "2024-01-01 12:00:00+00:00")


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 429, "retry_after": 1, "times": 2},
        {"status": 503, "times": 2},
        {"drop": "before", "times": 1},
        {"drop": "after", "times": 2},
    ],
    ids=["429-retry-after", "503", "drop-before", "drop-after"],
)
def test_transient_intake_faults_still_store_every_record_once(carol_sandbox, fault):
    carol_sandbox.add_fault(INTAKE, method="POST", **fault)
    fast_retry_hook().send_to_staging("customers", rows(3000), chunk_size=500, max_in_flight=2)
    assert stored_ids(carol_sandbox) == list(range(3000))
    batch = only_batch(carol_sandbox)
    assert batch["missing_sequences"] == [] and batch["conflicts"] == 0 and batch["totals_match"] is True
    assert batch["summary"]["totalRequests"] == 6
    assert any(r["fault"] for r in intake_calls(carol_sandbox))  # the fault did hit an intake request
    if fault.get("drop") == "after":
        assert batch["redeliveries"] == 2  # processed, answer lost, resent: replaced, not duplicated


@pytest.mark.parametrize("status", [408, 409, 520, 598])
def test_intake_is_resent_on_every_status_pycarol_resends_it_on(carol_sandbox, status):
    """pycarol resends an intake chunk, same URL and batchIdSequence, on 408, 409, 429, 500, 502, 503,
    504, 520, 524 and 598 (staging.py L259-263); these four were the ones a send did not survive."""
    carol_sandbox.add_fault(INTAKE, method="POST", status=status, times=2)
    fast_retry_hook().send_to_staging("customers", rows(1000), chunk_size=500, max_in_flight=1)
    assert stored_ids(carol_sandbox) == list(range(1000))
    batch = only_batch(carol_sandbox)
    assert batch["missing_sequences"] == [] and batch["totals_match"] is True
    calls = intake_calls(carol_sandbox)
    assert [c["status"] for c in calls] == [status, status, 200, 200]
    assert len({c["query"] for c in calls[:3]}) == 1  # resent as is: the same batchId and batchIdSequence


def test_intake_is_not_resent_on_a_status_that_says_the_chunk_is_wrong(carol_sandbox):
    carol_sandbox.add_fault(INTAKE, method="POST", status=400, times=1)
    with pytest.raises(CarolApiError, match="HTTP 400"):
        fast_retry_hook().send_to_staging("customers", rows(10))
    assert [c["status"] for c in intake_calls(carol_sandbox)] == [400]


def test_token_expiry_mid_batch_is_recovered(carol_sandbox):
    carol_hook = fast_retry_hook()
    with carol_hook.staging_batch() as batch:
        batch.send("customers", rows(1000), chunk_size=250)
        assert carol_sandbox.expire_tokens() >= 1
        batch.send("customers", rows(2000, 1000), chunk_size=250)
    assert stored_ids(carol_sandbox) == list(range(2000))
    record = only_batch(carol_sandbox)
    assert record["sequences"] == list(range(1, 9)) and record["totals_match"] is True
    # The first request after the expiry (the drift check's schema read) gets the 401 and re-authenticates.
    assert carol_sandbox.requests(path="/api/v*", status=401)


def test_a_refused_chunk_fails_with_staging_chunk_status_and_carol_text_and_no_summary(carol_sandbox):
    carol_sandbox.add_fault(
        "/api/v2/staging/intake/customers",
        method="POST",
        status=500,
        times=50,
        body={"errorMessage": "disk full", "errorCode": 500},
    )
    with pytest.raises(CarolApiError) as failure:
        CarolHook(retry_delay=0.01, retry_limit=1).send_to_staging("customers", rows(100), chunk_size=50)
    message = str(failure.value)
    assert "Staging 'customers'" in message and "chunk " in message and "HTTP 500" in message
    assert "disk full" in message and failure.value.status_code == 500
    assert all(batch["summary"] is None for batch in carol_sandbox.batches())
    assert not carol_sandbox.requests(path="*/summary*")


@pytest.mark.parametrize(
    "data, error",
    [
        ([*rows(10), {"id": 10, "bad": object()}], r"Row 10, field 'bad'"),
        ([*rows(10), {"id": 10, "blob": "x" * (10 * 1024 * 1024)}], r"Row 10 encodes to"),
        ([*rows(3), "not a record"], r"Row 3: a staging record must be a JSON object"),
        ("{not json", r"not a JSON array of objects"),
        ({1, 2}, r"data must be a list of dicts"),
    ],
    ids=["unencodable", "too-large", "not-an-object", "bad-json", "unknown-type"],
)
def test_bad_input_is_a_clear_error_and_nothing_is_sent(carol_sandbox, data, error):
    with pytest.raises(CarolConfigError, match=error):
        fast_retry_hook().send_to_staging("customers", data, chunk_size=5)
    assert intake_calls(carol_sandbox) == []
    assert carol_sandbox.batches() == []


def test_aware_datetimes_land_in_utc_when_the_pass_runs_on_the_senders_threads(carol_sandbox):
    """In-memory records are validated whole, then moved to UTC while being sent: same JSON as before."""
    minus3 = dt.timezone(dt.timedelta(hours=-3))
    records = [
        {"id": i, "at": dt.datetime(2024, 1, 1, 21, 30, tzinfo=minus3), "naive": dt.datetime(2024, 1, 2)}
        for i in range(12)
    ]
    records.append({"id": 12, "at": dt.datetime(9999, 12, 31, 23, 0, tzinfo=minus3), "naive": None})
    fast_retry_hook().send_to_staging("customers", records, chunk_size=5)
    stored = {record["id"]: record for record in carol_sandbox.records("customers")}
    assert sorted(stored) == list(range(13))
    assert {stored[i]["at"] for i in range(12)} == {"2024-01-02T00:30:00Z"}
    assert stored[0]["naive"] == "2024-01-02T00:00:00"
    assert stored[12]["at"] == "9999-12-31T23:00:00-03:00"  # past UTC's range: its offset is kept
    assert only_batch(carol_sandbox)["totals_match"] is True


class DictStateStore:
    """Stands in for Airflow's task state store accessor: get/set/delete of JSON values by key."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, key: str, default: object = None) -> object:
        return json.loads(self.values[key]) if key in self.values else default

    def set(self, key: str, value: object) -> None:
        self.values[key] = json.dumps(value)

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


def test_a_retry_of_in_memory_records_skips_the_chunks_an_earlier_try_had_acknowledged(carol_sandbox):
    """Validated-first input leaves the UTC pass and the CRC to the sender's threads; the ledger they
    fill must still match what a retry re-encodes, chunk by chunk."""
    minus3 = dt.timezone(dt.timedelta(hours=-3))
    records = [{"id": i, "at": dt.datetime(2024, 1, 1, i, tzinfo=minus3)} for i in range(23)]
    h, store, batch_id = fast_retry_hook(), DictStateStore(), "resume-in-memory"

    def send(data: list[dict]) -> tuple[IntakeStats, AckLedger]:
        ledger = AckLedger(store, batch_id, h.log)
        sender = IntakeSender(
            h, staging_name="customers", connector_id=h.resolve_connector_id(), batch_id=batch_id
        )
        chunks = Chunker(5, defer_utc=True).chunks([data])
        return sender.send(chunks, validate_first=True, ledger=ledger), ledger

    send(records)
    key = f"carol_staging_acks/{batch_id}"
    expected = {str(c.sequence): zlib.crc32(c.body) for c in Chunker(5, defer_utc=True).chunks([records])}
    assert store.get(key) == expected  # the CRCs the helper thread recorded, one per chunk
    # The killed try had recorded only some acknowledgements, and chunk 5's data changed meanwhile.
    store.set(key, {seq: crc for seq, crc in expected.items() if seq not in {"2", "4"}})
    boundary = len(intake_calls(carol_sandbox))
    records[21]["at"] = dt.datetime(2025, 6, 1, tzinfo=minus3)
    stats, ledger = send(records)
    resent = [int(parse_qs(r["query"])["batchIdSequence"][0]) for r in intake_calls(carol_sandbox)[boundary:]]
    assert sorted(resent) == [2, 4, 5] and ledger.skipped == 2
    assert (stats.records, stats.requests) == (23, 5)
    stored = {record["id"]: record["at"] for record in carol_sandbox.records("customers")}
    assert sorted(stored) == list(range(23))  # re-sent sequences replace, never double
    assert stored[0] == "2024-01-01T03:00:00Z" and stored[21] == "2025-06-01T03:00:00Z"


def test_source_arguments_are_checked_before_any_request(carol_sandbox):
    with pytest.raises(CarolConfigError, match="exactly one source"):
        fast_retry_hook().send_to_staging("customers", rows(1), path="/tmp/x.parquet")
    with pytest.raises(CarolConfigError, match="sql_conn_id"):
        fast_retry_hook().send_to_staging("customers", sql="select 1")
    assert carol_sandbox.requests() == []


def test_staging_batch_spans_stagings_with_one_summary(carol_sandbox):
    with fast_retry_hook().staging_batch() as batch:
        batch.send("customers", rows(300), chunk_size=100)
        batch.send("orders", [{"id": i, "customer": i % 7} for i in range(150)], chunk_size=100)
    record = only_batch(carol_sandbox)
    assert record["stagings"] == ["customers", "orders"]
    assert record["sequences"] == [1, 2, 3, 4, 5] and record["summaries_posted"] == 1
    assert record["summary"]["totalRecords"] == 450 and record["totals_match"] is True


def test_staging_batch_sends_no_summary_when_the_block_fails(carol_sandbox):
    with pytest.raises(RuntimeError, match="boom"), fast_retry_hook().staging_batch() as batch:
        batch.send("customers", rows(100))
        raise RuntimeError("boom")
    assert stored_ids(carol_sandbox) == list(range(100))
    assert only_batch(carol_sandbox)["summary"] is None


def test_connector_get_or_create_is_idempotent(carol_sandbox):
    first = fast_retry_hook().get_or_create_connector("erp", label="ERP", group_name="ERP")
    second = fast_retry_hook().get_or_create_connector("erp")
    assert first == second
    creates = carol_sandbox.requests(method="POST", path="/api/v1/connectors")
    assert len(creates) == 1
    fast_retry_hook().send_to_staging("customers", rows(5), connector_name="erp")
    assert {row["connectorId"] for row in carol_sandbox.staging("customers")} == {first}


def test_schema_is_created_then_updated_only_when_it_changes(carol_sandbox):
    from airflow_provider_carol.hooks.staging.schema import infer_properties, schema_payload

    carol_hook = fast_retry_hook()
    payload = schema_payload("customers", infer_properties(rows(5)), ["id"])
    carol_hook.put_staging_schema("customers", payload)
    carol_hook.put_staging_schema("customers", payload)
    changed = schema_payload("customers", infer_properties(rows(5)), ["id", "name"])
    carol_hook.put_staging_schema("customers", changed)
    writes = [
        r["method"]
        for r in carol_sandbox.requests()
        if r["path"].endswith("/customers/schema") and r["method"] in ("POST", "PUT")
    ]
    assert writes == ["POST", "PUT"]
    stored = carol_hook.get_staging_schema("customers")
    assert stored["mdmCrosswalkTemplate"]["mdmCrossreference"] == {"customers": ["id", "name"]}
    assert stored["mdmStagingMapping"]["properties"]["tags"] == {
        "type": "object",
        "properties": {"tier": {"type": "integer"}},
    }


def test_a_batch_plan_refuses_a_summary_when_a_slice_is_missing(carol_sandbox):
    carol_hook = fast_retry_hook()
    plan = carol_hook.plan_batch([{"data": rows(250)}, {"data": rows(400, 250)}], chunk_size=100)
    assert [p["batch"]["first_sequence"] for p in plan.partitions] == [1, 4]
    first = carol_hook.send_to_staging(
        "customers", batch=plan.partitions[0]["batch"], data=plan.partitions[0]["data"]
    )
    with pytest.raises(CarolError, match="incomplete; no summary sent: partition 1"):
        carol_hook.finish_batch(plan.as_dict(), [first.as_dict()])
    assert only_batch(carol_sandbox)["summary"] is None
    second = carol_hook.send_to_staging(
        "customers", batch=plan.partitions[1]["batch"], data=plan.partitions[1]["data"]
    )
    carol_hook.finish_batch(plan.as_dict(), [first.as_dict(), second.as_dict()])
    record = only_batch(carol_sandbox)
    assert record["sequences"] == [1, 2, 3, 4, 5] and record["totals_match"] is True
    assert stored_ids(carol_sandbox) == list(range(400))


def test_a_slice_whose_source_grew_is_refused_before_sending(carol_sandbox):
    carol_hook = fast_retry_hook()
    plan = carol_hook.plan_batch([{"data": rows(100)}], chunk_size=50)
    with pytest.raises(CarolError, match="more records than the batch plan counted"):
        carol_hook.send_to_staging("customers", rows(150), batch=plan.partitions[0]["batch"])
    with pytest.raises(CarolError, match="batch plan expected 2 chunks; nothing was sent"):
        carol_hook.send_to_staging("customers", rows(40), batch=plan.partitions[0]["batch"])
    assert intake_calls(carol_sandbox) == []
