"""Connectors and staging schemas: the flows, and the methods ``CarolHook`` runs them with.

Connectors are got or created by name, never deleted; a schema is created (POST) or updated (PUT) only
when it differs from the one Carol holds. Every call is a flow (:mod:`~..core.transport`).
"""

from __future__ import annotations

from typing import Any

from airflow_provider_carol.exceptions import (
    CarolApiError,
    CarolAuthError,
    CarolConfigError,
    CarolNotFound,
    CarolUnexpectedAnswer,
)
from airflow_provider_carol.hooks.core import endpoints
from airflow_provider_carol.hooks.core.answers import required_text
from airflow_provider_carol.hooks.core.sync_driver import CarolHookBase
from airflow_provider_carol.hooks.core.transport import Call, Flow
from airflow_provider_carol.hooks.core.types import Json
from airflow_provider_carol.hooks.core.validate import required_string
from airflow_provider_carol.hooks.staging import schema


def check_connector_name(name: Any) -> None:
    """Refuse, before any request, a connector name Carol could create but never find again.

    Connectors are looked up by name in the URL path (``v1/connectors/name/{name}``); a ``/`` or ``\\``
    in the name, a dots-only name or a control character would make get-or-create non-idempotent.
    """
    required_string("connector name", name)
    bad = sorted({ch for ch in name if ch in "/\\" or ord(ch) < 32 or ord(ch) == 127})
    if bad or name.strip(".") == "":
        raise CarolConfigError(
            f"Connector name {name!r} cannot be used: Carol looks connectors up by name in the URL path, "
            "so names with '/', '\\', control characters, or only dots could be created but never found."
        )


def connector_id_of(body: Json, name: str) -> str:
    """A connector's ``mdmId`` (pycarol connectors.py L44-51 reads it after create and by name)."""
    return required_text(body, "mdmId", f"Carol connector {name!r}", str(endpoints.CONNECTOR_BY_NAME))


def connector_by_name(name: str) -> Flow[dict[str, Any] | None]:
    """``GET v1/connectors/name/{name}``: the connector, or None when there is none."""
    try:
        found = yield Call.to(endpoints.CONNECTOR_BY_NAME, path_params={"name": name})
    except CarolNotFound:
        return None
    return found if isinstance(found, dict) else None


def get_or_create_connector(name: str, label: str | None, group_name: str) -> Flow[tuple[str, bool]]:
    """The id of the connector called ``name`` and whether it was created now; never deletes anything."""
    check_connector_name(name)
    found = yield from connector_by_name(name)
    if found:
        return connector_id_of(found, name), False
    body = {"mdmName": name, "mdmGroupName": group_name, "mdmLabel": {"en-US": label or name}}
    try:
        # Safe to resend: Carol keeps connector names unique, so a create that already landed answers
        # "already exists" and is read back below instead of creating a second connector.
        created = yield Call.to(endpoints.CONNECTOR_CREATE, json=body, idempotent=True)
    except (CarolAuthError, CarolUnexpectedAnswer):
        raise
    except CarolApiError as exc:  # created concurrently, or by an attempt whose answer was lost
        # Carol says "already exists" in errorMessage; its HTTP status is not known (carol-evidence.md).
        if exc.status_code is None or exc.status_code >= 500:
            raise
        found = yield from connector_by_name(name)
        if not found:
            raise
        return connector_id_of(found, name), False
    return connector_id_of(created, name), True


def staging_schema(staging_name: str, connector_id: str) -> Flow[dict[str, Any] | None]:
    """The staging's schema, or None when it has none (a 404; other errors raise, unlike pycarol)."""
    try:
        body = yield Call.to(
            endpoints.STAGING_SCHEMA_GET,
            path_params={"staging": staging_name},
            params={"connectorId": connector_id},
        )
    except CarolNotFound:
        return None
    return body if isinstance(body, dict) else None


def put_staging_schema(
    staging_name: str, payload: dict[str, Any], connector_id: str
) -> Flow[tuple[Json, str]]:
    """Create (POST) or update (PUT) the schema when it differs: what Carol holds, and what was done."""
    current = yield from staging_schema(staging_name, connector_id)
    if not schema.schema_differs(current, payload):
        return current or payload, "kept"
    endpoint = endpoints.STAGING_SCHEMA_CREATE if current is None else endpoints.STAGING_SCHEMA_UPDATE
    answer = yield Call.to(
        endpoint, path_params={"staging": staging_name}, json=payload, params={"connectorId": connector_id}
    )
    return answer or payload, "created" if current is None else "updated"


class ConnectorMethods(CarolHookBase):
    """Connector and staging-schema methods of ``CarolHook``."""

    def get_connector_by_name(self, name: str) -> dict[str, Any] | None:
        """The connector called ``name``, or None when there is none."""
        return self.run(connector_by_name(name))

    def get_or_create_connector(self, name: str, label: str | None = None, group_name: str = "Others") -> str:
        """The id of the connector called ``name``, creating it when missing; never deletes anything."""
        connector_id, created = self.run(get_or_create_connector(name, label, group_name))
        if created:
            self.log.info("Created Carol connector %r (%s).", name, connector_id)
        return connector_id

    def resolve_connector_id(self, connector_id: str | None = None, connector_name: str | None = None) -> str:
        """An explicit id, else the id of ``connector_name``, else the connection's ``connector_id``."""
        if connector_id and connector_name:
            raise CarolConfigError("Give connector_id or connector_name, not both.")
        if connector_name:
            found = self.get_connector_by_name(connector_name)
            if not found:
                raise CarolConfigError(f"Carol has no connector named {connector_name!r}.")
            return connector_id_of(found, connector_name)
        resolved = connector_id or self.config.connector_id
        if not resolved:
            raise CarolConfigError(
                "No connector: pass connector_id or connector_name, or set the connection extra "
                "'connector_id'."
            )
        return resolved

    def get_staging_schema(self, staging_name: str, connector_id: str | None = None) -> dict[str, Any] | None:
        """The staging's schema, or None when it has none (other errors raise, unlike pycarol)."""
        return self.run(staging_schema(staging_name, self.resolve_connector_id(connector_id)))

    def put_staging_schema(
        self, staging_name: str, payload: dict[str, Any], connector_id: str | None = None
    ) -> dict[str, Any]:
        """Create the schema (POST) or update it (PUT) when it exists and differs; return what Carol holds."""
        held, done = self.run(
            put_staging_schema(staging_name, payload, self.resolve_connector_id(connector_id))
        )
        what = {"kept": "already has this schema", "created": "schema created", "updated": "schema updated"}
        self.log.info("Staging %r: %s.", staging_name, what[done])
        return held if isinstance(held, dict) else payload
