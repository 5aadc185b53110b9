"""The Carol connection form as the running Airflow's UI builds it, in one shape for every line.

Airflow 3 serves it from ``HookMetaService`` (``GET /ui/connections/hook_meta``); 2.11's FAB webserver
renders the wtforms fields ``ProvidersManager`` collected from the hook's legacy classmethods.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_carol.compat import AIRFLOW_V_3_0_PLUS

#: Standard fields: Airflow 3 names ``schema`` ``url_schema``.
STANDARD = ("host", "port", "login", "password", "schema", "description")


def carol_form() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """``(extra fields, standard fields)`` of the ``carol`` form.

    Extra fields: ``{name: {"title", "enum", "format"}}``; standard fields: ``{name: {"hidden", "title"}}``.
    """
    if AIRFLOW_V_3_0_PLUS:
        from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

        meta = next(m for m in HookMetaService.hook_meta_data() if m.connection_type == "carol")
        extras = {
            name: {key: field["schema"].get(key) for key in ("title", "enum", "format")}
            for name, field in (meta.extra_fields or {}).items()
        }
        standard = {}
        for name in STANDARD:
            shown = getattr(meta.standard_fields, "url_schema" if name == "schema" else name, None)
            standard[name] = {"hidden": bool(shown and shown.hidden), "title": shown and shown.title}
        return extras, standard

    from airflow.providers_manager import ProvidersManager
    from wtforms import PasswordField
    from wtforms.validators import AnyOf

    manager = ProvidersManager()
    prefix = "extra__carol__"
    extras = {}
    for key, widget in manager.connection_form_widgets.items():
        if key.startswith(prefix):
            field = widget.field  # an unbound wtforms field
            enum = [v.values for v in field.kwargs.get("validators", ()) if isinstance(v, AnyOf)]
            extras[key[len(prefix) :]] = {
                "title": str(field.args[0]),
                "enum": list(enum[0]) if enum else None,
                "format": "password" if field.field_class is PasswordField else None,
            }
    behaviour = manager.field_behaviours.get("carol", {})
    standard = {
        name: {
            "hidden": name in behaviour.get("hidden_fields", []),
            "title": behaviour.get("relabeling", {}).get(name),
        }
        for name in STANDARD
    }
    return extras, standard
