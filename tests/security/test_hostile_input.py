"""Hostile and bad input: each is a clear error (or stored exactly as named), and nothing is sent that
should not be. Names travel percent-encoded as one path segment, so they can never reach another path.
"""

from __future__ import annotations

import gzip
import http.server
import json
import threading
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from airflow_provider_carol.exceptions import (
    CarolApiError,
    CarolConfigError,
    CarolConnectionError,
    CarolError,
)
from airflow_provider_carol.hooks.carol import CarolHook
from airflow_provider_carol.operators.duckdb import CarolDuckDBOperator
from tests.security.conftest import count_figure

HOSTILE_NAMES = [
    "a/b",
    "x?y=1#frag",
    "a&b=c",
    "100%",
    "%2e%2e",
    "..",
    ".",
    "../../v1/tenants/current",
    "..%2F..%2Fadmin",
    "ção_ü_中文_🚀",
    "name with spaces",
]
INTAKE = "/api/v2/staging/intake/"


@pytest.fixture(autouse=True)
def _count_bad_input():
    """Each test here tries one bad or hostile input (counted whatever the outcome)."""
    count_figure("security: bad inputs tried", 1)


SUMMARY = "/api/v3/staging/batch/"
AUTH_AND_CONTEXT = ("/api/v5/oauth2/token", "/api/v1/tenants/current", "/api/v1/organizations/current")


def carol_paths(sandbox) -> list[str]:
    return [entry["path"] for entry in sandbox.requests()]


def intake_requests(sandbox) -> list[dict]:
    return sandbox.requests(path=f"{INTAKE}*")


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_staging_name_is_stored_as_named_or_refused_never_redirected(carol_sandbox, name):
    hook = CarolHook()
    try:
        summary = hook.send_to_staging(name, [{"id": 1}, {"id": 2}])
    except CarolError as exc:
        stored = None
        assert repr(name) in str(exc)  # the error names the staging
    else:
        stored = summary
    # Every request went to the intake endpoint or the schema (read by the drift check) of exactly this
    # name (decoded path), or auth/context, or the batch summary; nothing was resolved as a relative path.
    own = (INTAKE + name, f"/api/v2/staging/tables/{name}/schema")
    for path in carol_paths(carol_sandbox):
        assert path in AUTH_AND_CONTEXT or path in own or path.startswith(SUMMARY), path
    batches = carol_sandbox.batches()
    if stored is None:
        assert all(b["summary"] is None for b in batches)
    else:
        (batch,) = batches
        assert batch["stagings"] == [name] and batch["records"] == 2 and batch["totals_match"] is True


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_connector_name_is_created_as_named_or_refused(carol_sandbox, name):
    hook = CarolHook()
    try:
        connector_id = hook.get_or_create_connector(name)
    except CarolError as exc:
        assert repr(name) in str(exc) or quote(name, safe="") in str(exc), str(exc)
        connector_id = None
    if connector_id is not None:  # created: a retry must find it (the operator promises idempotency)
        assert CarolHook().get_or_create_connector(name) == connector_id
    for path in carol_paths(carol_sandbox):
        assert not path.startswith(("/api/v1/tenants/", "/api/v2/staging/")) or path in AUTH_AND_CONTEXT, path


def deep(levels: int) -> dict:
    record: dict = {"id": 0}
    for _ in range(levels):
        record = {"child": record}
    return record


BAD_RECORDS = {
    "oversized record (11 MB)": ([{"id": 0}, {"id": 1, "blob": "x" * (11 * 1024 * 1024)}], "Row 1"),
    "non-JSON value (object)": ([{"id": 0}, {"id": 1, "value": object()}], "Row 1, field 'value'"),
    "non-JSON value (complex)": ([{"id": 0, "value": 1j}], "Row 0, field 'value'"),
    "record that is not an object": ([{"id": 0}, ["not", "a", "dict"]], "Row 1"),
    "deep nesting (5,000 levels)": ([{"id": 1}, deep(5000)], "Row 1"),
}


