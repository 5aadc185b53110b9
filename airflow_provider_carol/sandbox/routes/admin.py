"""The ``/__sandbox/`` admin API: inspect state, inject faults, reset. No auth, loopback clients only."""

import itertools
import time
from typing import Any

import msgspec
from fastapi import APIRouter, Depends, Request

from ..auth import new_id
from ..deps import loopback_only, read_json, read_object, state_of
from ..errors import CarolError, json_response
from ..shapes import CHOICES
from ..tasks import DEFAULT_TASK_TYPE, iso

router = APIRouter(prefix="/__sandbox", dependencies=[Depends(loopback_only)])
CONFIG_KEYS = frozenset({"token_ttl"})


@router.get("/info")
async def info(request: Request) -> Any:
    """The JSON object the CLI printed at start."""
    return json_response(request.app.state.info)


@router.post("/reset")
async def reset(request: Request) -> Any:
    state_of(request).reset()
    return json_response({"reset": True})


@router.get("/staging/{staging}")
async def staging(
    staging: str,
    request: Request,
    connector_id: str | None = None,
    offset: int = 0,
    limit: int | None = None,
    count_only: bool = False,
) -> Any:
    """Stored records, each wrapped as ``{batchId, batchIdSequence, connectorId, record}``, plus ``count``."""
    store = state_of(request).staging
    count = store.count(staging, connector_id)
    if count_only:
        return json_response({"staging": staging, "count": count})
    stop = None if limit is None else offset + limit
    rows = list(itertools.islice(store.rows(staging, connector_id), offset, stop))
    return json_response({"staging": staging, "count": count, "records": rows})


@router.get("/batches")
async def batches(request: Request) -> Any:
    return json_response(state_of(request).staging.batches())


@router.post("/batches")
async def complete_batch(request: Request) -> Any:
    """Receive a whole batch at once: ``{staging, records, connector_id?, batch_id?}`` stored as one chunk,
    then its summary, as a client's intake + summary would (tests produce staging events with it)."""
    state = state_of(request)
    body = await read_object(request, "{staging, records: [objects] or a count, connector_id?, batch_id?}")
    staging, records = body.get("staging"), body.get("records")
    if not isinstance(staging, str) or not staging:
        raise CarolError(400, "staging is required", "staging")
    if isinstance(records, int) and records >= 0:
        records = [{"id": n} for n in range(1, records + 1)]
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise CarolError(400, "records must be a list of objects or a count", "records")
    connector_id = str(body.get("connector_id") or state.identity.connector_id)
    state.catalog.connector(connector_id)
    batch_id = str(body.get("batch_id") or f"{state.identity.tenant_id}-sandbox-{new_id()}")
    now = iso(time.time())
    data = msgspec.json.encode(records)
    state.staging.ingest(connector_id, staging, data, len(records), batch_id, 1)
    summary = {"totalRecords": len(records), "totalRequests": 1, "timestampStart": now, "timestampEnd": now}
    return json_response(state.staging.add_summary(batch_id, summary))


@router.get("/requests")
async def requests_log(request: Request) -> Any:
    return json_response(state_of(request).requests.to_json())


@router.get("/in_flight")
async def in_flight(request: Request) -> Any:
    """How many (non-admin) requests the sandbox is handling right now, and how many a hold fault holds."""
    state = state_of(request)
    return json_response({"in_flight": state.requests.in_flight, "held": state.faults.held})


@router.post("/tasks")
async def create_task(request: Request) -> Any:
    state = state_of(request)
    body = await read_object(request, "{schedule, reprocess_schedule?, error?, name?, task_type?, app_name?}")
    task = state.tasks.create(
        body.get("schedule"),
        name=body.get("name") or "sandboxTask",
        error=body.get("error"),
        reprocess_schedule=body.get("reprocess_schedule"),
        owner=state.identity.user,
        connector_id=state.identity.connector_id,
        task_type=str(body.get("task_type") or DEFAULT_TASK_TYPE),
        app_name=body.get("app_name"),
    )
    return json_response({"id": task.task_id, "task": state.tasks.to_json(task, admin=True)})


@router.get("/tasks/{task_id}")
async def get_task(task_id: str, request: Request) -> Any:
    tasks = state_of(request).tasks
    return json_response(tasks.to_json(tasks.get(task_id), admin=True))


@router.post("/tasks/{task_id}/status")
async def set_task_status(task_id: str, request: Request) -> Any:
    """Put a task in a status now (``{"status", "error"?}``), for tests that drive a task step by step."""
    tasks = state_of(request).tasks
    body = await read_object(request, "{status, error?}")
    task = tasks.get(task_id)
    tasks.set_status(task, body.get("status"), body.get("error"))
    return json_response(tasks.to_json(task, admin=True))


@router.post("/clock")
async def advance_clock(request: Request) -> Any:
    """Move every task schedule ahead: ``{"advance": seconds}``; answers the total offset."""
    body = await read_object(request, "{advance}")
    return json_response({"offset": state_of(request).tasks.advance(body.get("advance"))})


