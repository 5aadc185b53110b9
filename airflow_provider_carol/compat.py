"""Every difference between the Airflow 3 lines this provider supports (3.1.8+, 3.2, 3.3) in one place.

The provider is written against Airflow 3.3.2 / task SDK 1.3.2. Older lines lack some of those APIs;
this module probes for each one and falls back, so that importing any provider module (at DAG parse)
never raises ``ImportError`` on an older Airflow. When a fallback loses behaviour, or does the same
work a slower way, it logs **one** line (once per process) on the ``airflow_provider_carol.compat``
logger that names the feature, the Airflow version and what the provider does instead.

What differs (checked against 3.1.8 / task SDK 1.1.8, 3.2.2 / 1.2.2 and 3.3.2 / 1.3.2):

=========================================  ======  ======  =====================================
API                                        3.1     3.2     fallback here
=========================================  ======  ======  =====================================
``airflow.sdk.conf``                       no      yes     ``airflow.configuration.conf``
``airflow.sdk.exceptions.TaskDeferred``,   no      yes     the same names in
``AirflowSensorTimeout``,                                  ``airflow.exceptions``
``AirflowNotFoundException``
``Connection.aextra_dejson`` (3.3.2)       no      no      sync ``extra_dejson`` in a worker thread
``BaseHook.aget_connection`` safe on the   no      no      sync ``get_connection`` in a worker
event loop (3.3.2, DeadlockImminentError)                  thread (as common-compat does)
``airflow.sdk.log.amask_secret`` (3.3.2)   no      no      sync ``mask_secret`` in a worker thread
``BaseTrigger.on_kill`` (3.3.0)            no      no      none possible: logged, see below
``conn-fields`` / ``ui-field-behaviour``   no      yes     legacy hook classmethods built from
read from provider info (3.2.0)                            the same ``conn-fields``
``remote-logging`` provider key (3.3.0)    no      no      none needed: ``logging_config_class``
                                                           (``airflow_provider_carol.log.config``)
                                                           works on every line
task state store (3.3.0)                   no      no      retries start over (staging sends
                                                           resend every chunk, which Carol
                                                           replaces; processes start again);
                                                           logged once (hooks/core/durable.py)
``airflow.sdk.exceptions.AirflowFail...``  no      yes     ``airflow.exceptions``
``AirflowTaskTimeout``
=========================================  ======  ======  =====================================

Probes look at the API itself (``hasattr``/import) where there is one to look at; ``aget_connection``
exists on 3.1/3.2 but is unsafe there, so it is judged by ``aextra_dejson``, which came with the fix.
The two about what Airflow itself reads from provider info (``conn-fields``, ``remote-logging``) go by
version; tests/test_compat.py checks every probe against the installed Airflow.
"""

from __future__ import annotations

import logging
import threading
from functools import cache
from typing import TYPE_CHECKING, Any

import airflow
from packaging.version import Version

if TYPE_CHECKING:
    from airflow.sdk import Connection

__all__ = [
    "AIRFLOW_VERSION",
    "AIRFLOW_V_3_2_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "AirflowFailException",
    "AirflowNotFoundException",
    "AirflowSensorTimeout",
    "AirflowTaskTimeout",
    "TaskDeferred",
    "aextra_dejson",
    "aget_connection",
    "amask_secret",
    "conf",
    "connection_form_in_provider_info",
    "get_connection_form_widgets",
    "get_ui_field_behaviour",
    "remote_logging_provider_key_supported",
    "resumable_jobs_supported",
    "trigger_on_kill_supported",
    "warn_trigger_on_kill_unsupported",
]

log = logging.getLogger(__name__)

#: The running Airflow's base version (``3.1.8`` for ``3.1.8rc1`` too).
AIRFLOW_VERSION: Version = Version(Version(airflow.__version__).base_version)
AIRFLOW_V_3_2_PLUS: bool = Version("3.2.0") <= AIRFLOW_VERSION
AIRFLOW_V_3_3_PLUS: bool = Version("3.3.0") <= AIRFLOW_VERSION

_reported: set[str] = set()
_reported_lock = threading.Lock()


