"""App methods of :class:`~airflow_provider_carol.hooks.carol.CarolHook` (mixed into it).

An app is looked up by name to get its tenant-app id; settings and AI processes hang off that id.
The app name comes from the argument, else the connection's ``app_name`` extra; never a blank default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_carol.exceptions import CarolApiError, CarolConfigError
from airflow_provider_carol.hooks import endpoints
from airflow_provider_carol.hooks.models import CarolApp, CarolTask

if TYPE_CHECKING:
    from airflow_provider_carol.hooks.config import CarolConnectionConfig


def flatten_settings(body: Any, app_name: str) -> dict[str, Any]:
    """``{mdmName: mdmParameterValue}`` over ``mdmTenantAppSettingValues``, as the reference SDK returns.

    A missing value becomes ``None``; a malformed answer is a :class:`CarolApiError` naming the item.
    """
    if not isinstance(body, dict):
        raise CarolApiError(
            f"Carol app {app_name!r}: settings answer is {type(body).__name__}, not an object."
        )
    flat: dict[str, Any] = {}
    for index, item in enumerate(body.get("mdmTenantAppSettingValues") or []):
        if not isinstance(item, dict) or not item.get("mdmName"):
            raise CarolApiError(
                f"Carol app {app_name!r}: setting {index} has no mdmName: {str(item)[:200]!r}"
            )
        flat[str(item["mdmName"])] = item.get("mdmParameterValue")
    return flat


class AppsHookMixin:
    """Apps part of CarolHook; relies on the host class's ``call_api``/``config``."""

    if TYPE_CHECKING:
        config: CarolConnectionConfig

        def call_api(self, path: str, method: str | None = None, **kwargs: Any) -> Any: ...

    def _app_name(self, app_name: str | None) -> str:
        name = (app_name or "").strip() or (self.config.app_name or "").strip()
        if not name:
            raise CarolConfigError(
                f"No Carol app name: pass app_name or set extra 'app_name' on connection "
                f"{self.config.conn_id!r}."
            )
        return name

    def get_app(self, app_name: str | None = None) -> CarolApp:
        """The tenant app (production space) named ``app_name`` or the connection's ``app_name``."""
        name = self._app_name(app_name)
        body = self.call_api(endpoints.APP_BY_NAME.path(app_name=name), params={"entitySpace": "PRODUCTION"})
        try:
            return CarolApp.from_api(body, app_name=name)
        except ValueError as exc:
            raise CarolApiError(str(exc)) from None

    def get_app_settings(self, app_name: str | None = None) -> dict[str, Any]:
        """The app's settings flattened to ``{name: value}`` (production space), as pycarol's get_settings."""
        app = self.get_app(app_name)
        body = self.call_api(
            endpoints.APP_SETTINGS.path(app_id=app.app_id),
            params={"entitySpace": "PRODUCTION", "checkAllSpaces": "false"},
        )
        return flatten_settings(body, app.name)

    def start_app_process(self, app_name: str | None, process_name: str) -> CarolTask:
        """Run one AI process of the app and return the long task Carol created for it.

        The execute POST is never resent automatically: a duplicate would run the process twice.
        """
        if not isinstance(process_name, str) or not process_name.strip():
            raise CarolConfigError(f"process_name must be a non-empty string, got {process_name!r}.")
        app = self.get_app(app_name)
        container = self.call_api(
            endpoints.APP_PROCESSES.path(app_id=app.app_id),
            params={"entitySpace": "WORKING", "checkAllSpaces": "true"},
        )
        if not isinstance(container, dict) or not container.get("mdmId"):
            raise CarolApiError(
                f"Carol app {app.name!r} has no AI-process container (no mdmId in the answer)."
            )
        body = self.call_api(
            endpoints.APP_PROCESS_EXECUTE.path(
                app_id=app.app_id, process_id=container["mdmId"], process_name=process_name.strip()
            ),
            "POST",
        )
        try:
            return CarolTask.from_api(body)
        except ValueError as exc:
            raise CarolApiError(
                f"Carol started process {process_name!r} of app {app.name!r} "
                f"but its answer names no task: {exc}"
            ) from None
