"""Long tasks: status, logs, progress, cancel, fail, reprocess (section 8)."""

from typing import Any

from fastapi import APIRouter, Request

from ..deps import TenantSession, read_json, read_object, state_of
from ..errors import CarolError, json_response
from ..tasks import SEARCH_KEYS

router = APIRouter()
MAX_PAGE_SIZE = 1000


def _terms(body: dict[str, Any]) -> dict[str, set[str]]:
    """The ``mustList`` of a task query as ``{field: allowed values}``; only what the sandbox supports."""
    must = body.get("mustList")
    if not isinstance(must, list) or {"mdmFilterType": "TYPE_FILTER", "mdmValue": "mdmTask"} not in must:
        raise CarolError(
            400, "The sandbox answers task queries only: mustList needs TYPE_FILTER mdmTask", "body"
        )
    terms: dict[str, set[str]] = {}
    for item in must:
        if not isinstance(item, dict) or item.get("mdmFilterType") == "TYPE_FILTER":
            continue
        key = str(item.get("mdmKey", "")).removesuffix(".raw")
        values = item.get("mdmValue")
        supported = item.get("mdmFilterType") == "TERMS_FILTER" and key in SEARCH_KEYS
        if not supported or not isinstance(values, list):
            raise CarolError(
                400, f"Unsupported filter {item!r}: TERMS_FILTER on {', '.join(SEARCH_KEYS)} only", "mustList"
            )
        terms[key] = terms.get(key, set(map(str, values))) & set(map(str, values))
    return terms


@router.post("/api/v1/queries/filter")
async def query_tasks(
    request: Request,
    who: TenantSession,
    indexType: str = "MASTER",
    pageSize: int = 50,
    offset: int = 0,
    sortBy: str = "mdmLastUpdated",
    sortOrder: str = "ASC",
) -> Any:
    """Search long tasks (pycarol's task queries: ``TYPE_FILTER mdmTask`` + ``TERMS_FILTER``s), paged."""
    body = await read_object(request, "{mustList: [...]}")
    if sortBy != "mdmLastUpdated" or sortOrder.upper() not in ("ASC", "DESC"):
        raise CarolError(400, "The sandbox sorts tasks by mdmLastUpdated, ASC or DESC", "sortBy")
    if not 1 <= pageSize <= MAX_PAGE_SIZE or offset < 0:
        raise CarolError(400, f"pageSize must be 1..{MAX_PAGE_SIZE} and offset >= 0", "pageSize")
    total, hits = state_of(request).tasks.search(
        _terms(body), descending=sortOrder.upper() == "DESC", offset=offset, page_size=pageSize
    )
    return json_response({"totalHits": total, "count": len(hits), "hits": hits})


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
