"""Named queries with scroll paging, and BigQuery processQuery as a long task (section 10)."""

import threading
from typing import Any

from fastapi import APIRouter, Request

from ..deps import TenantSession, read_json, state_of
from ..errors import CarolError, json_response
from ..state import SandboxState
from ..tasks import Task

router = APIRouter()
PROCESS_FLAGS = (
    "saveCds",
    "clearCds",
    "sendSubscriptions",
    "clearRealtime",
    "sendRealtime",
    "useDataflow",
    "saveBigQuery",
    "clearBigQuery",
    "deduplicateResults",
)


@router.post("/api/v2/queries/named/{name}")
async def named(
    name: str,
    request: Request,
    who: TenantSession,
    pageSize: int = 50,
    offset: int = 0,
    scrollable: str = "false",
) -> Any:
    values = await read_json(request, required=False)
    queries = state_of(request).queries
    page = queries.first_page(name, values or {}, pageSize, offset, scrollable.lower() == "true")
    return json_response(page)


@router.post("/api/v2/queries/filter/{scroll_id}")
async def scroll(scroll_id: str, request: Request, who: TenantSession) -> Any:
    await request.body()  # pycarol sends the query again; the scroll alone decides the page
    return json_response(state_of(request).queries.next_page(scroll_id))


@router.post("/api/v2/bigQuery/processQuery")
async def process_query(request: Request, who: TenantSession) -> Any:
    """Record the SQL and flags and start a long task; with a BigQuery emulator attached, run the SQL."""
    state = state_of(request)
    params = dict(request.query_params)
    if not params.get("entityTemplateName"):
        raise CarolError(400, "entityTemplateName is required", "entityTemplateName")
    for flag in PROCESS_FLAGS:
        if flag in params and params[flag].lower() not in ("true", "false"):
            raise CarolError(400, f"{flag} must be true or false", flag)
    sql = (await request.body()).decode("utf-8", errors="replace")
    if not sql.strip():
        raise CarolError(400, "The body must be the SQL to process (text/plain)", "body")
    queries, mirror = state.queries, state.bigquery
    task = state.tasks.create(
        [{"status": "RUNNING", "after": 0}] if mirror is not None else queries.process_schedule,
        name=f"processQuery/{params['entityTemplateName']}",
        error=queries.process_error,
        owner=who.login,
        connector_id=state.identity.connector_id,
    )
    queries.process_calls.append({"sql": sql, "params": params, "task_id": task.task_id})
    if mirror is not None:  # the answer comes now; the task ends when BigQuery does
        threading.Thread(target=_run_sql, args=(state, task, sql, params), daemon=True).start()
    return json_response(state.shapes.task_start("process_query", state.tasks.to_json(task)))


def _run_sql(state: SandboxState, task: Task, sql: str, params: dict[str, str]) -> None:
    """Run the SQL on the emulator's tenant dataset; the rows become the data model's golden records."""
    from google.cloud import bigquery

    mirror, data_model = state.bigquery, params["entityTemplateName"]
    try:
        config = bigquery.QueryJobConfig(default_dataset=f"{mirror.project}.{mirror.dataset}")
        rows = [dict(row.items()) for row in mirror.client.query(sql, job_config=config).result()]
    except Exception as exc:  # noqa: BLE001 - BigQuery's refusal is the task's failure, as in Carol
        state.tasks.set_status(task, "FAILED", f"BigQuery: {getattr(exc, 'message', None) or exc}")
        return
    if params.get("saveCds", "true").lower() == "true":
        state.queries.write_golden(data_model, rows, params.get("clearCds", "false").lower() == "true")
    state.tasks.add_logs(task, [{"mdmLogMessage": f"Processed {len(rows)} rows into {data_model}"}])
    state.tasks.set_status(task, "COMPLETED")
