"""Long tasks: status, logs, progress, cancel, fail, reprocess (section 8)."""

from typing import Any

from fastapi import APIRouter, Request

from ..deps import TenantSession, read_json, state_of
from ..errors import CarolError, json_response

router = APIRouter()


@router.get("/api/v1/tasks/{task_id}")
async def get_task(task_id: str, request: Request, who: TenantSession) -> Any:
    tasks = state_of(request).tasks
    return json_response(tasks.to_json(tasks.get(task_id)))


@router.post("/api/v1/tasks/{task_id}/logs")
async def add_logs(task_id: str, request: Request, who: TenantSession) -> Any:
    tasks = state_of(request).tasks
    task = tasks.get(task_id)
    body = await read_json(request)
    if not isinstance(body, list) or not all(isinstance(e, dict) and "mdmLogMessage" in e for e in body):
        raise CarolError(400, "Body must be a JSON array of {mdmTaskId, mdmLogMessage, mdmLogLevel}", "body")
    tasks.add_logs(task, body)
    return json_response({"success": True})


@router.get("/api/v1/tasks/{task_id}/logs")
async def get_logs(task_id: str, request: Request, who: TenantSession) -> Any:
    tasks = state_of(request).tasks
    task = tasks.get(task_id)
    tasks.status(task)  # a scheduled failure writes its log line when first observed
    return json_response(list(task.logs))


@router.post("/api/v1/tasks/{task_id}/progress/{progress}")
async def progress(task_id: str, progress: float, request: Request, who: TenantSession) -> Any:
    tasks = state_of(request).tasks
    task = tasks.get(task_id)
    data = await read_json(request, required=False)
    task.progress = int(progress) if progress.is_integer() else progress
    if isinstance(data, dict):
        task.progress_data = data
    return json_response(tasks.to_json(task))


@router.post("/api/v1/tasks/{task_id}/cancel")
async def cancel(task_id: str, request: Request, who: TenantSession, force: str | None = None) -> Any:
    tasks = state_of(request).tasks
    task = tasks.get(task_id)
    tasks.cancel(task)
    return json_response(tasks.to_json(task))


@router.post("/api/v1/tasks/{task_id}/fail")
async def fail(task_id: str, request: Request, who: TenantSession, message: str = "") -> Any:
    tasks = state_of(request).tasks
    task = tasks.get(task_id)
    tasks.fail(task, message)
    return json_response(tasks.to_json(task))


@router.post("/api/v1/tasks/{task_id}/reprocess")
async def reprocess(task_id: str, request: Request, who: TenantSession) -> Any:
    tasks = state_of(request).tasks
    task = tasks.get(task_id)
    tasks.reprocess(task)
    return json_response(tasks.to_json(task))
