"""Carol apps: look an app up by name, read its settings, run one of its AI processes.

An app is looked up by name to get its tenant-app id; settings and AI processes hang off that id.
The app name comes from the argument, else the connection's ``app_name`` extra; never a blank default.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from airflow_provider_carol.exceptions import CarolConfigError, CarolUnexpectedAnswer
from airflow_provider_carol.hooks.core import endpoints
from airflow_provider_carol.hooks.core.answers import describe, required_text
from airflow_provider_carol.hooks.core.sync_driver import CarolHookBase
from airflow_provider_carol.hooks.core.transport import Call, Flow
from airflow_provider_carol.hooks.core.types import Json
from airflow_provider_carol.hooks.core.validate import required_string
from airflow_provider_carol.hooks.tasks.models import CarolTask, started_task


@dataclass(frozen=True)
class CarolApp:
    """A tenant app: ``app_id`` is the tenant-app id the settings and process endpoints take."""

    app_id: str
    name: str
    carol_app_id: str | None = None
    raw: dict[str, Json] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, body: Json, *, app_name: str) -> CarolApp:
        """Build from ``GET v1/tenantApps/name/{name}``; an answer without ``mdmId`` is an error."""
        app_id = required_text(body, "mdmId", f"Carol app {app_name!r}", str(endpoints.APP_BY_NAME))
        return cls(app_id, str(body.get("mdmName") or app_name), body.get("mdmCarolAppId"), body)


def flatten_settings(body: Json, app_name: str) -> dict[str, Json]:
    """``{mdmName: mdmParameterValue}`` over ``mdmTenantAppSettingValues``, as the reference SDK returns.

    A missing value becomes ``None``; a malformed answer is a :class:`CarolApiError` naming the item.
    """
    if not isinstance(body, dict):
        raise CarolUnexpectedAnswer(
            f"Carol app {app_name!r}: the settings answer is {describe(body)}, not an object.",
            endpoint=str(endpoints.APP_SETTINGS),
        )
    flat: dict[str, Json] = {}
    for index, item in enumerate(body.get("mdmTenantAppSettingValues") or []):
        if not isinstance(item, dict) or not item.get("mdmName"):
            raise CarolUnexpectedAnswer(
                f"Carol app {app_name!r}: setting {index} has no mdmName ({describe(item)}).",
                endpoint=str(endpoints.APP_SETTINGS),
            )
        flat[str(item["mdmName"])] = item.get("mdmParameterValue")
    return flat


def get_app(name: str) -> Flow[CarolApp]:
    """The tenant app (production space) called ``name``."""
    body = yield Call.to(
        endpoints.APP_BY_NAME, path_params={"app_name": name}, params={"entitySpace": "PRODUCTION"}
    )
    return CarolApp.from_api(body, app_name=name)


def get_app_settings(name: str) -> Flow[dict[str, Json]]:
    """The app's settings, flattened (production space)."""
    app = yield from get_app(name)
    body = yield Call.to(
        endpoints.APP_SETTINGS,
        path_params={"app_id": app.app_id},
        params={"entitySpace": "PRODUCTION", "checkAllSpaces": "false"},
    )
    return flatten_settings(body, app.name)


def start_app_process(name: str, process_name: str) -> Flow[CarolTask]:
    """Run one AI process of the app; the execute POST is never resent (a duplicate would run it twice).

    The process container is the one object ``GET .../aiprocesses`` answers (``{}`` when the app has no
    process); execute answers ``{"success": true, "data": <task>}`` (carol-evidence.md).
    """
    required_string("process_name", process_name)
    app = yield from get_app(name)
    container = yield Call.to(
        endpoints.APP_PROCESSES,
        path_params={"app_id": app.app_id},
        params={"entitySpace": "WORKING", "checkAllSpaces": "true"},
    )
    if container == {}:
        raise CarolConfigError(f"Carol app {app.name!r} has no AI process (its process listing is empty).")
    container_id = required_text(
        container, "mdmId", f"Carol app {app.name!r}: the AI-process listing", str(endpoints.APP_PROCESSES)
    )
    body = yield Call.to(
        endpoints.APP_PROCESS_EXECUTE,
        path_params={"app_id": app.app_id, "process_id": container_id, "process_name": process_name.strip()},
    )
    what = f"Carol process {process_name.strip()!r} of app {app.name!r}"
    return started_task(body, what, str(endpoints.APP_PROCESS_EXECUTE))


class AppMethods(CarolHookBase):
    """App methods of ``CarolHook``."""

    def app_name(self, app_name: str | None = None) -> str:
        """``app_name``, else the connection's ``app_name`` extra; neither is a clear error."""
        name = (app_name or "").strip() or (self.config.app_name or "").strip()
        if not name:
            raise CarolConfigError(
                "No Carol app name: pass app_name or set extra 'app_name' on connection "
                f"{self.config.conn_id!r}."
            )
        return name

    def get_app(self, app_name: str | None = None) -> CarolApp:
        """The tenant app (production space) named ``app_name`` or the connection's ``app_name``."""
        return self.run(get_app(self.app_name(app_name)))

    def get_app_settings(self, app_name: str | None = None) -> dict[str, Json]:
        """The app's settings flattened to ``{name: value}`` (production space), as pycarol's get_settings."""
        return self.run(get_app_settings(self.app_name(app_name)))

    def start_app_process(self, app_name: str | None, process_name: str) -> CarolTask:
        """Run one AI process of the app and return the long task Carol created for it (never resent)."""
        return self.run(start_app_process(self.app_name(app_name), process_name))
