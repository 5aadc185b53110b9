"""The whole in-memory state of one sandbox process, and the identity it prints at start."""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

from .auth import AuthStore, new_id
from .catalog import Catalog
from .faults import FaultRegistry, RequestLog
from .intake import StagingStore
from .queries import QueryStore
from .shapes import Shapes
from .tasks import TaskStore


@dataclass(frozen=True)
class Identity:
    """Tenant, organization and credentials, random per start (``secrets``); reset never changes them."""

    tenant: str = "sandboxtenant"
    organization: str = "sandboxorg"
    environment: str = "carol.ai"
    user: str = "sandbox@example.com"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    api_key: str = field(default_factory=new_id)
    connector_id: str = field(default_factory=new_id)
    tenant_id: str = field(default_factory=new_id)
    org_id: str = field(default_factory=new_id)
    user_id: str = field(default_factory=new_id)
    app_name: str = "sandbox_app"
    app_id: str = field(default_factory=new_id)

    def public(self) -> dict[str, Any]:
        """The fields of the CLI's first stdout line (minus ``url``/``port``/``ca_bundle``)."""
        data = asdict(self)
        data.pop("user_id")
        data.pop("app_id")
        return data


class SandboxState:
    """Everything the routes read and write; ``reset`` restores the seeded start state."""

    def __init__(self, identity: Identity | None = None) -> None:
        self.identity = identity or Identity()
        ident = self.identity
        self.auth = AuthStore(ident.user, ident.password, ident.api_key, ident.connector_id)
        self.catalog = Catalog(ident.connector_id, ident.app_name, ident.app_id)
        self.staging = StagingStore()
        self.tasks = TaskStore(ident.tenant_id)
        self.queries = QueryStore()
        self.faults = FaultRegistry()
        self.requests = RequestLog()
        self.shapes = Shapes()
        self.bigquery: Any = None  # a bigquery.StagingMirror while one is attached (see bigquery.py)

    def reset(self) -> None:
        for part in (
            self.auth,
            self.catalog,
            self.staging,
            self.tasks,
            self.queries,
            self.faults,
            self.shapes,
        ):
            part.reset()
        self.requests.entries.clear()

    def tenant_json(self) -> dict[str, Any]:
        """The tenant object (``GET v1/tenants/current`` of a tenant-level session, domain lookups)."""
        ident = self.identity
        return {
            "mdmId": ident.tenant_id,
            "mdmName": ident.tenant,
            "mdmSubdomain": ident.tenant,
            "mdmOrgId": ident.org_id,
            "mdmTenantId": f"{ident.tenant_id[:16]}tenant",  # Carol's own second id (evidence: != mdmId)
            "mdmEntityType": "mdmTenant",
            "mdmStatus": "ACTIVE",
        }

    def org_json(self) -> dict[str, Any]:
        ident = self.identity
        return {
            "mdmId": ident.org_id,
            "mdmName": ident.organization,
            "mdmSubdomain": ident.organization,
            "mdmEntityType": "mdmOrganization",
        }
