"""The fault matrix: every Carol-calling operator and the sensor, under ``dag.test()``, against each fault.

A cell passes when the task either succeeds with exactly-once effects (the sandbox's state and request
log prove it) or fails with a clear message (a provider exception naming the endpoint or chunk) and
nothing partial reported to Carol: no batch summary for a partial batch, no create/start done twice.
The expected outcome of each cell follows from the retry policy (docs/reliability.md): idempotent
calls recover from every transient fault; a non-idempotent POST is resent only when Carol said it did not
process it (429, 503 with Retry-After), otherwise it fails cleanly (at most once); an expired token is
renewed; a revoked API key fails at once, without spending Airflow retries.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.dagutil import load_dag, run_dag, wait_until
from tests.reliability.ledger import LEDGER, Cell, task_error

pytestmark = pytest.mark.dag

TRANSIENT = {
    "429+retry-after": {"status": 429, "retry_after": 1},
    "429": {"status": 429},
    "500": {"status": 500},
    "502": {"status": 502},
    "503": {"status": 503},
    "503+retry-after": {"status": 503, "retry_after": 1},
    "504": {"status": 504},
    "read-timeout": {"latency": 1.6},
    "drop-before": {"drop": "before"},
    "drop-after": {"drop": "after"},
    # A 401 on the operator's own request, as when the access token expires server-side mid-run.
    "token-expired": {"status": 401, "body": {"errorCode": 401, "errorMessage": "Access token expired"}},
}
# token mode with a refresh_token extra: every issued access token is expired server-side before the run.
FAULTS = [*TRANSIENT, "token-expired (token mode)", "key-revoked"]
READ_TIMEOUT = 1  # the connection's `timeout` extra in the read-timeout cells
MATRIX_DAGS = "dag_reliability_matrix"


@dataclass
class Row:
    """One operator under test: the request its faults hit and how to check its effects."""

    name: str
    method: str
    path: Callable[[Any, dict], str]  # glob of the request the fault hits, from (sandbox, conf)
    idempotent: bool
    check: Callable[[Any, dict, Any, str], str | None]  # returns a problem, or None when effects are right
    setup: Callable[[Any, Any], dict] = lambda sandbox, tmp: {}
    arm_after: int = 0  # let this many matching requests through before arming the fault
    times: int = 1  # consecutive matching requests the fault hits
    hooks: int = 1  # hooks that renew an expired token independently (worker + triggerer, several tasks)
    finish_after_fault: bool = False  # complete conf's Carol task once the fault hit a request


def processed(sandbox: Any, method: str, glob: str) -> int:
    """How many matching requests the sandbox really processed (answered 2xx, or processed then dropped)."""
    count = 0
    for entry in sandbox.requests(method=method, path=glob):
        answered = entry["fault"] in (None, "latency") and entry["status"] and entry["status"] < 400
        count += bool(answered or entry["fault"] == "drop_after")
    return count


def once(sandbox: Any, method: str, glob: str, succeeded: bool) -> str | None:
    done = processed(sandbox, method, glob)
    if (succeeded and done != 1) or done > 1:
        return f"{method} {glob} was processed {done} times"
    return None


def running_task(sandbox: Any, tmp: Any = None) -> dict:
    """A Carol task that runs until the cell's fault has hit a poll (see ``finish_after_fault``)."""
    return {"carol_task_id": sandbox.create_task([{"status": "RUNNING", "after": 0}])}


def large_file(sandbox: Any, tmp: Any) -> dict:
    """NDJSON of hard-to-compress records (random hex) for the large-chunk send."""
    import random

    from tests.dags.dag_reliability_matrix import LARGE_RECORDS

    rng, path = random.Random(5), tmp / "large.jsonl"
    with path.open("w") as handle:
        for i in range(LARGE_RECORDS):
            handle.write(json.dumps({"id": i, "noise": rng.randbytes(512).hex()}) + "\n")
    return {"path": str(path)}


def check_tenant(sandbox, conf, result, state):
    return None if state != "success" or result["mdmName"] == sandbox.tenant else f"xcom {result!r}"


def check_connector_post(sandbox, conf, result, state):
    return once(sandbox, "POST", "/api/v1/connectors", state == "success")


def check_settings(sandbox, conf, result, state):
    return None if state != "success" or (isinstance(result, dict) and result) else f"xcom {result!r}"


def check_process(sandbox, conf, result, state):
    return once(sandbox, "POST", "/api/v1/tenantApps/*/aiprocesses/*/execute/*", state == "success")


def check_task_untouched(sandbox, conf, result, state):
    task = sandbox.task(conf["carol_task_id"])
    if task.get("reprocess_count") or task.get("cancel_count"):
        return f"the Carol task was reprocessed/canceled: {task}"
    if state == "success" and "COMPLETED" not in json.dumps(result):
        return f"xcom {result!r}"
    return None


