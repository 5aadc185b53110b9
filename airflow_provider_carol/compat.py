"""What the Airflow lines this provider supports (2.11, 3.0-3.3) differ in and common-compat does not cover.

Every moved import goes through ``apache-airflow-providers-common-compat`` (``...common.compat.sdk``,
``.connection``, ``.triggers``), as in the official providers. This module holds only the rest:

* ``AIRFLOW_V_3_0_PLUS`` ... ``AIRFLOW_V_3_3_PLUS``: the version flags, defined here as the official
  providers define them in their own ``version_compat.py`` (copied on purpose, never imported from
  another provider);
* :func:`amask_secret`: async secret masking (``airflow.sdk.log.amask_secret``, 3.3.2) with its
  fallback; common-compat has only the sync ``mask_secret``;
* :func:`log_degraded`: the one line, once per process, that says a feature this Airflow lacks does
  nothing here (trigger ``on_kill``, event triggers, Carol remote logging; docs/compatibility.md), and
  the two warnings built on it that triggers give (:func:`warn_trigger_on_kill_unsupported`,
  :func:`warn_event_triggers_unsupported`);
* the legacy connection-form classmethods (:func:`get_connection_form_widgets`,
  :func:`get_ui_field_behaviour`), which Airflow < 3.2 reads instead of ``conn-fields``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import airflow
from packaging.version import Version

__all__ = [
    "AIRFLOW_VERSION",
    "AIRFLOW_V_3_0_PLUS",
    "AIRFLOW_V_3_1_PLUS",
    "AIRFLOW_V_3_2_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "amask_secret",
    "get_connection_form_widgets",
    "get_ui_field_behaviour",
    "log_degraded",
    "warn_event_triggers_unsupported",
    "warn_trigger_on_kill_unsupported",
]

log = logging.getLogger(__name__)

#: The running Airflow's base version (``3.1.8`` for ``3.1.8rc1`` too).
AIRFLOW_VERSION: Version = Version(Version(airflow.__version__).base_version)
AIRFLOW_V_3_0_PLUS: bool = Version("3.0.0") <= AIRFLOW_VERSION
AIRFLOW_V_3_1_PLUS: bool = Version("3.1.0") <= AIRFLOW_VERSION
AIRFLOW_V_3_2_PLUS: bool = Version("3.2.0") <= AIRFLOW_VERSION
AIRFLOW_V_3_3_PLUS: bool = Version("3.3.0") <= AIRFLOW_VERSION

_reported: set[str] = set()
_reported_lock = threading.Lock()


def log_degraded(feature: str, message: str, level: int = logging.WARNING) -> None:
    """Log ``Airflow <version>: <message>`` once per ``feature`` and process.

    For a feature this Airflow line lacks: the provider carries on without it, and says so once on the
    ``airflow_provider_carol.compat`` logger instead of on every call.
    """
    with _reported_lock:
        if feature in _reported:
            return
        _reported.add(feature)
    log.log(level, "Airflow %s: %s", AIRFLOW_VERSION, message)


async def amask_secret(secret: Any, name: str | None = None) -> None:
    """Register ``secret`` with Airflow's secrets masker from a coroutine.

    3.3.2+: ``airflow.sdk.log.amask_secret``. Older: the sync ``mask_secret`` in a worker thread; on
    the loop itself its supervisor notification (3.x) would fail (and be swallowed) or stall the
    triggerer (apache/airflow#65286). Logged once at INFO.
    """
    try:
        from airflow.sdk.log import amask_secret as native
    except ImportError:  # before 3.3.2 (2.11 has no airflow.sdk at all)
        pass
    else:
        await native(secret, name)
        return
    from airflow.providers.common.compat.sdk import mask_secret
    from asgiref.sync import sync_to_async

    log_degraded(
        "amask_secret",
        "airflow.sdk.log.amask_secret is missing (3.3.2+); secrets minted in triggers are masked with "
        "the sync mask_secret in a worker thread instead.",
        level=logging.INFO,
    )
    await sync_to_async(mask_secret)(secret, name)


def warn_trigger_on_kill_unsupported(cancel_on_kill: bool) -> None:
    """Say once, when ``cancel_on_kill`` is asked for, that deferred kills cannot cancel before 3.3.

    Before Airflow 3.3 (PR #65590) a killed deferred task only cancels the trigger's coroutine, exactly
    as a triggerer restart or a trigger moving to another triggerer does; cancelling the Carol task on
    that would cancel it on every restart, so the triggers' ``on_kill`` is never called there. Killing
    the Airflow task while it runs on a worker still cancels it (the operators' ``on_kill``).
    """
    if cancel_on_kill and not AIRFLOW_V_3_3_PLUS:
        log_degraded(
            "trigger_on_kill",
            "BaseTrigger.on_kill is missing (3.3+), so cancel_on_kill=True cannot cancel the Carol task "
            "while the Airflow task is deferred; a killed deferred task leaves the Carol task running "
            "(killing it on a worker still cancels it).",
        )


def warn_event_triggers_unsupported(trigger: str) -> None:
    """Say once, when an event trigger is built on Airflow 2, that nothing can run it as a watcher.

    Event-driven scheduling (``AssetWatcher``, ``BaseEventTrigger``) came with Airflow 3.0; on 2.11 the
    trigger classes still import and build (a DAG file using them parses, via common-compat's
    ``BaseEventTrigger`` -> ``BaseTrigger``), but no asset is ever updated by them.
    """
    if not AIRFLOW_V_3_0_PLUS:
        log_degraded(
            "event_triggers",
            f"{trigger} needs an AssetWatcher (Airflow 3.0+); on this Airflow no asset watches it, so it "
            "fires no event-driven DAG run.",
        )


# ------------------------------------------------------------------------ connection form
def get_connection_form_widgets(cls: type | None = None) -> dict[str, Any]:
    """The legacy ``get_connection_form_widgets`` hook classmethod, built from ``CONN_FIELDS``.

    Airflow < 3.2 builds the connection form only from these classmethods; 3.2+ ignores them when the
    provider info carries ``conn-fields`` (it does). 2.11's webserver calls this with the real
    ``wtforms``/``flask_appbuilder`` (part of its FAB UI). 3.1's UI (``HookMetaService``) replaces them
    with its own stand-ins, so neither package is needed; 3.0's only patches them when they are
    installed (the FAB provider brings them), so without them the form has no Carol fields there.
    Where they are missing (a worker, the CLI) Airflow skips the form and never calls this.
    Numbers become string fields (the only field types accepted are string, integer, password and
    boolean; ``timeout`` may be fractional); the hook parses them from strings either way.
    """
    # Looked up at call time, each from the module object in sys.modules: 3.1 puts MagicMock stand-ins
    # there for the packages that are missing and patches them by dotted name, which on Python 3.11+
    # resolves the submodule through sys.modules, not as an attribute of the parent stand-in. With the
    # real packages both are the same object.
    from importlib import import_module

    from airflow_provider_carol.get_provider_info import CONN_FIELDS

    wtforms = import_module("wtforms")
    validators_module = import_module("wtforms.validators")
    fieldwidgets = import_module("flask_appbuilder.fieldwidgets")
    lazy_gettext = import_module("flask_babel").lazy_gettext
    text_widget = fieldwidgets.BS3TextFieldWidget
    password_widget = fieldwidgets.BS3PasswordFieldWidget

    widgets: dict[str, Any] = {}
    for name, field in CONN_FIELDS.items():
        schema = field["schema"]
        label = lazy_gettext(field["label"])
        description = field.get("description", "")
        default = schema.get("default")
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if "boolean" in types:
            widgets[name] = wtforms.BooleanField(label, description=description, default=bool(default))
        elif schema.get("format") == "password":
            widgets[name] = wtforms.PasswordField(label, description=description, widget=password_widget())
        else:
            validators = [validators_module.Optional()]
            if "enum" in schema:
                validators.append(validators_module.any_of(schema["enum"]))
            widgets[name] = wtforms.StringField(
                label,
                validators=validators,
                description=description,
                default=None if default is None else str(default),
                widget=text_widget(),
            )
    return widgets


def get_ui_field_behaviour(cls: type | None = None) -> dict[str, Any]:
    """The legacy ``get_ui_field_behaviour`` hook classmethod: ``UI_FIELD_BEHAVIOUR`` in its old keys."""
    from airflow_provider_carol.get_provider_info import UI_FIELD_BEHAVIOUR

    return {key.replace("-", "_"): value for key, value in UI_FIELD_BEHAVIOUR.items()}
