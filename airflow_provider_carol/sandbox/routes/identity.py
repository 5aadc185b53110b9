"""Who am I: tenant, organization and user lookups (section 4)."""

from typing import Any

from fastapi import APIRouter, Request

from ..auth import Principal
from ..deps import AnySession, principal, state_of
from ..errors import CarolError, json_response
from ..state import SandboxState

router = APIRouter()
PUBLIC_FIELDS = ("mdmId", "mdmName", "mdmSubdomain")


def _user_json(state: SandboxState, who: Principal) -> dict[str, Any]:
    ident, user = state.identity, state.auth.users.get(who.login)
    return {
        "mdmId": user.user_id if user else ident.user_id,
        "mdmUserLogin": who.login,
        "mdmName": who.login.split("@")[0],
        "mdmTenantId": None if who.org_level else ident.tenant_id,
        "mdmOrgId": ident.org_id,
        "mdmEntityType": "mdmUser",
    }


async def _logged_in(request: Request) -> bool:
    """Domain lookups work without a session (pycarol's ``auth=False``) but then show fewer fields."""
    if "authorization" not in request.headers and "x-auth-key" not in request.headers:
        return False
    await principal(request)
    return True


@router.get("/api/v1/tenants/current")
async def tenant_current(request: Request, who: AnySession) -> Any:
    """The tenant; an org-level session has none, so Carol fails the call (the status is a shape)."""
    state = state_of(request)
    if who.org_level:
        return json_response(state.shapes.tenant_current_org(state.org_json()))
    return json_response(state.shapes.tenant(state.tenant_json()))


@router.get("/api/v1/organizations/current")
async def org_current(request: Request, who: AnySession) -> Any:
    return json_response(state_of(request).org_json())


@router.get("/api/v2/users/current")
@router.get("/api/v2/orgUsers/current")
async def user_current(request: Request, who: AnySession) -> Any:
    return json_response(_user_json(state_of(request), who))


@router.get("/api/v2/tenants/domain/{name}")
async def tenant_by_domain(name: str, request: Request) -> Any:
    full, state = await _logged_in(request), state_of(request)
    if name != state.identity.tenant:
        raise CarolError(404, f"Tenant {name} Not found", "domain")
    body = state.tenant_json()
    return json_response(body if full else {key: body[key] for key in PUBLIC_FIELDS})


@router.get("/api/v1/organizations/domain/{name}")
async def org_by_domain(name: str, request: Request) -> Any:
    full, state = await _logged_in(request), state_of(request)
    if name != state.identity.organization:
        raise CarolError(404, f"Organization {name} Not found", "domain")
    body = state.org_json()
    return json_response(body if full else {key: body[key] for key in PUBLIC_FIELDS})
