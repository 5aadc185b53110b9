"""Tenant apps: lookup, settings, AI processes and their execution as long tasks (section 9)."""

from typing import Any

from fastapi import APIRouter, Request

from ..deps import TenantSession, read_json, state_of
from ..errors import CarolError, json_response

router = APIRouter()
#: ``mdmTaskType`` of an app process's task (the sandbox's choice: pycarol never reads the type).
APP_PROCESS_TASK_TYPE = "EXECUTE_AI_PROCESS"


@router.get("/api/v1/tenantApps/name/{app_name}")
async def by_name(app_name: str, request: Request, who: TenantSession) -> Any:
    return json_response(state_of(request).catalog.app_by_name(app_name).to_json())


@router.get("/api/v1/tenantApps/{app_id}")
async def by_id(app_id: str, request: Request, who: TenantSession) -> Any:
    return json_response(state_of(request).catalog.app(app_id).to_json())


@router.get("/api/v1/tenantApps/{app_id}/settings")
async def settings(app_id: str, request: Request, who: TenantSession) -> Any:
    return json_response(state_of(request).catalog.app(app_id).settings_json())


@router.put("/api/v1/tenantApps/{app_id}/settings/{settings_id}")
async def update_settings(app_id: str, settings_id: str, request: Request, who: TenantSession) -> Any:
    catalog = state_of(request).catalog
    app = catalog.app(app_id)
    return json_response(catalog.update_settings(app, settings_id, await read_json(request)))


@router.get("/api/v1/tenantApps/{app_id}/aiprocesses")
async def processes(app_id: str, request: Request, who: TenantSession) -> Any:
    """One object, not a list (carol-evidence.md): the container id and one value per process."""
    app = state_of(request).catalog.app(app_id)
    if not app.processes:
        return json_response({})
    return json_response(
        {
            "mdmId": app.process_container_id,
            "mdmEntityType": "mdmTenantAppAIProcess",
            "mdmTenantAppAIProcessValues": [
                {"mdmName": name, "mdmRunningState": "PAUSED"} for name in app.processes
            ],
        }
    )


@router.post("/api/v1/tenantApps/{app_id}/aiprocesses/{process_id}/execute/{process_name}")
async def execute(
    app_id: str, process_id: str, process_name: str, request: Request, who: TenantSession
) -> Any:
    """Start a process: a new long task following the process's schedule, answered as
    ``{"success": true, "data": <task>}`` (carol-evidence.md) unless another shape is switched on."""
    state = state_of(request)
    app = state.catalog.app(app_id)
    if process_id != app.process_container_id:
        raise CarolError(404, f"AI process container {process_id} Not found", "processId")
    process = app.processes.get(process_name)
    if process is None:
        raise CarolError(404, f"Process {process_name} Not found", "processName")
    task = state.tasks.create(
        process["schedule"],
        name=f"{app.name}/{process_name}",
        error=process.get("error"),
        owner=who.login,
        connector_id=state.identity.connector_id,
        task_type=APP_PROCESS_TASK_TYPE,
        app_name=app.name,
    )
    return json_response(state.shapes.task_start("execute", state.tasks.to_json(task)))