def check_staging(sandbox, conf, result, state, staging="matrix"):
    from tests.dags import dag_reliability_matrix as dags

    large = staging == "matrix_large"
    records = [{"id": i} for i in range(dags.LARGE_RECORDS)] if large else dags.RECORDS
    chunk = dags.LARGE_CHUNK if large else dags.CHUNK
    rows = sandbox.staging(staging)
    batches = [b for b in sandbox.batches() if staging in b["stagings"]]
    if state != "success":  # a partial batch must not be summarised
        summarised = [b["batchId"] for b in batches if b["summary"] is not None]
        return f"summary sent for a failed send: {summarised}" if summarised else None
    ids = sorted(row["record"]["id"] for row in rows)
    pairs = [(row["batchId"], row["batchIdSequence"]) for row in rows]
    if ids != [r["id"] for r in records]:
        return f"stored {len(ids)} records, {len(set(ids))} distinct, expected {len(records)}"
    if len(batches) != 1 or not batches[0]["totals_match"] or batches[0]["missing_sequences"]:
        return f"batch accounting wrong: {batches}"
    chunks = len(records) // chunk
    if len(set(pairs)) != chunks or batches[0]["sequences"] != list(range(1, chunks + 1)):
        return f"(batchId, sequence) pairs: {sorted(set(pairs))}"
    if not result.get("summary_sent") or result.get("records") != len(records):
        return f"xcom {result!r}"
    return None


def check_schema(sandbox, conf, result, state):
    return once(sandbox, "POST", "/api/v2/staging/tables/matrix_schema/schema", state == "success")


def check_planned(sandbox, conf, result, state):
    return check_staging(sandbox, conf, result, state, "matrix_planned")


def check_duckdb(sandbox, conf, result, state):
    batches = [b for b in sandbox.batches() if "matrix_duck" in b["stagings"]]
    if state != "success":
        return "summary sent for a failed send" if any(b["summary"] for b in batches) else None
    ids = sorted(row["record"]["id"] for row in sandbox.staging("matrix_duck"))
    if ids != list(range(50)) or len(batches) != 1 or batches[0]["totals_match"] is not True:
        return f"stored ids {ids[:5]}... ({len(ids)}), batches {batches}"
    return None


def check_bigquery(sandbox, conf, result, state):
    if state == "success" and result != [{"x": 1}]:
        return f"xcom {result!r}"
    return once(sandbox, "POST", "/sql/v1/api/v1/create_temporary_key", state == "success")


def check_staging_large(sandbox, conf, result, state):
    return check_staging(sandbox, conf, result, state, "matrix_large")


ROWS = [
    Row("CarolApiOperator GET", "GET", lambda s, c: "/api/v1/tenants/current", True, check_tenant),
    Row("CarolApiOperator POST", "POST", lambda s, c: "/api/v1/connectors", False, check_connector_post),
    # get-or-create by a unique name: a resend that finds its own earlier create answers "already exists"
    # and is read back, so the POST is retried like an idempotent one and the connector exists once.
    Row(
        "CarolCreateConnectorOperator", "POST", lambda s, c: "/api/v1/connectors", True, check_connector_post
    ),
    Row(
        "CarolAppSettingsOperator", "GET", lambda s, c: "/api/v1/tenantApps/*/settings*", True, check_settings
    ),
    Row(
        "CarolRunAppProcessOperator",
        "POST",
        lambda s, c: "/api/v1/tenantApps/*/aiprocesses/*/execute/*",
        False,
        check_process,
    ),
    Row(
        "CarolTaskSensor (poke)",
        "GET",
        lambda s, c: f"/api/v1/tasks/{c['carol_task_id']}",
        True,
        check_task_untouched,
        running_task,
        finish_after_fault=True,
    ),
    Row(
        "CarolTaskSensor (deferred)",
        "GET",
        lambda s, c: f"/api/v1/tasks/{c['carol_task_id']}",
        True,
        check_task_untouched,
        running_task,
        arm_after=1,  # the sensor's own first check passes: the fault hits the trigger's polls
        hooks=2,
        finish_after_fault=True,
    ),
    Row(
        "CarolTrackTasksOperator",
        "GET",
        lambda s, c: f"/api/v1/tasks/{c['carol_task_id']}",
        True,
        check_task_untouched,
        running_task,
        finish_after_fault=True,
    ),
    Row(
        "CarolStagingSendOperator", "POST", lambda s, c: "/api/v2/staging/intake/matrix", True, check_staging
    ),
    Row(
        "CarolStagingSchemaOperator",
        "POST",
        lambda s, c: "/api/v2/staging/tables/matrix_schema/schema",
        False,
        check_schema,
    ),
    Row(
        "CarolStartBatchOperator", "GET", lambda s, c: "/api/v1/tenants/current", True, check_planned, hooks=4
    ),
    Row(
        "CarolEndBatchOperator",
        "POST",
        lambda s, c: "/api/v3/staging/batch/*/summary",
        True,
        check_planned,
        hooks=4,
    ),
    Row("CarolDuckDBOperator", "POST", lambda s, c: "/api/v2/staging/intake/matrix_duck", True, check_duckdb),
    Row(
        "CarolStagingSendOperator (summary)",
        "POST",
        lambda s, c: "/api/v3/staging/batch/*/summary",
        True,
        check_staging,
    ),
]
DAG_OF = {
    "CarolApiOperator GET": "api_get",
    "CarolApiOperator POST": "api_post",
    "CarolCreateConnectorOperator": "connector",
    "CarolAppSettingsOperator": "app_settings",
    "CarolRunAppProcessOperator": "app_process",
    "CarolTaskSensor (poke)": "sensor_poke",
    "CarolTaskSensor (deferred)": "sensor_deferred",
    "CarolTrackTasksOperator": "track_tasks",
    "CarolStagingSendOperator": "staging_send",
    "CarolStagingSendOperator (summary)": "staging_send",
    "CarolStagingSchemaOperator": "staging_schema",
    "CarolDuckDBOperator": "duckdb",
    "CarolStartBatchOperator": "planned_batch",
    "CarolEndBatchOperator": "planned_batch",
    "CarolStagingSendOperator (large chunks)": "staging_send_large",
}