def _degraded(feature: str, message: str, level: int = logging.WARNING) -> None:
    """Log one line per ``feature`` and process: which API is missing and what happens instead."""
    with _reported_lock:
        if feature in _reported:
            return
        _reported.add(feature)
    log.log(level, "Airflow %s: %s", AIRFLOW_VERSION, message)


# ------------------------------------------------------------------------ plain import moves
# No log line: the same object under another name; nothing behaves differently.
try:  # Airflow 3.2+
    from airflow.sdk import conf
except ImportError:  # Airflow 3.1: the task SDK has no config facade yet
    from airflow.configuration import conf  # type: ignore[assignment,no-redef]

try:  # Airflow 3.2+ (airflow.exceptions keeps deprecated aliases)
    from airflow.sdk.exceptions import (
        AirflowFailException,
        AirflowNotFoundException,
        AirflowSensorTimeout,
        AirflowTaskTimeout,
        TaskDeferred,
    )
except ImportError:  # Airflow 3.1: these still live in core, and the task SDK raises/catches these
    from airflow.exceptions import (  # type: ignore[assignment,no-redef]
        AirflowFailException,
        AirflowNotFoundException,
        AirflowSensorTimeout,
        AirflowTaskTimeout,
        TaskDeferred,
    )


# ------------------------------------------------------------------------ async connection API
def _async_connection_api_is_safe() -> bool:
    """True when ``aget_connection``/``aextra_dejson`` mask secrets without blocking the loop (3.3.2+).

    ``Connection.aextra_dejson`` arrived with the async masking that fixed ``DeadlockImminentError``
    (apache/airflow#71891, PR #72895); before it, ``BaseHook.aget_connection`` exists (3.1+) but masks
    with a synchronous supervisor round-trip from the event loop.
    """
    from airflow.sdk import Connection

    return hasattr(Connection, "aextra_dejson")


async def aget_connection(conn_id: str) -> Connection:
    """Look a connection up from a coroutine (triggers, async hooks) without blocking the event loop.

    3.3.2+: ``BaseHook.aget_connection``. Older: the sync ``BaseHook.get_connection`` in a worker
    thread via asgiref's ``sync_to_async``, so the supervisor round-trip it makes (and the masking of
    the secrets) is marshalled back to the running loop instead of deadlocking it.
    """
    from airflow.sdk import BaseHook

    if _async_connection_api_is_safe():
        return await BaseHook.aget_connection(conn_id)
    from asgiref.sync import sync_to_async

    _degraded(
        "aget_connection",
        "BaseHook.aget_connection can deadlock the event loop before 3.3.2; Carol connections are "
        "read with the sync lookup in a worker thread instead.",
        level=logging.INFO,
    )
    return await sync_to_async(BaseHook.get_connection)(conn_id)


async def aextra_dejson(conn: Connection) -> dict[str, Any]:
    """``conn``'s extras as a dict from a coroutine; secrets in them are masked as ``extra_dejson`` does.

    3.3.2+: ``await conn.aextra_dejson()``. Older: the sync ``extra_dejson`` (which masks through the
    supervisor) in a worker thread.
    """
    if hasattr(conn, "aextra_dejson"):
        return await conn.aextra_dejson()
    from asgiref.sync import sync_to_async

    _degraded(
        "aextra_dejson",
        "Connection.aextra_dejson is missing (3.3.2+); connection extras are parsed with the sync "
        "extra_dejson in a worker thread instead.",
        level=logging.INFO,
    )
    return await sync_to_async(lambda: conn.extra_dejson)()


async def amask_secret(secret: Any, name: str | None = None) -> None:
    """Register ``secret`` with Airflow's secrets masker from a coroutine.

    3.3.2+: ``airflow.sdk.log.amask_secret``. Older: the sync ``mask_secret`` in a worker thread; on
    the loop itself its supervisor notification would fail (and be swallowed) or stall the triggerer
    (apache/airflow#65286).
    """
    from airflow.sdk import log as sdk_log

    native = getattr(sdk_log, "amask_secret", None)
    if native is not None:
        await native(secret, name)
        return
    from asgiref.sync import sync_to_async

    _degraded(
        "amask_secret",
        "airflow.sdk.log.amask_secret is missing (3.3.2+); secrets minted in triggers are masked with "
        "the sync mask_secret in a worker thread instead.",
        level=logging.INFO,
    )
    await sync_to_async(sdk_log.mask_secret)(secret, name)


