"""Request helpers shared by the routes: the state, credential checks and JSON bodies."""

from typing import Annotated, Any

import msgspec
from fastapi import Depends, Request

from .auth import Principal
from .errors import CarolError
from .faults import is_loopback
from .state import SandboxState


def state_of(request: Request) -> SandboxState:
    """The sandbox state the app was built around."""
    return request.app.state.sandbox


async def principal(request: Request) -> Principal:
    """Any valid session: a raw access token in Authorization, or the API key headers."""
    headers = request.headers
    return state_of(request).auth.authenticate(
        headers.get("authorization"), headers.get("x-auth-key"), headers.get("x-auth-connectorid")
    )


async def tenant_principal(request: Request) -> Principal:
    """A tenant-level session; an org-level token gets 403 on tenant data."""
    who = await principal(request)
    if who.org_level:
        raise CarolError(
            403,
            "This endpoint needs a tenant-level session; the token is org-level "
            "(log in with subdomain, or switch to a tenant)",
        )
    return who


AnySession = Annotated[Principal, Depends(principal)]
TenantSession = Annotated[Principal, Depends(tenant_principal)]


async def loopback_only(request: Request) -> None:
    """The admin API has no auth, so it answers loopback clients only."""
    if not is_loopback(request.client.host if request.client else None):
        raise CarolError(403, "The sandbox admin API only answers loopback clients")


async def read_json(request: Request, *, required: bool = True) -> Any:
    """Decode a JSON body; an empty body is ``None`` (pycarol sends empty action POSTs)."""
    raw = await request.body()
    if not raw.strip():
        if required:
            raise CarolError(400, "A JSON body is required", "body")
        return None
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise CarolError(400, f"Invalid JSON body: {exc}", "body") from exc


async def read_object(request: Request, hint: str) -> dict[str, Any]:
    """A JSON object body, or a 400 that says what was expected."""
    body = await read_json(request)
    if not isinstance(body, dict):
        raise CarolError(400, f"Body must be a JSON object: {hint}", "body")
    return body
