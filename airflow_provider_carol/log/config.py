"""``[logging] logging_config_class`` module for Carol task logs (Airflow 3.0+).

Set ``AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS=airflow_provider_carol.log.config.LOGGING_CONFIG``. Airflow
3.3.2's stock ``airflow_local_settings`` raises at import for a remote scheme it does not know
(``carol://``), so this module rebuilds the same default dictConfig without importing it, and exports
``REMOTE_TASK_LOG`` (a :class:`~airflow_provider_carol.log.remote.CarolRemoteLogIO` when
``[logging] remote_logging`` is on and ``remote_base_log_folder`` is ``carol://<conn_id>``) and
``DEFAULT_REMOTE_CONN_ID``, the two names Airflow reads from a custom logging module.

Airflow 2.11 has no ``RemoteLogIO``: there the module still configures logging (every task log stays
in Airflow), ``REMOTE_TASK_LOG`` is None and one warning points to ``CarolLogHandler``.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from airflow.providers.common.compat.sdk import conf

from airflow_provider_carol.compat import AIRFLOW_V_3_0_PLUS, AIRFLOW_V_3_1_PLUS, log_degraded
from airflow_provider_carol.log.remote import SCHEME, CarolRemoteLogIO

LOG_LEVEL: str = conf.get("logging", "logging_level", fallback="INFO").upper()
FAB_LOG_LEVEL: str = conf.get("logging", "fab_logging_level", fallback="WARNING").upper()
LOG_FORMAT: str = conf.get(
    "logging", "log_format", fallback="[%(asctime)s] {%(filename)s:%(lineno)d} %(levelname)s - %(message)s"
)
LOG_FORMATTER_CLASS: str = conf.get(
    "logging", "log_formatter_class", fallback="airflow.utils.log.timezone_aware.TimezoneAware"
)
BASE_LOG_FOLDER: str = os.path.expanduser(conf.get("logging", "base_log_folder"))
# The secrets-masker filter and the console handler, as this Airflow line's own airflow_local_settings
# names them (3.1 moved the masker to a shared module; 3.0 and 2.11 write the console through Airflow's
# RedirectStdHandler, which reads "stream" as a name).
if AIRFLOW_V_3_1_PLUS:
    MASK_FILTER, CONSOLE_HANDLER = "airflow._shared.secrets_masker._secrets_masker", "logging.StreamHandler"
elif AIRFLOW_V_3_0_PLUS:
    MASK_FILTER = "airflow.sdk.execution_time.secrets_masker.SecretsMasker"
    CONSOLE_HANDLER = "airflow.utils.log.logging_mixin.RedirectStdHandler"
else:
    MASK_FILTER = "airflow.utils.log.secrets_masker.SecretsMasker"
    CONSOLE_HANDLER = "airflow.utils.log.logging_mixin.RedirectStdHandler"

LOGGING_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"airflow": {"format": LOG_FORMAT, "class": LOG_FORMATTER_CLASS}},
    "filters": {"mask_secrets_core": {"()": MASK_FILTER}},
    "handlers": {
        "console": {
            "class": CONSOLE_HANDLER,
            "formatter": "airflow",
            "stream": "sys.stdout",
            "filters": ["mask_secrets_core"],
        },
        "task": {
            "class": "airflow.utils.log.file_task_handler.FileTaskHandler",
            "formatter": "airflow",
            "base_log_folder": BASE_LOG_FOLDER,
            "filters": ["mask_secrets_core"],
        },
    },
    "loggers": {
        "airflow.task": {
            "handlers": ["task"],
            "level": LOG_LEVEL,
            "propagate": True,
            "filters": ["mask_secrets_core"],
        },
        "flask_appbuilder": {"handlers": ["console"], "level": FAB_LOG_LEVEL, "propagate": True},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL, "filters": ["mask_secrets_core"]},
}

_REMOTE_BASE: str = conf.get("logging", "remote_base_log_folder", fallback="") or ""
_ENABLED: bool = conf.getboolean("logging", "remote_logging", fallback=False) and (
    urlsplit(_REMOTE_BASE).scheme == SCHEME
)

if _ENABLED and not AIRFLOW_V_3_0_PLUS:
    log_degraded(
        "remote_log_io",
        f"remote_base_log_folder {_REMOTE_BASE!r} ships nothing: Airflow 2 has no RemoteLogIO (3.0+), so "
        "task logs stay in Airflow. To send a program's lines to a Carol long task on this Airflow, add "
        "airflow_provider_carol.log.CarolLogHandler to its logger (docs/logging.md).",
    )
    _ENABLED = False

REMOTE_TASK_LOG: CarolRemoteLogIO | None = CarolRemoteLogIO.from_config() if _ENABLED else None
DEFAULT_REMOTE_CONN_ID: str | None = REMOTE_TASK_LOG.conn_id if REMOTE_TASK_LOG is not None else None
