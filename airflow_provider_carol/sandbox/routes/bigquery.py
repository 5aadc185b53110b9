"""The BigQuery temporary service-account key (section 7.1) and the Google token_uri it names."""

import datetime as dt
import secrets
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from ..deps import TenantSession, read_object, state_of
from ..errors import CarolError, json_response
from ..tls import private_key_pem

router = APIRouter()
GOOGLE_TOKEN_PATH = "/google/oauth2/token"


def service_account(tenant_id: str, token_uri: str, hours: float) -> dict[str, Any]:
    """A Google service-account JSON with a fresh RSA 2048 key; slow (key generation), so off the loop."""
    project = f"carol-{tenant_id[:20]}"
    expires = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=hours)
    email = f"sandbox-{secrets.token_hex(4)}@{project}.iam.gserviceaccount.com"
    return {
        "type": "service_account",
        "project_id": project,
        "private_key_id": secrets.token_hex(20),
        "private_key": private_key_pem(2048),
        "client_email": email,
        "client_id": str(secrets.randbelow(10**20)).zfill(21),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": f"https://www.googleapis.com/robot/v1/metadata/x509/{email}",
        "expiration_time": expires.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }


@router.post("/sql/v1/api/v1/create_temporary_key")
async def create_key(request: Request, who: TenantSession) -> Any:
    state = state_of(request)
    ident = state.identity
    body = await read_object(request, "{expirationTime, mdmOrgId, mdmTenantId}")
    hours = body.get("expirationTime", 24)
    if not isinstance(hours, (int, float)) or not 0 < hours <= 24:
        raise CarolError(400, "expirationTime must be a number of hours in (0, 24]", "expirationTime")
    if body.get("mdmTenantId") not in (None, ident.tenant_id):
        raise CarolError(404, f"Tenant {body.get('mdmTenantId')} Not found", "mdmTenantId")
    if body.get("mdmOrgId") not in (None, ident.org_id):
        raise CarolError(404, f"Organization {body.get('mdmOrgId')} Not found", "mdmOrgId")
    token_uri = str(request.base_url).rstrip("/") + GOOGLE_TOKEN_PATH
    return json_response(await run_in_threadpool(service_account, ident.tenant_id, token_uri, hours))


@router.post(GOOGLE_TOKEN_PATH)
async def google_token(request: Request) -> Any:
    """Any JWT-bearer exchange succeeds: the sandbox does not verify the assertion."""
    await request.body()
    return json_response(
        {
            "access_token": "ya29.sandbox-" + secrets.token_urlsafe(24),
            "expires_in": 3600,
            "token_type": "Bearer",
        }
    )