@pytest.mark.parametrize("case", BAD_RECORDS, ids=list(BAD_RECORDS))
def test_bad_records_fail_clearly_before_anything_is_sent(carol_sandbox, case):
    records, names = BAD_RECORDS[case]
    with pytest.raises(CarolConfigError) as failed:
        CarolHook().send_to_staging("bad", records)
    assert names in str(failed.value)
    assert len(str(failed.value)) < 1000  # names the problem without dumping the record
    assert intake_requests(carol_sandbox) == [] and carol_sandbox.batches() == []


MULTI_STATEMENT_SQL = {
    "two statements": "SELECT 1 AS x; DROP TABLE orders",
    "statement hidden after a comment": "SELECT 1 AS x -- harmless\n; COPY (SELECT 1) TO '/tmp/x.csv'",
    "attach": "SELECT 1 AS x; ATTACH '/tmp/evil.db' AS evil",
}


@pytest.mark.parametrize("case", MULTI_STATEMENT_SQL, ids=list(MULTI_STATEMENT_SQL))
def test_duckdb_operator_refuses_several_statements_before_loading_or_sending(carol_sandbox, case):
    operator = CarolDuckDBOperator(task_id="duck", sql=MULTI_STATEMENT_SQL[case], staging_name="duck_out")
    with pytest.raises(CarolConfigError, match="holds 2 statements"):
        operator.execute({})
    assert carol_sandbox.requests() == []  # nothing loaded, nothing sent


def test_duckdb_sql_cannot_read_local_files_unless_allowed(carol_sandbox):
    import duckdb

    operator = CarolDuckDBOperator(
        task_id="duck", sql="SELECT * FROM read_csv('/etc/passwd')", staging_name="duck_out"
    )
    with pytest.raises(duckdb.Error, match="disabled"):
        operator.execute({})
    assert intake_requests(carol_sandbox) == []


# ------------------------------------------------------------------- a server that answers badly
def test_a_200_that_is_not_json_is_a_clear_error(carol_sandbox):
    carol_sandbox.add_fault("/api/v1/tenants/current", status=200, body="<html>Service maintenance</html>")
    with pytest.raises(CarolApiError, match=r"not JSON.*maintenance") as failed:
        CarolHook().get_current()
    assert "GET /api/v1/tenants/current" in str(failed.value)


def test_a_200_with_an_error_body_is_an_error_not_data(carol_sandbox):
    carol_sandbox.add_fault(
        "/api/v1/tenants/current", status=200, body={"errorCode": 500, "errorMessage": "Internal failure"}
    )
    with pytest.raises(CarolApiError, match="Internal failure"):
        CarolHook().call_api("v1/tenants/current")


def test_an_intake_200_with_an_error_body_is_not_counted_and_gets_no_summary(carol_sandbox):
    carol_sandbox.add_fault(
        INTAKE + "*", status=200, body={"errorCode": 500, "errorMessage": "Internal failure"}
    )
    with pytest.raises(CarolError, match="Internal failure"):
        CarolHook().send_to_staging("err200", [{"id": 1}, {"id": 2}])
    assert all(batch["summary"] is None for batch in carol_sandbox.batches())


class _TruncatedGzip(http.server.BaseHTTPRequestHandler):
    """Answers every GET with a gzip body cut in half (as a broken proxy or a dropped stream would)."""

    def do_GET(self) -> None:
        body = gzip.compress(json.dumps({"mdmId": "t" * 2000, "mdmName": "tenant"}).encode())
        cut = body[: len(body) // 2]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(cut)))
        self.end_headers()
        self.wfile.write(cut)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def truncated_gzip_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TruncatedGzip)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_a_truncated_gzip_answer_is_a_clear_error(truncated_gzip_server, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_CAROL_GZIP",
        json.dumps(
            {
                "conn_type": "carol",
                "host": "127.0.0.1",
                "port": truncated_gzip_server,
                "password": "k",
                "extra": {"auth_type": "api_key", "tenant": "t", "connector_id": "c", "scheme": "http"},
            }
        ),
    )
    with pytest.raises((CarolConnectionError, CarolApiError)) as failed:
        CarolHook("carol_gzip", retry_limit=0).call_api("v1/tenants/current")
    message = str(failed.value)
    # urllib3 inflates what it got without complaint, so the cut shows up as a body that is not JSON.
    assert "GET /api/v1/tenants/current" in message
    assert "gzip" in message.lower() or "not JSON" in message
