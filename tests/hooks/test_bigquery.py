"""BigQuery part of CarolHook: the temporary key (cache, renewal, masking, no blind retry), the clients
against the real local-bigquery emulator, Storage Read API reads, and the error mapping."""
from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from airflow.providers.common.compat.sdk import redact

from airflow_provider_carol.exceptions import CarolApiError, CarolBigQueryError, CarolConfigError
from airflow_provider_carol.hooks.bigquery.keys import TEMPORARY_KEYS, TemporaryKey, parse_key_expiry
from airflow_provider_carol.hooks.bigquery.labels import (
    build_labels,
    sanitize_label_key,
    sanitize_label_value,
)
from airflow_provider_carol.hooks.carol import CarolHook
from tests.bigquery_fixtures import BigQueryFaultProxy

KEY_PATH = "/sql/v1/api/v1/create_temporary_key"


def key_posts(sandbox) -> list[int]:
    return [r["status"] for r in sandbox.requests(path=KEY_PATH)]


# ---------------------------------------------------------------------------------------------- pure
def test_labels_are_sanitised_to_bigquery_rules():
    assert sanitize_label_value("Manual__2026-11-26T22:39:33+00:00") == "manual__2026-11-26t22_39_33_00_00"
    assert sanitize_label_value("x" * 100) == "x" * 63
    assert sanitize_label_key("9lives") == "l_9lives"
    assert sanitize_label_key("Dag ID") == "dag_id"
    assert build_labels({"a": "B", "empty": " ", "none": None}, {"a": "c"}) == {"a": "c"}
    with pytest.raises(CarolConfigError, match="at most 64"):
        build_labels({f"k{i}": "v" for i in range(65)})


def test_key_expiry_parsing_and_renewal_margin():
    minted = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    assert parse_key_expiry("2026-01-02T00:00:00.000000Z", minted, 24) == minted + dt.timedelta(days=1)
    assert parse_key_expiry("2026-01-01T06:00:00Z", minted, 24) == minted + dt.timedelta(hours=6)
    # missing or unreadable: the requested lifetime, never "forever" (pycarol's 7-day reset) or a crash
    assert parse_key_expiry(None, minted, 2) == minted + dt.timedelta(hours=2)
    assert parse_key_expiry("tomorrow", minted, 2) == minted + dt.timedelta(hours=2)
    key = TemporaryKey(info={}, expires_at=minted + dt.timedelta(hours=24), minted_at=minted)
    assert not key.needs_renewal(minted + dt.timedelta(hours=23, minutes=54))
    assert key.needs_renewal(minted + dt.timedelta(hours=23, minutes=56))


# ---------------------------------------------------------------------------------------------- the key
def test_credentials_come_from_one_key_cached_per_connection_and_tenant(fresh_bigquery_keys):
    carol_bigquery = fresh_bigquery_keys
    first = CarolHook().get_bigquery_credentials()
    second = CarolHook().get_bigquery_credentials()  # a new hook, same connection and tenant
    assert second is first
    assert first.service_account_email.endswith(f"@{carol_bigquery.project}.iam.gserviceaccount.com")
    assert key_posts(carol_bigquery.sandbox) == [200]


@pytest.mark.usefixtures("fresh_bigquery_keys")
def test_private_key_is_registered_with_the_masker():
    CarolHook().get_bigquery_credentials()
    (key,) = TEMPORARY_KEYS.keys()
    pem = key.info["private_key"]
    line = pem.splitlines()[3]
    assert redact(f"leak: {pem}") == "leak: ***"
    assert line not in redact(f"leak: {line}")
    assert "private_key" not in repr(key)


def test_key_is_renewed_before_expiry_with_one_new_key(fresh_bigquery_keys):
    carol_bigquery = fresh_bigquery_keys
    hook = CarolHook()
    hook.bigquery_key_hours = 1.0
    first = hook.get_bigquery_credentials()
    assert hook.get_bigquery_credentials() is first
    (key,) = TEMPORARY_KEYS.keys()
    assert not key.needs_renewal()
    # Age the cached key instead of waiting for it (a wall-clock wait races a busy machine): minted
    # 58 minutes ago, 2 minutes left, inside the renewal margin (a quarter of its life, at most 5 min).
    key.minted_at -= dt.timedelta(minutes=58)
    key.expires_at -= dt.timedelta(minutes=58)
    assert key.needs_renewal()
    renewed = hook.get_bigquery_credentials()
    assert renewed is not first
    assert hook.get_bigquery_credentials() is renewed
    assert key_posts(carol_bigquery.sandbox) == [200, 200]


