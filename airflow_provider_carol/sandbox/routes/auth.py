"""Token endpoints (password, refresh, MFA), token validation and context switches (section 2)."""

from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request

from ..deps import AnySession, state_of
from ..errors import CarolError, json_response
from ..state import SandboxState

router = APIRouter()


async def _form(request: Request) -> dict[str, str]:
    if request.headers.get("content-type", "").startswith("application/json"):
        raise CarolError(400, "The token endpoint takes a form body (application/x-www-form-urlencoded)")
    raw = (await request.body()).decode("utf-8", "replace")
    return {key: values[-1] for key, values in parse_qs(raw, keep_blank_values=True).items()}


#: pycarol's default connector: Carol refuses it for an organization-level login (pyCarol PR #362).
PYCAROL_CONNECTOR_ID = "f9953f6645f449baaccd16ab462f9b64"


def _password_grant(state: SandboxState, form: dict[str, str]) -> dict[str, Any]:
    """No ``subdomain`` means an org-level login; a given one must name the sandbox's tenant.

    ``connectorId`` is required (Carol's auth docs list it; pycarol always sends it), and an org-level
    login with pycarol's default connector is refused with the answer pyCarol PR #362 quotes.
    """
    ident = state.identity
    subdomain, org = form.get("subdomain") or None, form.get("orgSubdomain") or None
    connector_id = form.get("connectorId") or None
    if connector_id is None:
        raise CarolError(400, "connectorId is required", "connectorId")
    if subdomain is None and connector_id == PYCAROL_CONNECTOR_ID:
        raise CarolError(
            400, f"Login to organization cannot be with this connectorId {connector_id}", "connectorId"
        )
    if subdomain is not None and subdomain != ident.tenant:
        raise CarolError(404, f"Tenant {subdomain} Not found", "subdomain")
    if org is not None and org != ident.organization:
        raise CarolError(404, f"Organization {org} Not found", "orgSubdomain")
    return state.auth.password_grant(
        form.get("username", ""), form.get("password", ""), org_level=subdomain is None
    )


@router.post("/api/v5/oauth2/token")
async def token(request: Request) -> Any:
    state, form = state_of(request), await _form(request)
    grant = form.get("grant_type")
    if grant == "password":
        return json_response(_password_grant(state, form))
    if grant == "refresh_token":
        return json_response(state.auth.refresh_grant(form.get("refresh_token")))
    raise CarolError(400, f"Unsupported grant_type {grant!r} (password or refresh_token)", "grant_type")


@router.post("/api/v5/oauth2/token/mfa/authenticate")
async def mfa(request: Request) -> Any:
    form = await _form(request)
    return json_response(
        state_of(request).auth.mfa_authenticate(request.headers.get("authorization"), form.get("mfaCode"))
    )


@router.get("/api/v2/oauth2/token/{access_token}")
@router.get("/api/v5/oauth2/token/{access_token}")
async def validate(access_token: str, request: Request) -> Any:
    return json_response(state_of(request).auth.token_info(access_token))


def _check(given: str, expected: str, kind: str) -> None:
    if given != expected:
        raise CarolError(404, f"{kind} {given} Not found (the sandbox has a single {kind.lower()})", "id")


@router.post("/api/v2/oauth2/switchTenantContext/{env_id}")
async def switch_tenant(env_id: str, request: Request, who: AnySession) -> Any:
    state = state_of(request)
    _check(env_id, state.identity.tenant_id, "Tenant")
    return json_response(state.auth.issue(who.login, org_level=False))


@router.post("/api/v2/oauth2/switchOrgContext/{org_id}")
async def switch_org(org_id: str, request: Request, who: AnySession) -> Any:
    state = state_of(request)
    _check(org_id, state.identity.org_id, "Organization")
    return json_response(state.auth.issue(who.login, org_level=True))


@router.post("/api/v2/oauth2/switchTenantContextWithApiKey/{env_id}")
@router.post("/api/v2/oauth2/switchOrgContextWithApiKey/{env_id}")
async def switch_api_key(env_id: str, request: Request, who: AnySession) -> Any:
    ident = state_of(request).identity
    if env_id not in (ident.tenant_id, ident.org_id):
        raise CarolError(404, f"Context {env_id} Not found", "id")
    return json_response({"apiKey": ident.api_key, "connectorId": ident.connector_id})
