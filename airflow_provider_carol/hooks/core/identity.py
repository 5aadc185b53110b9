"""Where a connection lands: its tenant and organization (also what the Test button reports)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from airflow_provider_carol.hooks.core import endpoints
from airflow_provider_carol.hooks.core.transport import Call, Flow


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


def get_context() -> Flow[CarolContext]:
    """``GET v1/tenants/current`` and ``v1/organizations/current``; an org-level login has no tenant name."""
    tenant = yield Call.to(endpoints.TENANT_CURRENT)
    org = yield Call.to(endpoints.ORGANIZATION_CURRENT)
    return CarolContext(
        tenant_id=tenant.get("mdmId"),
        tenant_name=tenant.get("mdmName"),
        org_id=org.get("mdmId"),
        org_name=org.get("mdmName"),
        org_level=not tenant.get("mdmName"),
    )


def describe_context(context: CarolContext, auth_type: str) -> str:
    """The Test button's success message."""
    where = "at organization level" if context.org_level else f"to tenant {context.tenant_name!r}"
    return f"Connected {where} of organization {context.org_name!r} with auth_type {auth_type!r}."