def test_key_request_is_never_resent_blindly(fresh_bigquery_keys):
    carol_bigquery = fresh_bigquery_keys
    carol_bigquery.sandbox.add_fault(KEY_PATH, status=503, times=1)
    with pytest.raises(CarolApiError) as failure:
        CarolHook().get_bigquery_credentials()
    assert failure.value.status_code == 503
    assert key_posts(carol_bigquery.sandbox) == [503]  # one POST: a resend could mint a second key
    CarolHook().get_bigquery_credentials()
    assert key_posts(carol_bigquery.sandbox) == [503, 200]


def test_rejected_key_is_renewed_once(fresh_bigquery_keys):
    carol_bigquery = fresh_bigquery_keys
    carol_bigquery.sandbox.add_fault("/google/oauth2/token", status=400, times=1,
                                     body={"error": "invalid_grant", "error_description": "key deleted"})
    job = CarolHook().run_bigquery_query("SELECT 1 AS one")
    assert [dict(row) for row in job.result()] == [{"one": 1}]
    assert key_posts(carol_bigquery.sandbox) == [200, 200]


def quick_hook() -> CarolHook:
    """A hook whose BigQuery key back-off is short, so tests that exhaust the tries stay quick."""
    hook = CarolHook()
    hook.bigquery_key_backoff = 0.01
    return hook


def test_key_rejected_again_after_renewal_fails_clearly(fresh_bigquery_keys):
    carol_bigquery = fresh_bigquery_keys
    carol_bigquery.sandbox.add_fault("/google/oauth2/token", status=400, times=8,
                                     body={"error": "invalid_grant", "error_description": "key deleted"})
    expected = "did not accept Carol's temporary service-account key"
    with pytest.raises(CarolBigQueryError, match=expected) as failure:
        quick_hook().run_bigquery_query("SELECT 1 AS one")
    assert "after 8 attempts and one renewal" in str(failure.value)
    assert "PRIVATE KEY" not in str(failure.value)
    assert key_posts(carol_bigquery.sandbox) == [200, 200]  # one renewal, not one key per retry


def test_a_new_key_google_rejects_for_a_while_is_tried_again_with_back_off(fresh_bigquery_keys):
    """A key Carol just minted may not be accepted at once: tried again (with back-off), not re-minted."""
    carol_bigquery = fresh_bigquery_keys
    carol_bigquery.sandbox.add_fault("/google/oauth2/token", status=400, times=4,
                                     body={"error": "invalid_grant", "error_description": "not yet valid"})
    job = quick_hook().run_bigquery_query("SELECT 2 AS two")
    assert [dict(row) for row in job.result()] == [{"two": 2}]
    assert key_posts(carol_bigquery.sandbox) == [200, 200]


def test_token_exchange_that_cannot_reach_google_is_retried_with_the_same_key(fresh_bigquery_keys):
    carol_bigquery = fresh_bigquery_keys
    carol_bigquery.sandbox.add_fault("/google/oauth2/token", drop="before", times=2)
    job = quick_hook().run_bigquery_query("SELECT 3 AS three")
    assert [dict(row) for row in job.result()] == [{"three": 3}]
    assert key_posts(carol_bigquery.sandbox) == [200]  # a transport failure mints no key


def test_bigquery_401_renews_the_key_and_starts_the_job_once(fresh_bigquery_keys, monkeypatch):
    """BigQuery's own 401 (Unauthorized over REST) is a key rejection: renewed; the job is created once."""
    carol_bigquery = fresh_bigquery_keys
    with BigQueryFaultProxy(carol_bigquery.emulator.rest, reject_job_inserts=1) as proxy:
        monkeypatch.setenv("AIRFLOW_CONN_CAROL_DEFAULT", carol_bigquery.sandbox.connection_json(
            "password", bigquery_endpoint=proxy.url, bigquery_storage_endpoint=carol_bigquery.emulator.grpc))
        job = quick_hook().run_bigquery_query("SELECT 4 AS four")
        assert [dict(row) for row in job.result()] == [{"four": 4}]
        assert proxy.answered == {"rejected_inserts": 1, "forwarded_inserts": 1}
    assert key_posts(carol_bigquery.sandbox) == [200, 200]