# ------------------------------------------------------------------------ triggers
@cache
def trigger_on_kill_supported() -> bool:
    """True when the triggerer calls ``BaseTrigger.on_kill`` for a user-killed deferred task (3.3+)."""
    from airflow.triggers.base import BaseTrigger

    return hasattr(BaseTrigger, "on_kill")


def warn_trigger_on_kill_unsupported(cancel_on_kill: bool) -> None:
    """Say once, when ``cancel_on_kill`` is asked for, that deferred kills cannot cancel before 3.3.

    Before Airflow 3.3 (PR #65590) a killed deferred task only cancels the trigger's coroutine, exactly
    as a triggerer restart or a trigger moving to another triggerer does; cancelling the Carol task on
    that would cancel it on every restart, so the triggers' ``on_kill`` is never called there. Killing
    the Airflow task while it runs on a worker still cancels it (the operators' ``on_kill``).
    """
    if cancel_on_kill and not trigger_on_kill_supported():
        _degraded(
            "trigger_on_kill",
            "BaseTrigger.on_kill is missing (3.3+), so cancel_on_kill=True cannot cancel the Carol task "
            "while the Airflow task is deferred; a killed deferred task leaves the Carol task running "
            "(killing it on a worker still cancels it).",
        )


# ------------------------------------------------------------------------ connection form
def connection_form_in_provider_info() -> bool:
    """True when Airflow builds the connection form from ``conn-fields``/``ui-field-behaviour`` (3.2+)."""
    return AIRFLOW_V_3_2_PLUS


def get_connection_form_widgets(cls: type | None = None) -> dict[str, Any]:
    """The legacy ``get_connection_form_widgets`` hook classmethod, built from ``CONN_FIELDS``.

    Airflow 3.1 builds the connection form only from these classmethods; 3.2+ ignores them when the
    provider info carries ``conn-fields`` (it does). 3.1's UI (``HookMetaService``) calls this with
    ``wtforms``/``flask_appbuilder`` replaced by its own stand-ins, so neither package is needed; without
    that (a worker, the CLI) 3.1 skips the form when ``wtforms`` is missing and never calls this.
    Numbers become string fields (the only field types 3.1 accepts are string, integer, password and
    boolean; ``timeout`` may be fractional); the hook parses them from strings either way.
    """
    # Attribute access on purpose: 3.1's stand-ins are patched onto the packages (``wtforms.validators.
    # any_of`` is set on ``wtforms``' ``validators`` attribute), which ``from wtforms.validators import``
    # would bypass when wtforms is not installed. With the real packages both spellings are the same.
    import flask_appbuilder.fieldwidgets
    import flask_babel
    import wtforms.validators

    from airflow_provider_carol.get_provider_info import CONN_FIELDS

    lazy_gettext, validators_module = flask_babel.lazy_gettext, wtforms.validators
    text_widget = flask_appbuilder.fieldwidgets.BS3TextFieldWidget
    password_widget = flask_appbuilder.fieldwidgets.BS3PasswordFieldWidget

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


# ------------------------------------------------------------------------ logging, 3.3 task APIs
def remote_logging_provider_key_supported() -> bool:
    """True when Airflow reads the provider info's ``remote-logging`` key (3.3+).

    Nothing degrades before that: every line loads ``REMOTE_TASK_LOG`` from ``[logging]
    logging_config_class``, which Carol task logs need on 3.3.2 as well (docs/logging.md).
    """
    return AIRFLOW_V_3_3_PLUS


@cache
def resumable_jobs_supported() -> bool:
    """True when ``ResumableJobMixin``/``RetryPolicy`` and the task state store exist (3.3+).

    The provider keeps what a retry resumes from in the task state store; without it (detected per
    task: ``context["task_state_store"]`` is missing) retries start over, and one line says so.
    """
    from importlib.util import find_spec

    try:
        return find_spec("airflow.sdk.bases.resumablejobmixin") is not None
    except ModuleNotFoundError:
        return False
