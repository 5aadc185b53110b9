"""Staging schema, intake and batch summaries (section 6)."""

from typing import Any

import msgspec
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from ..auth import Principal
from ..deps import TenantSession, read_object, state_of
from ..errors import CarolError, json_response
from ..intake import MAX_INTAKE_BYTES, decode_intake
from ..state import SandboxState

router = APIRouter()
HARD_BODY_LIMIT = 8 * MAX_INTAKE_BYTES
SUMMARY_FIELDS = ("totalRecords", "totalRequests", "timestampStart", "timestampEnd")


def _connector(state: SandboxState, connector_id: str | None, who: Principal) -> str:
    """The connectorId query parameter, else the API key's connector; it must exist."""
    resolved = connector_id or who.connector_id
    if not resolved:
        raise CarolError(400, "connectorId is required", "connectorId")
    state.catalog.connector(resolved)
    return resolved


@router.get("/api/v2/staging/tables/{staging}/schema")
async def get_schema(
    staging: str, request: Request, who: TenantSession, connectorId: str | None = None
) -> Any:
    state = state_of(request)
    return json_response(state.catalog.schema(_connector(state, connectorId, who), staging))


@router.post("/api/v2/staging/tables/{staging}/schema")
@router.put("/api/v2/staging/tables/{staging}/schema")
async def put_schema(
    staging: str, request: Request, who: TenantSession, connectorId: str | None = None
) -> Any:
    """Create (POST) or replace (PUT) a schema; the sandbox lets POST overwrite too (see docs)."""
    state = state_of(request)
    body = await read_object(request, "the staging schema")
    return json_response(state.catalog.put_schema(_connector(state, connectorId, who), staging, body))


@router.delete("/api/v2/staging/tables/{staging}/drop")
async def drop(staging: str, request: Request, who: TenantSession, connectorId: str | None = None) -> Any:
    state = state_of(request)
    connector_id = _connector(state, connectorId, who)
    had_data = staging in state.staging.stagings_of(connector_id)
    if not state.catalog.drop_schema(connector_id, staging) and not had_data:
        raise CarolError(404, f"Staging {staging} Not found", "stagingType")
    state.staging.drop(connector_id, staging)
    return json_response({"success": True})


@router.post("/api/v2/staging/intake/{staging}")
async def intake(
    staging: str,
    request: Request,
    who: TenantSession,
    connectorId: str | None = None,
    batchId: str | None = None,
    batchIdSequence: int | None = None,
) -> Any:
    """Accept a JSON array (plain or gzip); decoding and storing run in the threadpool."""
    state = state_of(request)
    connector_id = _connector(state, connectorId, who)
    if batchId is not None and batchIdSequence is None:
        raise CarolError(400, "batchIdSequence is required with batchId", "batchIdSequence")
    if int(request.headers.get("content-length") or 0) > HARD_BODY_LIMIT:
        raise CarolError(413, f"Request body exceeds {MAX_INTAKE_BYTES} bytes")
    body = await request.body()
    gzip = "gzip" in request.headers.get("content-encoding", "").lower()
    result = await run_in_threadpool(
        _store, state, body, gzip, connector_id, staging, batchId, batchIdSequence
    )
    return json_response(result)


def _store(
    state: SandboxState,
    body: bytes,
    gzip: bool,
    connector_id: str,
    staging: str,
    batch_id: str | None,
    sequence: int | None,
) -> dict[str, Any]:
    data, count = decode_intake(body, gzip)
    result = state.staging.ingest(connector_id, staging, data, count, batch_id, sequence)
    if state.bigquery is not None:  # BigQuery mirror (sandbox/bigquery.py): best effort, never raises
        state.bigquery.mirror(
            state.catalog.connector(connector_id)["mdmName"],
            staging,
            msgspec.json.decode(data),
            batch_id,
            sequence,
            bool(result.get("redelivery")),
        )
    return result


@router.post("/api/v3/staging/batch/{batch_id}/summary")
async def summary(batch_id: str, request: Request, who: TenantSession) -> Any:
    """Record the client's totals; the admin API compares them with the distinct chunks received."""
    body = await read_object(request, ", ".join(SUMMARY_FIELDS))
    if any(name not in body for name in SUMMARY_FIELDS):
        raise CarolError(400, f"The summary needs {', '.join(SUMMARY_FIELDS)}", "body")
    if not all(isinstance(body[name], int) for name in SUMMARY_FIELDS[:2]):
        raise CarolError(400, "totalRecords and totalRequests must be integers", "body")
    batch = state_of(request).staging.add_summary(batch_id, {name: body[name] for name in SUMMARY_FIELDS})
    return json_response({"success": True, "batchId": batch_id, "totalsMatch": batch["totals_match"]})
