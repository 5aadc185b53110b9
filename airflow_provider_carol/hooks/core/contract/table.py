"""The wire contract's rows: every endpoint of :mod:`~airflow_provider_carol.hooks.core.endpoints`."""

from __future__ import annotations

from airflow_provider_carol.hooks.core import endpoints
from airflow_provider_carol.hooks.core.contract.model import ASSUMED, Contract, Field
from airflow_provider_carol.hooks.core.endpoints import Endpoint

PYCAROL = "pycarol 2.56.15"
TASK_FIELDS = (
    Field("mdmId", f"{PYCAROL} tasks.py L13-36; TR carol_task.py L63-79 (RR)"),
    Field(
        "mdmTaskStatus",
        "TR carol_task.py L63-79; CAM tests L113-137 (RR): READY, RUNNING, COMPLETED, FAILED, CANCELED",
    ),
    Field("mdmStartDate", f"{PYCAROL} tasks.py L13-36", required=False),
    Field("mdmLastUpdated", f"{PYCAROL} tasks.py L13-36", required=False),
    Field("mdmTaskProgress", f"{PYCAROL} tasks.py L13-36", required=False),
    Field("mdmTaskType", "TR carol_task.py L300-309 (RR: filtered on as mdmTaskType.raw)", required=False),
    Field(
        "mdmData.carolAppName",
        f"{ASSUMED}: TR reads mdmData.carolAppVersion; the app name beside it is "
        "not shown (event payload app_name)",
        required=False,
    ),
    Field(
        "mdmTaskName",
        f"{ASSUMED}: CAM tests show task names, not the field that holds them (mdmName is tried too)",
        required=False,
        alternatives=("mdmName",),
    ),
    Field(
        "mdmErrorMessage",
        f"{ASSUMED}: no caller reads a failed task's message (errorMessage is tried too)",
        required=False,
        alternatives=("errorMessage",),
    ),
)
TASK_ID = Field(
    "data.mdmId",
    "TR main.py@59e234a L156-157, carol_task.py L117, L404; CAM carol_api.py L137-138 (RR: execute, "
    "processData, consolidate); taskId: TR carol_task.py L416-437 (RR: drop, clearData); mdmId: TR "
    "main.py@59e234a L97 (RR: install, reprocess); data.taskId: assumed by symmetry",
    alternatives=("mdmId", "taskId", "data.taskId"),
)
SUCCESS = Field("success", "CAM carol_api.py L137-138 (RR: raises when falsy)", required=False)
ERROR_FIELDS = (
    Field(
        "errorMessage",
        f"{PYCAROL} carol.py L325-363; pyCarol PR #362 (RR)",
        required=False,
        alternatives=("message", "error_description"),
    ),
    Field("errorCode", f"{PYCAROL} carol.py L325-363; pyCarol PR #362 (RR)", required=False),
    Field("possibleResponsibleField", "pyCarol PR #362; examples/auth.ipynb cell 14 (RR)", required=False),
    Field("applicationErrorCode", "pyCarol PR #362 (RR: null)", required=False),
)

#: A page of a named query or of its scroll (the two answer alike).
QUERY_PAGE_FIELDS = (
    Field("hits", f"{PYCAROL} query.py L300-349; ADVPL getAppointments; CJS L556-580 (RR)"),
    Field("hits[].mdmGoldenFieldAndValues", "ADVPL getAppointments (RR)", required=False),
    Field("totalHits", f"{PYCAROL} query.py L300-349; TDN pageId=653421894 (D)", required=False),
    Field("scrollId", f"{PYCAROL} query.py L300-349 (retried when missing)", required=False),
)

