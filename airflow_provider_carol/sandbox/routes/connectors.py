"""Connector CRUD, connector stats and the stagings of a connector (section 5)."""

from typing import Any

from fastapi import APIRouter, Request

from ..deps import TenantSession, read_object, state_of
from ..errors import CarolError, json_response
from ..state import SandboxState

router = APIRouter()


@router.post("/api/v1/connectors")
async def create(request: Request, who: TenantSession) -> Any:
    body = await read_object(request, "{mdmName, mdmGroupName, mdmLabel}")
    return json_response(state_of(request).catalog.create_connector(body))


@router.get("/api/v1/connectors")
async def list_connectors(request: Request, who: TenantSession, offset: int = 0, pageSize: str = "-1") -> Any:
    """Paged as pycarol reads it: ``count`` in this page, ``totalHits`` overall; pageSize -1 = all."""
    try:
        size = int(pageSize)
    except ValueError as exc:
        raise CarolError(400, "pageSize must be an integer", "pageSize") from exc
    hits = list(state_of(request).catalog.connectors.values())
    page = hits[offset:] if size < 0 else hits[offset : offset + size]
    return json_response({"count": len(page), "totalHits": len(hits), "hits": page})


def _stats(state: SandboxState, connector_ids: list[str]) -> dict[str, Any]:
    """``{"aggs": {connector id: {"stagingEntityStats": {staging: <value>}}}}`` from the stored records.

    Callers of real tenants read only the keys; what a value holds is not known, so its shape is switchable
    (``stats_value``; default ``{"count": n}``: the distinct records stored, redeliveries counted once),
    for every staging with records or a schema.
    """
    counts = state.staging.record_counts()
    schemas = list(state.catalog.schemas)
    aggs: dict[str, Any] = {}
    for connector_id in connector_ids:
        stored = counts.get(connector_id, {})
        names = set(stored) | {staging for (conn, staging) in schemas if conn == connector_id}
        aggs[connector_id] = {
            "stagingEntityStats": {
                name: state.shapes.stats_value(stored.get(name, 0)) for name in sorted(names)
            }
        }
    return {"aggs": aggs}


@router.get("/api/v1/connectors/stats/all")
async def stats_all(request: Request, who: TenantSession) -> Any:
    state = state_of(request)
    return json_response(_stats(state, list(state.catalog.connectors)))


@router.get("/api/v1/connectors/{connector_id}/stats")
async def stats(connector_id: str, request: Request, who: TenantSession) -> Any:
    state = state_of(request)
    state.catalog.connector(connector_id)  # 404 for an unknown connector
    return json_response(_stats(state, [connector_id]))


@router.get("/api/v1/connectors/name/{name}")
async def by_name(name: str, request: Request, who: TenantSession) -> Any:
    return json_response(state_of(request).catalog.connector_by_name(name))


@router.get("/api/v1/connectors/{connector_id}")
async def by_id(connector_id: str, request: Request, who: TenantSession) -> Any:
    return json_response(state_of(request).catalog.connector(connector_id))


@router.delete("/api/v1/connectors/{connector_id}")
async def delete(connector_id: str, request: Request, who: TenantSession, forceDeletion: str = "True") -> Any:
    """Delete a connector with its schemas and staged records (the sandbox always forces)."""
    state = state_of(request)
    deleted = state.catalog.delete_connector(connector_id)
    for staging in state.staging.stagings_of(connector_id):
        state.staging.drop(connector_id, staging)
    return json_response(deleted)


@router.get("/api/v1/staging/connectors/{connector_id}/tables")
async def tables(connector_id: str, request: Request, who: TenantSession) -> Any:
    state = state_of(request)
    state.catalog.connector(connector_id)
    names = state.staging.stagings_of(connector_id)
    names |= {staging for (conn, staging) in list(state.catalog.schemas) if conn == connector_id}
    return json_response(sorted(names))
