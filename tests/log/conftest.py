"""Fixtures for the logging bridge: Airflow logging configured with Carol remote logging, then restored."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest


def forget_logging_config(sdk_log: Any) -> None:
    """Make the next ``load_remote_log_handler()`` re-read ``[logging]``.

    3.2+ caches the loaded config in ``airflow.sdk.log._ActiveLoggingConfig``; 3.0 and 3.1 in the globals
    of ``airflow.logging_config``, whose module ``__getattr__`` reloads ``REMOTE_TASK_LOG`` once it is
    gone, and 3.0 also caches the processor chain (with the remote IO's processors) it built from it.
    """
    cached_processors = getattr(sdk_log.logging_processors, "cache_clear", None)
    if cached_processors is not None:
        cached_processors()
    if hasattr(sdk_log, "_ActiveLoggingConfig"):
        sdk_log._ActiveLoggingConfig.set(None, None)
        sdk_log._ActiveLoggingConfig.logging_config_loaded = False
    else:
        import airflow.logging_config as core

        vars(core).pop("REMOTE_TASK_LOG", None)
        core.DEFAULT_REMOTE_CONN_ID = None


@pytest.fixture
def carol_remote_logging(carol_sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Configure task logging exactly as a task process does (``airflow.sdk.log.configure_logging``) with
    ``[logging]`` pointing at Carol through our ``logging_config_class``; yield the resolved RemoteLogIO.

    Airflow 2.11 has no RemoteLogIO: the module is loaded as Airflow would load it and None is yielded.
    """
    from airflow_provider_carol.compat import AIRFLOW_V_3_0_PLUS

    monkeypatch.setenv("AIRFLOW__LOGGING__REMOTE_LOGGING", "True")
    monkeypatch.setenv("AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER", "carol://carol_default")
    monkeypatch.setenv("AIRFLOW__LOGGING__REMOTE_TASK_HANDLER_KWARGS", '{"flush_interval": 0.2}')
    monkeypatch.setenv(
        "AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS", "airflow_provider_carol.log.config.LOGGING_CONFIG"
    )
    monkeypatch.delenv("LONGTASKID", raising=False)
    if not AIRFLOW_V_3_0_PLUS:
        monkeypatch.delitem(sys.modules, "airflow_provider_carol.log.config", raising=False)
        from airflow_provider_carol.log import config

        yield config.REMOTE_TASK_LOG
        sys.modules.pop("airflow_provider_carol.log.config", None)
        return
    import structlog
    from airflow.sdk import log as sdk_log

    saved_structlog = structlog.get_config()
    root = logging.getLogger()
    saved_root = (list(root.handlers), root.level)
    sys.modules.pop("airflow_provider_carol.log.config", None)
    forget_logging_config(sdk_log)
    sdk_log.reset_logging()
    sdk_log.configure_logging.__wrapped__(cache_logger_on_first_use=False)
    remote = sdk_log.load_remote_log_handler()
    try:
        yield remote
    finally:
        if remote is not None:
            remote.flush(10)
            remote._shipper.close(5)
        forget_logging_config(sdk_log)
        sdk_log.reset_logging()
        structlog.configure(**saved_structlog)
        root.handlers[:] = saved_root[0]
        root.setLevel(saved_root[1])
        sys.modules.pop("airflow_provider_carol.log.config", None)