@router.post("/faults")
async def add_fault(request: Request) -> Any:
    """Queue a fault, or ``{"expire_tokens": true}`` / ``{"revoke_api_key": true}``."""
    state = state_of(request)
    expected = "{path, method?, status?, times?, retry_after?, latency?, drop?, hold?}"
    body = await read_object(request, expected)
    if body.get("expire_tokens"):
        return json_response({"expired_tokens": state.auth.expire_all()})
    if body.get("revoke_api_key"):
        state.auth.api_key_revoked = True
        return json_response({"api_key_revoked": True})
    return json_response(state.faults.add(body).to_json())


@router.post("/faults/release")
async def release_held(request: Request) -> Any:
    """Drop every hold fault and answer the requests they hold: ``{"released": n}``."""
    return json_response({"released": state_of(request).faults.release()})


@router.get("/faults")
async def list_faults(request: Request) -> Any:
    return json_response([fault.to_json() for fault in state_of(request).faults.faults])


@router.delete("/faults")
async def clear_faults(request: Request) -> Any:
    state_of(request).faults.reset()
    return json_response([])


@router.post("/config")
async def config(request: Request) -> Any:
    auth = state_of(request).auth
    body = await read_object(request, f"known settings: {sorted(CONFIG_KEYS)}")
    if not set(body) <= CONFIG_KEYS:
        raise CarolError(400, f"Unknown setting(s) {sorted(set(body) - CONFIG_KEYS)}", "body")
    ttl = body.get("token_ttl", auth.token_ttl)
    if not isinstance(ttl, int) or ttl < 1:
        raise CarolError(400, "token_ttl must be an integer >= 1 (seconds)", "token_ttl")
    auth.token_ttl = ttl
    return json_response({"token_ttl": auth.token_ttl})


@router.get("/shapes")
async def shapes(request: Request) -> Any:
    """The answer shapes in force and the choices of each (sandbox/shapes.py)."""
    return json_response({"current": state_of(request).shapes.current, "choices": CHOICES})


@router.post("/shapes")
async def set_shapes(request: Request) -> Any:
    """Switch answer shapes, e.g. ``{"execute": "top"}``; answers the shapes now in force."""
    body = await read_object(request, f"{{answer: shape}} with answers {sorted(CHOICES)}")
    return json_response(state_of(request).shapes.set(body))


@router.post("/users")
async def add_user(request: Request) -> Any:
    body = await read_object(request, "{login, password, mfa?}")
    if not body.get("login") or not body.get("password"):
        raise CarolError(400, "login and password are required", "login")
    user = state_of(request).auth.add_user(str(body["login"]), str(body["password"]), bool(body.get("mfa")))
    return json_response({"login": user.login, "mfa": user.mfa, "mdmId": user.user_id})


@router.post("/tokens")
async def issue_token(request: Request) -> Any:
    """Issue a token response for a user (default: the seeded one) without the password grant."""
    state = state_of(request)
    body = await read_json(request, required=False) or {}
    login = body.get("login") or state.identity.user
    return json_response(state.auth.issue(login, org_level=bool(body.get("org_level"))))


@router.get("/bigquery")
async def bigquery_info(request: Request) -> Any:
    """The attached BigQuery emulator (``null`` when none), see sandbox/bigquery.py."""
    mirror = state_of(request).bigquery
    return json_response(mirror.describe() if mirror is not None else None)


@router.post("/bigquery")
async def bigquery_attach(request: Request) -> Any:
    """Attach a BigQuery emulator (``{"rest": url, "grpc": "host:port"}``) or detach (``{"rest": null}``)."""
    from starlette.concurrency import run_in_threadpool

    from ..bigquery import StagingMirror

    state = state_of(request)
    body = await read_object(request, '{"rest": "http://127.0.0.1:P", "grpc": "127.0.0.1:G"} or {}')
    if not body.get("rest"):
        state.bigquery = None
        return json_response(None)
    if not isinstance(body.get("grpc"), str):
        raise CarolError(400, "grpc (host:port of the Storage Read API) is required", "grpc")
    state.bigquery = await run_in_threadpool(
        StagingMirror, str(body["rest"]), body["grpc"], state.identity.tenant_id
    )
    return json_response(state.bigquery.describe())


@router.post("/named_queries")
async def add_named_query(request: Request) -> Any:
    """Seed a named query: ``{name, params?: [names], records: [objects], data_model?}``."""
    body = await read_object(request, "{name, params?, records, data_model?}")
    query = state_of(request).queries.add(body)
    count = None if query.records is None else len(query.records)
    return json_response({"name": query.name, "params": query.params, "records": count})


@router.post("/process_query")
async def process_query_settings(request: Request) -> Any:
    """The schedule (and error) of the long tasks processQuery starts from now on."""
    from ..tasks import parse_schedule

    body = await read_object(request, "{schedule, error?}")
    queries = state_of(request).queries
    if body.get("schedule") is not None:
        parse_schedule(body["schedule"])  # a bad schedule is a 400 now, not at the next processQuery
    queries.process_schedule, queries.process_error = body.get("schedule"), body.get("error")
    return json_response({"schedule": queries.process_schedule, "error": queries.process_error})


@router.get("/process_queries")
async def process_queries(request: Request) -> Any:
    """The processQuery calls received: ``[{sql, params, task_id}]``."""
    return json_response(list(state_of(request).queries.process_calls))
