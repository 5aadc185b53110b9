"""Carol long-task log levels and log-line payloads: the one level map for the hook and the log bridge.

Carol's ``mdmLogLevel`` takes TRACE, DEBUG, INFO, WARN and ERROR. Python's level names and numbers map
onto them here, once: ``add_task_logs`` refuses an unknown name (naming the entry), the log bridge never
raises and sends INFO for it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from airflow_provider_carol.exceptions import CarolConfigError
from airflow_provider_carol.hooks.tasks.models import CarolTaskLogEntry

CAROL_LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR")
#: Level (and structlog method) names, lower-cased, and the Carol level each maps onto.
LEVEL_NAMES = {
    "trace": "TRACE",
    "debug": "DEBUG",
    "info": "INFO",
    "msg": "INFO",
    "notset": "INFO",
    "warn": "WARN",
    "warning": "WARN",
    "error": "ERROR",
    "exception": "ERROR",
    "critical": "ERROR",
    "fatal": "ERROR",
}

LogEntry = CarolTaskLogEntry | Mapping[str, object] | tuple[object, object] | list[object]


def known_level(level: object) -> str | None:
    """Carol's level for a level name or a stdlib level number; None when there is none."""
    if isinstance(level, bool):
        return None
    if isinstance(level, int):
        if level >= logging.ERROR:
            return "ERROR"
        if level >= logging.WARNING:
            return "WARN"
        if level >= logging.INFO or level == logging.NOTSET:
            return "INFO"
        return "DEBUG" if level >= logging.DEBUG else "TRACE"
    if isinstance(level, str):
        return LEVEL_NAMES.get(level.strip().lower())
    return None


def carol_level(level: object) -> str:
    """Carol's ``mdmLogLevel`` for a stdlib level number or a level/method name; never raises.

    DEBUG -> DEBUG, below it -> TRACE, INFO -> INFO, WARNING -> WARN, ERROR and CRITICAL -> ERROR;
    custom numeric levels fall into the band below them, and unknown names become INFO.
    """
    return known_level(level) or "INFO"


def log_entries_payload(task_id: str, entries: Iterable[LogEntry]) -> list[dict[str, str]]:
    """Validate log entries into Carol's JSON array; a bad entry is named by its index before sending.

    An entry is a :class:`CarolTaskLogEntry`, a mapping with ``message`` (and optional ``level``),
    or a ``(level, message)`` pair.
    """
    payload = []
    for index, entry in enumerate(entries):
        level: object
        message: object
        if isinstance(entry, CarolTaskLogEntry):
            level, message = entry.level, entry.message
        elif isinstance(entry, Mapping):
            level = entry.get("level", entry.get("mdmLogLevel", "INFO"))
            message = entry.get("message", entry.get("mdmLogMessage"))
        elif isinstance(entry, tuple | list) and len(entry) == 2:
            level, message = entry
        else:
            raise CarolConfigError(
                f"Task log entry {index}: expected a mapping or (level, message), got {type(entry).__name__}."
            )
        carol = known_level(
            level if isinstance(level, int) and not isinstance(level, bool) else str(level or "INFO")
        )
        if carol is None:
            raise CarolConfigError(
                f"Task log entry {index}: level {str(level).upper()!r} is not one of "
                f"{', '.join(sorted(name.upper() for name in LEVEL_NAMES))}."
            )
        if message is None:
            raise CarolConfigError(f"Task log entry {index}: 'message' is missing.")
        payload.append({"mdmTaskId": task_id, "mdmLogMessage": str(message), "mdmLogLevel": carol})
    return payload