CONTRACTS: tuple[Contract, ...] = (
    Contract(
        endpoints.TOKEN,
        "form: username, password, grant_type=password, connectorId (pycarol's f9953f... when the "
        "connection names none), subdomain (tenant level only), orgSubdomain; or grant_type=refresh_token, "
        "refresh_token",
        (
            Field("access_token", f"{PYCAROL} auth/PwdAuth.py L84-142; carol-workshop auth.service.ts (RR)"),
            Field(
                "expires_in",
                f"{PYCAROL} auth/PwdAuth.py L84-142; carol-workshop auth.service.ts (RR)",
                required=False,
            ),
            Field("refresh_token", f"{PYCAROL} auth/PwdAuth.py L84-142", required=False),
            Field("mfa_token", f"{PYCAROL} auth/PwdAuth.py L84-142 (an MFA challenge)", required=False),
        ),
        "timeIssuedInMillis is not read: expiry runs on the local monotonic clock.",
    ),
    Contract(
        endpoints.TENANT_CURRENT,
        "no body",
        (
            Field("mdmId", f"{PYCAROL} carol.py L546; TOTVS Labs presto proxy (RR)"),
            Field("mdmName", f"{PYCAROL} carol.py L546, L580-583 (missing = organization level)"),
        ),
        "At organization level the call fails (pycarol reads it with errors='ignore'); its HTTP status is "
        "not known, so every 4xx means 'no tenant' for a connection with org_level set.",
    ),
    Contract(
        endpoints.ORGANIZATION_CURRENT,
        "no body",
        (
            Field("mdmId", f"{PYCAROL} carol.py L549, L586"),
            Field("mdmName", f"{PYCAROL} carol.py L549, L585", required=False),
        ),
    ),
    Contract(
        endpoints.CONNECTOR_CREATE,
        "JSON {mdmName, mdmGroupName, mdmLabel: {en-US}}",
        (Field("mdmId", f"{PYCAROL} connectors.py L44-51"),),
        "A duplicate answers an error whose errorMessage says 'already exists' (pycarol connectors.py "
        "L44-51); its HTTP status is not known, so any 4xx but 401/403 is followed by a lookup by name.",
    ),
    Contract(
        endpoints.CONNECTOR_BY_NAME,
        "no body",
        (Field("mdmId", f"{PYCAROL} connectors.py L51, L113, L237; TR carol_task.py get_all_etls (RR)"),),
    ),
    Contract(
        endpoints.CONNECTOR_BY_ID,
        "no body (carol-check only)",
        (Field("mdmId", f"{ASSUMED}: pycarol returns this answer raw; the connector object of by-name"),),
    ),
    Contract(
        endpoints.CONNECTOR_STATS,
        "no body",
        (
            Field(
                "aggs.*.stagingEntityStats",
                f"{PYCAROL} connectors.py L244-245; CJS L2261-2278; TR "
                "carol_task.py L151 (RR: the keys are the staging names)",
            ),
            Field(
                "aggs.*.stagingEntityStats.*",
                f"{ASSUMED}: callers read only the keys; the value is read as "
                "a record count: a number, or an object with count, total, totalRecords, recordCount or "
                "doc_count (carol-check reports the shape a tenant answers)",
                required=False,
            ),
        ),
    ),
    Contract(
        endpoints.CONNECTOR_STATS_ALL,
        "no body",
        (
            Field("aggs.*.stagingEntityStats", f"{PYCAROL} connectors.py L244-245; CJS L2261-2278 (RR)"),
            Field(
                "aggs.*.stagingEntityStats.*", f"{ASSUMED}: as for v1/connectors/{{id}}/stats", required=False
            ),
        ),
    ),
    Contract(
        endpoints.STAGING_SCHEMA_GET,
        "query connectorId",
        (
            Field(
                "mdmCrosswalkTemplate.mdmCrossreference",
                f"{PYCAROL} staging.py L296-420; TR carol_task.py L117-121 (RR)",
                required=False,
            ),
            Field(
                "mdmStagingMapping.properties",
                f"{ASSUMED}: the schema pycarol writes (carol-api.md 6.1) "
                "read back as written (the drift check, lineage)",
                required=False,
            ),
            Field(
                "mdmFlexible", f"{ASSUMED}: written by pycarol (carol-api.md 6.1), read back", required=False
            ),
            Field(
                "mdmExportData",
                f"{ASSUMED}: written by pycarol (carol-api.md 6.1), read back",
                required=False,
            ),
        ),
        "404 means no schema (pycarol 2.46 raised only on 404; a drop answers SCHEMA_NOT_FOUND: TR, RR).",
        data_keys=("mdmStagingMapping*properties", "mdmCrosswalkTemplate.mdmCrossreference"),
    ),
    Contract(
        endpoints.STAGING_SCHEMA_CREATE,
        "query connectorId; JSON schema {mdmStagingType, mdmCrosswalkTemplate, mdmStagingMapping, "
        "mdmFlexible, mdmExportData}",
        answer=f"Not read ({PYCAROL} staging.py L296-420 ignores it): returned to the caller as is.",
    ),
    Contract(
        endpoints.STAGING_SCHEMA_UPDATE,
        "query connectorId; the same JSON schema",
        answer=f"Not read ({PYCAROL} staging.py L296-420 ignores it): returned to the caller as is.",
    ),
    Contract(
        endpoints.STAGING_INTAKE,
        "query returnData=false, connectorId, batchId, batchIdSequence; gzip JSON array of records",
        answer="Not read: only the status (CJS L703-710; ADVPL addStagingValue, RR). Resent as is on 408, "
        f"409, 429, 500, 502, 503, 504, 520, 524, 598 ({PYCAROL} staging.py L259-263).",
    ),
    Contract(
        endpoints.BATCH_SUMMARY,
        "JSON {totalRecords, totalRequests, timestampStart, timestampEnd}",
        answer=f"Not read ({PYCAROL} staging.py L64-98).",
    ),
    Contract(
        endpoints.QUERY_FILTER,
        "query indexType=MASTER, scrollable=false, pageSize, offset, sortBy=mdmLastUpdated, sortOrder=DESC; "
        "JSON mustList with TYPE_FILTER mdmTask and TERMS_FILTER on mdmTaskStatus.raw, mdmTaskType.raw, ...",
        (
            Field(
                "hits", "TR carol_task.py L300-309; CJS L1755-1935; docs.carol.ai .../Realtime/filters (RR)"
            ),
            *(
                Field(
                    f"hits[].{f.path}", f.evidence, f.required, tuple(f"hits[].{a}" for a in f.alternatives)
                )
                for f in TASK_FIELDS
            ),
        ),
    ),
    Contract(endpoints.TASK_GET, "no body", TASK_FIELDS),
    Contract(
        endpoints.TASK_LOGS_ADD,
        "JSON [{mdmTaskId, mdmLogMessage, mdmLogLevel}]",
        (
            Field(
                "success",
                f"{PYCAROL} tasks.py L117-119 (add_logs returns resp['success'])",
                required=False,
            ),
        ),
    ),
    Contract(
        endpoints.TASK_LOGS_GET,
        "no body",
        (
            Field(
                "[].mdmLogMessage",
                f"{ASSUMED}: pycarol returns this answer raw (tasks.py L121-137); the fields it sends "
                "(a list, or hits/logs of an object)",
                alternatives=("hits[].mdmLogMessage", "logs[].mdmLogMessage"),
            ),
            Field("[].mdmLogLevel", f"{ASSUMED}: as mdmLogMessage", required=False),
            Field("[].mdmLogDate", f"{ASSUMED}: as mdmLogMessage", required=False),
        ),
    ),
    Contract(
        endpoints.TASK_CANCEL,
        "query force",
        (
            Field(
                "mdmTaskStatus",
                "carol-evidence.md GET v1/tasks/{id} row: cancel returns the task (RR)",
                required=False,
            ),
        ),
        "Read as a task when it carries mdmTaskStatus, else the task is read with GET v1/tasks/{id}.",
    ),
    Contract(
        endpoints.TASK_FAIL,
        "query message",
        (
            Field(
                "mdmTaskStatus",
                "carol-evidence.md GET v1/tasks/{id} row: fail returns the task (RR)",
                required=False,
            ),
        ),
        "Read as a task when it carries mdmTaskStatus, else the task is read with GET v1/tasks/{id}.",
    ),
    Contract(
        endpoints.TASK_REPROCESS,
        "no body",
        (
            Field(
                "mdmId",
                "TR carol_apps.py L58; TR carol_task.py track_tasks (RR: the same task id)",
                required=False,
            ),
        ),
        "Read as a task when it carries mdmTaskStatus, else the task is read with GET v1/tasks/{id}.",
    ),
    Contract(
        endpoints.APP_BY_NAME,
        "query entitySpace=PRODUCTION",
        (
            Field("mdmId", f"{PYCAROL} apps.py L57, L431, L480 (the tenant-app id of settings, processes)"),
            Field("mdmName", f"{ASSUMED}: the app name, echoed (the argument when absent)", required=False),
            Field("mdmCarolAppId", f"{ASSUMED}: kept for the caller, not used", required=False),
        ),
    ),
    Contract(
        endpoints.APP_SETTINGS,
        "query entitySpace=PRODUCTION, checkAllSpaces=false",
        (
            Field("mdmTenantAppSettingValues[].mdmName", f"{PYCAROL} apps.py L214-215"),
            Field(
                "mdmTenantAppSettingValues[].mdmParameterValue",
                f"{PYCAROL} apps.py L214-215",
                required=False,
            ),
        ),
    ),
    Contract(
        endpoints.APP_PROCESSES,
        "query entitySpace=WORKING, checkAllSpaces=true",
        (
            Field(
                "mdmId",
                "TR main.py@59e234a L155; CAM carol_api.py L44-116 (RR: one object; {} when the "
                "app has no process)",
            ),
        ),
    ),
    Contract(
        endpoints.APP_PROCESS_EXECUTE,
        "no body; never resent",
        (SUCCESS, TASK_ID),
        "{'success': true, 'data': <task>} (RR); an answer with no task id fails without a resend and is "
        "logged, redacted.",
    ),
    Contract(
        endpoints.BIGQUERY_TEMPORARY_KEY,
        "JSON {expirationTime (hours), mdmOrgId, mdmTenantId}; never resent",
        (
            Field("client_email", f"{PYCAROL} bigquery.py L309 (Google service-account info)"),
            Field("private_key", f"{PYCAROL} bigquery.py L309 (Google service-account info)"),
            Field("token_uri", f"{PYCAROL} bigquery.py L309 (google-auth needs it)", required=False),
            Field("project_id", f"{PYCAROL} bigquery.py L310 (the client project)", required=False),
            Field(
                "expiration_time",
                f"{PYCAROL} bigquery.py L57-81 (%Y-%m-%dT%H:%M:%S.%fZ; else now + hours)",
                required=False,
            ),
        ),
    ),
    Contract(
        endpoints.BIGQUERY_PROCESS_QUERY,
        "query entityTemplateName and the processing flags; text/plain body (the SQL); never resent",
        (
            SUCCESS,
            Field(
                TASK_ID.path,
                f"{ASSUMED}: no public caller reads this answer (carol-evidence.md); "
                "every task-start shape is accepted",
                alternatives=TASK_ID.alternatives,
            ),
        ),
    ),
    Contract(
        endpoints.NAMED_QUERY,
        "query offset, pageSize, sortOrder, indexType, scrollable=true, sortBy, fields; JSON params",
        QUERY_PAGE_FIELDS,
    ),
    Contract(endpoints.QUERY_SCROLL, "the same query and body; the scroll id in the path", QUERY_PAGE_FIELDS),
)

#: The error body of every non-2xx answer, read by the one error mapping (``errors.py``).
ERROR_BODY = Contract(
    Endpoint("ANY", "(any endpoint, non-2xx)"),
    "-",
    ERROR_FIELDS,
    "errorCode equals the HTTP status; a 2xx whose body is such an object is an error too.",
)


def contract_for(endpoint: Endpoint) -> Contract:
    """The row of ``endpoint``; every endpoint the provider calls has one."""
    for contract in CONTRACTS:
        if contract.endpoint == endpoint:
            return contract
    raise KeyError(f"no contract row for {endpoint}")


def assumed_fields() -> list[tuple[Endpoint, Field]]:
    """Every answer field read on an assumption (the README's known limits list them)."""
    return [(c.endpoint, f) for c in (*CONTRACTS, ERROR_BODY) for f in c.fields if f.assumed]