def test_bigquery_401_while_waiting_reads_the_same_job_again(fresh_bigquery_keys, monkeypatch):
    """A key that fails while the query runs: the running job is read again with a new key, not re-run."""
    carol_bigquery = fresh_bigquery_keys
    with BigQueryFaultProxy(carol_bigquery.emulator.rest, reject_job_reads=1) as proxy:
        monkeypatch.setenv("AIRFLOW_CONN_CAROL_DEFAULT", carol_bigquery.sandbox.connection_json(
            "password", bigquery_endpoint=proxy.url, bigquery_storage_endpoint=carol_bigquery.emulator.grpc))
        job = quick_hook().run_bigquery_query("SELECT 5 AS five")
        assert [dict(row) for row in job.result()] == [{"five": 5}]
        assert proxy.answered["forwarded_inserts"] == 1  # never started twice
        assert proxy.answered["rejected_reads"] == 1
    assert key_posts(carol_bigquery.sandbox) == [200, 200]


def test_org_level_connection_cannot_use_bigquery(carol_bigquery, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_CAROL_ORG", carol_bigquery.connection_json(org_level=True))
    with pytest.raises(CarolConfigError, match="organization level"):
        CarolHook("carol_org").get_bigquery_credentials()


@pytest.mark.parametrize(
    ("extra", "message"),
    [({"bigquery_endpoint": "127.0.0.1:9050"}, "http"),
     ({"bigquery_storage_endpoint": "http://h:1"}, "host:port")],
)
def test_bad_endpoint_extras_are_named(carol_bigquery, monkeypatch, extra, message):
    monkeypatch.setenv("AIRFLOW_CONN_CAROL_BAD", carol_bigquery.sandbox.connection_json("password", **extra))
    with pytest.raises(CarolConfigError, match=message):
        CarolHook("carol_bad").get_bigquery_client()


# ---------------------------------------------------------------------------------------------- clients
def test_client_defaults_to_the_tenant_dataset_and_labels_jobs(carol_bigquery):
    carol_bigquery.load_table("hook_people", pa.table({"id": [1, 2, 3], "name": ["a", "b", "c"]}))
    hook = CarolHook()
    client = hook.get_bigquery_client(labels={"Team": "Data Eng"})
    assert client.project == carol_bigquery.project
    job = client.query("SELECT COUNT(*) AS n FROM hook_people")  # unqualified: the tenant's dataset
    assert [row["n"] for row in job.result()] == [3]
    stored = carol_bigquery.emulator.client(carol_bigquery.project).get_job(job.job_id)
    assert stored.labels["tenant"] == carol_bigquery.sandbox.tenant
    assert stored.labels["organization"] == carol_bigquery.sandbox.organization
    assert stored.labels["source"] == "airflow-provider-carol"
    assert stored.labels["team"] == "data_eng"


def test_query_parameters_and_arrow_through_the_storage_api(carol_bigquery):
    from google.cloud import bigquery

    carol_bigquery.load_table("hook_nums", pa.table({"x": list(range(100))}))
    hook = CarolHook()
    job = hook.run_bigquery_query("SELECT x FROM hook_nums WHERE x >= @low ORDER BY x",
                                  parameters=[bigquery.ScalarQueryParameter("low", "INT64", 90)])
    table = hook.query_bigquery_arrow(job).read_all()
    assert table.column("x").to_pylist() == list(range(90, 100))


def test_storage_read_honours_filters_without_columns_and_reads_in_parallel(carol_bigquery):
    rows = 300_000
    carol_bigquery.load_table("hook_big", pa.table({
        "id": pa.array(range(rows), pa.int64()), "grp": pa.array([i % 7 for i in range(rows)], pa.int64())}))
    hook = CarolHook()
    filtered = hook.read_bigquery_table("hook_big", row_restriction="grp = 3").read_all()
    assert filtered.num_rows == len(range(3, rows, 7))
    assert set(filtered.column("grp").to_pylist()) == {3}
    assert filtered.column_names == ["id", "grp"]
    whole = hook.read_bigquery_table("hook_big", columns=["id"], max_streams=4).read_all()
    assert whole.column_names == ["id"]
    assert sorted(whole.column("id").to_pylist()) == list(range(rows))


def test_bad_sql_carries_bigquerys_text_and_the_job_id(carol_bigquery):
    with pytest.raises(CarolBigQueryError) as failure:
        CarolHook().run_bigquery_query("SELEC 1")
    assert "Syntax error" in str(failure.value)
    assert failure.value.job_id and failure.value.job_id in str(failure.value)


def test_missing_table_is_a_clear_error(carol_bigquery):
    with pytest.raises(CarolBigQueryError, match="no_such_table") as failure:
        CarolHook().run_bigquery_query("SELECT * FROM no_such_table", dry_run=True)
    assert failure.value.reason == "notFound"
    with pytest.raises(CarolBigQueryError, match="no_such_table"):
        CarolHook().read_bigquery_table("no_such_table").read_all()



# ---------------------------------------------------------------------------------------------- wire reader
def _serialized_response(batch: pa.RecordBatch, rows: int) -> bytes:
    from google.cloud.bigquery_storage_v1 import types

    return types.ReadRowsResponse.serialize(types.ReadRowsResponse(
        row_count=rows, stats=types.StreamStats(progress=types.StreamStats.Progress(at_response_end=0.5)),
        arrow_record_batch=types.ArrowRecordBatch(serialized_record_batch=batch.serialize().to_pybytes(),
                                                  row_count=rows)))


def test_read_rows_response_is_parsed_without_copying_the_batch():
    from airflow_provider_carol.hooks.bigquery.read_streams import parse_read_rows_response

    batch = pa.record_batch({"id": pa.array(range(1000), pa.int64()), "name": [f"n{i}" for i in range(1000)]})
    raw = _serialized_response(batch, 1000)
    view, rows = parse_read_rows_response(raw)
    assert rows == 1000
    assert view.obj is raw  # a slice of the received bytes, not a copy
    assert pa.ipc.read_record_batch(pa.py_buffer(view), batch.schema).equals(batch)


def test_a_broken_stream_is_resumed_at_its_offset():
    """An in-process ReadRows server that breaks the first call with UNAVAILABLE after one batch."""
    from concurrent import futures

    import grpc
    from google.cloud.bigquery_storage_v1 import BigQueryReadClient, types
    from google.cloud.bigquery_storage_v1.services.big_query_read.transports import BigQueryReadGrpcTransport

    from airflow_provider_carol.hooks.bigquery.read_streams import iter_stream

    table = pa.table({"id": pa.array(range(300), pa.int64())})
    offsets: list[int] = []

    def read_rows(request, context):
        offsets.append(request.offset)
        for batch in table.slice(request.offset).to_batches(max_chunksize=100):
            yield types.ReadRowsResponse(row_count=batch.num_rows, arrow_record_batch=types.ArrowRecordBatch(
                serialized_record_batch=batch.serialize().to_pybytes()))
            if len(offsets) == 1:
                context.abort(grpc.StatusCode.UNAVAILABLE, "connection reset")

    handler = grpc.method_handlers_generic_handler("google.cloud.bigquery.storage.v1.BigQueryRead", {
        "ReadRows": grpc.unary_stream_rpc_method_handler(
            read_rows, request_deserializer=types.ReadRowsRequest.deserialize,
            response_serializer=types.ReadRowsResponse.serialize)})
    server = grpc.server(futures.ThreadPoolExecutor(2))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        client = BigQueryReadClient(transport=BigQueryReadGrpcTransport(
            channel=grpc.insecure_channel(f"127.0.0.1:{port}")))
        batches = list(iter_stream(client, "projects/p/locations/l/sessions/s/streams/0", table.schema))
    finally:
        server.stop(None)
    assert offsets == [0, 100]
    assert pa.Table.from_batches(batches).column("id").to_pylist() == list(range(300))
