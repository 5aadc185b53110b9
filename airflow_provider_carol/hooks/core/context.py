"""Where a connection lands: its tenant and organization (also what the Test button reports).

At organization level Carol has no current tenant, and ``GET v1/tenants/current`` fails; pycarol calls it
with ``errors="ignore"`` and takes an answer without ``mdmName`` to mean organization level (carol.py
L546, L580). The provider does the same for connections with ``org_level`` set, and nothing else:
at tenant level a failing ``tenants/current`` is the error it is.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from airflow_provider_carol.exceptions import CarolApiError
from airflow_provider_carol.hooks.core import endpoints
from airflow_provider_carol.hooks.core.answers import required_text, text_at
from airflow_provider_carol.hooks.core.transport import Call, Flow
from airflow_provider_carol.hooks.core.types import Json


@dataclass(frozen=True)
class CarolContext:
    """Where a connection lands: its tenant (environment) and organization, by id and name."""

    tenant_id: str | None
    tenant_name: str | None
    org_id: str | None
    org_name: str | None
    org_level: bool

    def as_dict(self) -> dict[str, str | bool | None]:
        """The context as a plain dict, e.g. for XCom."""
        return asdict(self)


def current_tenant(org_level: bool) -> Flow[Json]:
    """``GET v1/tenants/current``; at organization level an error answer means "no tenant" (``{}``).

    There, a 401 is one of the answers "no tenant" may take, so it does not renew the token; a refused
    session still fails on the organization call that follows.
    """
    try:
        return (yield Call.to(endpoints.TENANT_CURRENT, reauthenticate=not org_level))
    except CarolApiError as exc:
        if not org_level or exc.status_code is None or not 400 <= exc.status_code < 500:
            raise
        return {}


def get_context(org_level: bool = False) -> Flow[CarolContext]:
    """The tenant (``GET v1/tenants/current``) and the organization (``GET v1/organizations/current``).

    ``org_level`` is the connection's extra. A refused credential still fails: at organization level a
    tenant error is taken as "no tenant", but the organization call that follows needs the same session.
    """
    tenant = yield from current_tenant(org_level)
    org = yield Call.to(endpoints.ORGANIZATION_CURRENT)
    tenant_name = text_at(tenant, "mdmName")
    tenant_id = None
    if tenant_name:
        tenant_id = required_text(tenant, "mdmId", "Carol's current tenant", str(endpoints.TENANT_CURRENT))
    org_what = "Carol's current organization"
    return CarolContext(
        tenant_id=tenant_id,
        tenant_name=tenant_name,
        org_id=required_text(org, "mdmId", org_what, str(endpoints.ORGANIZATION_CURRENT)),
        org_name=text_at(org, "mdmName"),
        org_level=tenant_name is None,
    )


def describe_context(context: CarolContext, auth_type: str) -> str:
    """The Test button's success message."""
    where = "at organization level" if context.org_level else f"to tenant {context.tenant_name!r}"
    return f"Connected {where} of organization {context.org_name!r} with auth_type {auth_type!r}."