def expected_outcome(row: Row, fault: str) -> str:
    if fault == "key-revoked":
        return "fail"
    if fault == "token-expired (token mode)" and row.hooks > 1:
        # Carol rotates refresh tokens: the first hook that renews spends the connection's refresh_token,
        # and the next hook (the triggerer's, another task's) is refused. A documented limit of token mode.
        return "fail"
    if fault.startswith("token-expired") or row.idempotent:
        return "ok"
    if fault in ("429", "429+retry-after", "503+retry-after"):
        return "ok"  # Carol said it did not process the request: resent after its wait, POST or not
    return "fail"  # a non-idempotent POST is never resent after it may have reached Carol


def connection_for(sandbox: Any, fault: str, **extra: Any) -> str:
    """The connection of a cell: API key for key-revoked, token (+refresh token) for token-expired."""
    if fault == "key-revoked":
        return sandbox.connection_json("api_key", **extra)
    if fault == "token-expired (token mode)":
        issued = sandbox.issue_token()
        conn = json.loads(sandbox.connection_json("password", **extra))
        conn["password"] = issued["access_token"]
        conn["extra"].update(auth_type="token", refresh_token=issued["refresh_token"])
        return json.dumps(conn)
    if fault == "read-timeout":
        return sandbox.connection_json("password", timeout=READ_TIMEOUT, **extra)
    return sandbox.connection_json("password", **extra)


def arm(sandbox: Any, row: Row, conf: dict, fault: str) -> threading.Thread | None:
    """Queue the cell's fault now, or (``arm_after``) once that many matching requests went through."""
    if fault == "token-expired (token mode)":
        sandbox.expire_tokens()
        return None
    if fault == "key-revoked":
        sandbox.revoke_api_key()
        return None
    glob = row.path(sandbox, conf)
    spec = dict(TRANSIENT[fault], method=row.method, times=row.times)
    if not row.arm_after:
        sandbox.add_fault(glob, **spec)
        return None

    def arm_later() -> None:
        deadline = time.monotonic() + 120  # bounds a hung run only; arming waits for the request count
        while time.monotonic() < deadline:
            seen = sandbox.requests(method=row.method, path=glob)
            if len(seen) >= row.arm_after:
                sandbox.add_fault(glob, **spec)
                return
            time.sleep(0.01)

    thread = threading.Thread(target=arm_later, daemon=True)
    thread.start()
    return thread


def finish_after_fault(
    sandbox: Any, row: Row, fault: str, conf: dict, done: threading.Event, arming: threading.Thread | None
) -> threading.Thread:
    """In the background: once the fault hit a request, let the Carol task complete (or stop at ``done``).

    The task's outcome then depends on the fault being handled, never on how fast the machine is.
    """

    # Expired tokens meet every hook that renews (the worker's, then the triggerer's): wait for all.
    needed = row.hooks if fault == "token-expired (token mode)" else 1

    def run() -> None:
        while not done.wait(0.05):
            armed = arming is None or not arming.is_alive()
            if armed and injected(sandbox, row, fault) >= needed:
                sandbox.set_task_status(conf["carol_task_id"], "COMPLETED")
                return

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def injected(sandbox: Any, row: Row, fault: str) -> int:
    """Faults that hit a request: 401s for token/key cells, else how much of the queued fault was used."""
    if fault in ("token-expired (token mode)", "key-revoked"):
        return len(sandbox.requests(status=401))
    return row.times - sum(pending["times"] for pending in sandbox.faults())


