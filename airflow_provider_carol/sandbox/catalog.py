"""Connectors, staging schemas and tenant apps: the sandbox's small, mostly-static catalogue."""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .auth import new_id
from .errors import CarolError
from .tasks import iso

SEED_SETTINGS: list[dict[str, Any]] = [
    {"mdmName": "target_staging", "mdmParameterValue": "customers", "mdmType": "STRING"},
    {"mdmName": "batch_size", "mdmParameterValue": 500, "mdmType": "INTEGER"},
    {"mdmName": "threshold", "mdmParameterValue": 0.75, "mdmType": "DOUBLE"},
    {"mdmName": "enabled", "mdmParameterValue": True, "mdmType": "BOOLEAN"},
    {"mdmName": "notes", "mdmParameterValue": None, "mdmType": "STRING"},
]
SEED_PROCESSES: dict[str, dict[str, Any]] = {
    "main_process": {"schedule": [{"status": "RUNNING", "after": 0}, {"status": "COMPLETED", "after": 1}]},
    # Runs until a test sets its status (admin API: POST /__sandbox/tasks/{id}/status).
    "long_process": {"schedule": [{"status": "RUNNING", "after": 0}]},
    "failing_process": {
        "schedule": [{"status": "RUNNING", "after": 0}, {"status": "FAILED", "after": 1}],
        "error": "failing_process: simulated failure",
    },
}


@dataclass
class App:
    """A tenant app with one settings object and one AI-process container."""

    app_id: str
    name: str
    carol_app_id: str
    settings_id: str
    process_container_id: str
    settings: list[dict[str, Any]] = field(default_factory=list)
    processes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "mdmId": self.app_id,
            "mdmName": self.name,
            "mdmCarolAppId": self.carol_app_id,
            "mdmEntityType": "mdmTenantApp",
            "mdmAppVersion": "0.0.1",
            "mdmEntitySpace": "PRODUCTION",
        }

    def settings_json(self) -> dict[str, Any]:
        return {
            "mdmId": self.settings_id,
            "mdmTenantAppId": self.app_id,
            "mdmTenantAppSettingValues": copy.deepcopy(self.settings),
        }


class Catalog:
    """Connectors by id and name, schemas by (connector, staging), apps by id and name."""

    def __init__(self, connector_id: str, app_name: str, app_id: str) -> None:
        self._seed = (connector_id, app_name, app_id)
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        connector_id, app_name, app_id = self._seed
        with self._lock:
            self.connectors: dict[str, dict[str, Any]] = {}
            self.schemas: dict[tuple[str, str], dict[str, Any]] = {}
            self._add_connector("sandbox_connector", "Others", None, connector_id)
            app = App(
                app_id,
                app_name,
                new_id(),
                new_id(),
                new_id(),
                copy.deepcopy(SEED_SETTINGS),
                copy.deepcopy(SEED_PROCESSES),
            )
            self.apps: dict[str, App] = {app.app_id: app}

    # -- connectors ------------------------------------------------------------------------------------------
    def _add_connector(
        self, name: str, group: str, label: Any, connector_id: str | None = None
    ) -> dict[str, Any]:
        now = iso(time.time())
        mdm_id = connector_id or new_id()
        connector: dict[str, Any] = {
            "mdmId": mdm_id,
            "mdmName": name,
            "mdmGroupName": group,
            "mdmLabel": label or {"en-US": name},
            "mdmEntityType": "mdmConnector",
            "mdmCreated": now,
            "mdmLastUpdated": now,
            "mdmDeleted": False,
        }
        self.connectors[mdm_id] = connector
        return connector

    def create_connector(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body.get("mdmName")
        if not isinstance(name, str) or not name:
            raise CarolError(400, "mdmName is required", "mdmName")
        with self._lock:
            if any(c["mdmName"] == name for c in self.connectors.values()):
                raise CarolError(400, f"Connector with name {name} already exists", "mdmName")
            return dict(self._add_connector(name, body.get("mdmGroupName") or "Others", body.get("mdmLabel")))

    def connector(self, connector_id: str) -> dict[str, Any]:
        found = self.connectors.get(connector_id)
        if found is None:
            raise CarolError(404, f"Connector {connector_id} Not found", "connectorId")
        return dict(found)

    def connector_by_name(self, name: str) -> dict[str, Any]:
        for found in list(self.connectors.values()):
            if found["mdmName"] == name:
                return dict(found)
        raise CarolError(404, "Not found", "connectorName")

    def delete_connector(self, connector_id: str) -> dict[str, Any]:
        with self._lock:
            found = self.connectors.pop(connector_id, None)
            if found is None:
                raise CarolError(404, f"Connector {connector_id} Not found", "connectorId")
            for key in [k for k in self.schemas if k[0] == connector_id]:
                del self.schemas[key]
        return dict(found, mdmDeleted=True)

    # -- schemas ---------------------------------------------------------------------------------------------
    def schema(self, connector_id: str, staging: str) -> dict[str, Any]:
        found = self.schemas.get((connector_id, staging))
        if found is None:
            raise CarolError(404, f"Schema for staging {staging} Not found", "stagingType")
        return found

    def put_schema(self, connector_id: str, staging: str, body: dict[str, Any]) -> dict[str, Any]:
        self.connector(connector_id)
        schema = {
            **body,
            "mdmStagingType": staging,
            "mdmConnectorId": connector_id,
            "mdmId": self.schemas.get((connector_id, staging), {}).get("mdmId") or new_id(),
            "mdmLastUpdated": iso(time.time()),
        }
        with self._lock:
            self.schemas[(connector_id, staging)] = schema
        return schema

    def drop_schema(self, connector_id: str, staging: str) -> bool:
        with self._lock:
            return self.schemas.pop((connector_id, staging), None) is not None

    # -- apps ------------------------------------------------------------------------------------------------
    def app(self, app_id: str) -> App:
        found = self.apps.get(app_id)
        if found is None:
            raise CarolError(404, f"Tenant app {app_id} Not found", "tenantAppId")
        return found

    def app_by_name(self, name: str) -> App:
        for found in self.apps.values():
            if found.name == name:
                return found
        raise CarolError(404, f"Tenant app {name} Not found", "appName")

    def update_settings(self, app: App, settings_id: str, values: Any) -> dict[str, Any]:
        if settings_id != app.settings_id:
            raise CarolError(404, f"Settings {settings_id} Not found", "settingsId")
        if not isinstance(values, list) or not all(isinstance(v, dict) and "mdmName" in v for v in values):
            raise CarolError(400, "Body must be a JSON array of {mdmName, mdmParameterValue}", "body")
        with self._lock:
            by_name = {item["mdmName"]: item for item in app.settings}
            for value in values:
                if value["mdmName"] in by_name:
                    by_name[value["mdmName"]]["mdmParameterValue"] = value.get("mdmParameterValue")
                else:
                    app.settings.append(
                        {"mdmName": value["mdmName"], "mdmParameterValue": value.get("mdmParameterValue")}
                    )
            return app.settings_json()