def clear_failure(error: tuple[str, str] | None) -> str | None:
    """A failure is clear when a provider exception says which endpoint/chunk failed and why."""
    if error is None:
        return "no exception found in the task output"
    cls, message = error
    if not cls.startswith("airflow_provider_carol.exceptions."):
        return f"raw {cls}: {message}"
    if "/api/" not in message and "Staging '" not in message:
        return f"message names no endpoint: {message}"
    return None


def run_cell(
    sandbox, monkeypatch, capfd, caplog, tmp_path, row: Row, fault: str, column: str, **extra: Any
) -> None:
    """Run one cell under ``dag.test()``, judge it from the sandbox's state, record it, assert it."""
    monkeypatch.setenv("AIRFLOW_CONN_CAROL_DEFAULT", connection_for(sandbox, fault, **extra))
    conf = row.setup(sandbox, tmp_path)
    arming = arm(sandbox, row, conf, fault)
    done = threading.Event()
    if row.finish_after_fault:
        finish_after_fault(sandbox, row, fault, conf, done, arming)
    dag = load_dag(MATRIX_DAGS, f"test_reliability_{DAG_OF[row.name]}")
    capfd.readouterr()
    try:
        _, tis = run_dag(dag, run_conf=conf)
    finally:
        done.set()
    output = "".join(capfd.readouterr()) + caplog.text  # triggers log through logging, tasks to stdout
    if arming is not None:
        arming.join(120)
    if fault == "read-timeout":  # the slowed request finishes (and is logged) after the client gave up
        wait_until(lambda: sandbox.in_flight() == 0, "the slowed request to finish server-side")
    state = tis["call"].state
    result = tis["call"].xcom_pull(task_ids="call") if state == "success" else None
    problem = row.check(sandbox, conf, result, state)
    error = task_error(output)
    if state != "success" and problem is None:
        problem = clear_failure(error)
    outcome = ("ok" if state == "success" else "fail") if problem is None else "BUG"
    expected = expected_outcome(row, fault)
    faults = injected(sandbox, row, fault)
    detail = problem or (error[1] if error and state != "success" else "")
    LEDGER.add(Cell(row.name, column, expected, outcome, faults, detail))
    assert faults >= 1, "the fault was never injected"
    assert problem is None, problem
    assert outcome == expected, f"{row.name} x {column}: expected {expected}, got {outcome} ({error})"


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_fault_cell(airflow_db, carol_sandbox, monkeypatch, capfd, caplog, tmp_path, row, fault):
    run_cell(carol_sandbox, monkeypatch, capfd, caplog, tmp_path, row, fault, fault)


TLS_ROWS = [
    r
    for r in ROWS
    if r.name in ("CarolApiOperator GET", "CarolTaskSensor (poke)", "CarolStagingSendOperator")
] + [
    Row(
        "CarolStagingSendOperator (large chunks)",
        "POST",
        lambda s, c: "/api/v2/staging/intake/matrix_large",
        True,
        check_staging_large,
        large_file,
        times=5,  # each drop lands mid-upload only some of the time; 5 fit in the hook's retries
    ),
]


@pytest.mark.parametrize("fault", ["drop-before", "drop-after"])
@pytest.mark.parametrize("row", TLS_ROWS, ids=[r.name for r in TLS_ROWS])
def test_fault_cell_over_tls(airflow_db, carol_sandbox_tls, monkeypatch, capfd, caplog, tmp_path, row, fault):
    """Dropped connections over HTTPS. Mid-upload the client sees a TLS EOF (``SSLEOFError``): a transport
    error, not a certificate problem, to be retried like any other dropped connection."""
    run_cell(carol_sandbox_tls, monkeypatch, capfd, caplog, tmp_path, row, fault, f"{fault} (TLS)")


BIGQUERY_ROW = Row(
    "CarolBigQueryOperator",
    "POST",
    lambda s, c: "/sql/v1/api/v1/create_temporary_key",
    False,  # minting a key is never resent blindly (a resend would mint a second key)
    check_bigquery,
)
DAG_OF[BIGQUERY_ROW.name] = "bigquery"


@pytest.mark.parametrize("fault", FAULTS)
def test_fault_cell_bigquery(airflow_db, fresh_bigquery_keys, monkeypatch, capfd, caplog, tmp_path, fault):
    """The operator's one Carol call is the temporary-key POST (the query goes to BigQuery itself)."""
    emulator = fresh_bigquery_keys.emulator
    extra = {"bigquery_endpoint": emulator.rest, "bigquery_storage_endpoint": emulator.grpc}
    run_cell(
        fresh_bigquery_keys.sandbox, monkeypatch, capfd, caplog, tmp_path, BIGQUERY_ROW, fault, fault, **extra
    )
