"""``CarolRemoteLogIO`` in Airflow's supervisor write path, with the supervisor's own logging functions.

The task subprocess's JSON lines are fed to ``process_log_messages_from_subprocess`` (what the supervisor
does with them), written by the logger ``_configure_logging`` builds, then ``upload_to_remote`` runs (what
the supervisor calls when the task process has exited).
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any
from uuid import uuid4

import pytest

from airflow_provider_carol import compat
from airflow_provider_carol.log import LOG_TASK_ID_KEY, CarolRemoteLogIO
from tests.dagutil import carol_lines
from tests.log.conftest import forget_logging_config

#: The tests that run lines through Airflow 3's supervisor; 2.11 has no RemoteLogIO (and no supervisor).
needs_remote_log_io = pytest.mark.skipif(not compat.AIRFLOW_V_3_0_PLUS, reason="RemoteLogIO is Airflow 3.0+")

REL = "dag_id=d/run_id=r/task_id=t/attempt=1.log"
CONFIG_MODULE = "airflow_provider_carol.log.config"
#: The task instance the supervisor passes to ``upload_to_remote`` (required before 3.3, logged by id).
UPLOADING_TI = SimpleNamespace(id=uuid4())


def task_line(event: str, level: str = "info", **extra: Any) -> bytes:
    """One line as a task subprocess sends it to the supervisor (structlog JSON)."""
    body = {"timestamp": datetime.now(timezone.utc).isoformat(), "level": level, "event": event,
            "logger": "task.test", **extra}
    return json.dumps(body).encode() + b"\n"


def run_supervisor(lines: list[bytes], rel: str = REL) -> Any:
    """Feed ``lines`` through the supervisor's log pipeline for ``rel`` and upload; return the logger."""
    from airflow.sdk.execution_time.supervisor import _configure_logging, process_log_messages_from_subprocess
    from airflow.sdk.log import upload_to_remote

    logger, handle = _configure_logging(rel, client=None)
    try:
        relay = process_log_messages_from_subprocess((logger,))
        next(relay)
        for line in lines:
            relay.send(line)
        upload_to_remote(logger, UPLOADING_TI)
    finally:
        handle.close()
    return logger


@needs_remote_log_io
def test_lines_before_and_after_the_announcement_go_to_the_announced_task(
    carol_sandbox, carol_remote_logging
):
    task_id = carol_sandbox.create_task([{"status": "RUNNING", "after": 0}])
    lines = [
        task_line("::group::Pre Execute"),
        task_line("routing", **{LOG_TASK_ID_KEY: task_id}),
        task_line("from self.log", job=7),
        task_line("from a stdlib logger", level="warning", logger="my.lib"),
        task_line("boom", level="error", error_detail=[{"exc_type": "ValueError", "exc_value": "bad"}]),
        task_line("the end", level="critical"),
    ]
    run_supervisor(lines)

    assert carol_lines(carol_sandbox, task_id) == [
        ("INFO", "::group::Pre Execute"),
        ("INFO", "routing"),
        ("INFO", "from self.log job=7"),
        ("WARN", "from a stdlib logger"),
        ("ERROR", "boom\nValueError: bad"),
        ("ERROR", "the end"),
    ]


@needs_remote_log_io
def test_a_second_upload_of_the_same_log_sends_nothing_twice(carol_sandbox, carol_remote_logging):
    from airflow.sdk.log import upload_to_remote

    task_id = carol_sandbox.create_task([{"status": "RUNNING", "after": 0}])
    logger = run_supervisor([task_line("once", **{LOG_TASK_ID_KEY: task_id})])
    upload_to_remote(logger, UPLOADING_TI)  # a deferred task uploads its log again when it resumes
    carol_remote_logging.flush(10)

    assert carol_lines(carol_sandbox, task_id) == [("INFO", "once")]


@needs_remote_log_io
def test_without_a_carol_task_lines_stay_in_the_airflow_log(
    carol_sandbox, carol_remote_logging, airflow_home
):
    run_supervisor([task_line("nobody asked for Carol")], rel="dag_id=d/run_id=r/task_id=local/attempt=1.log")

    assert not carol_sandbox.requests(path="*/logs")
    written = (airflow_home / "logs" / "dag_id=d/run_id=r/task_id=local/attempt=1.log").read_text()
    assert "nobody asked for Carol" in written


@needs_remote_log_io
def test_longtaskid_routes_a_task_that_announces_nothing(
    carol_sandbox, carol_remote_logging, monkeypatch, airflow_home
):
    task_id = carol_sandbox.create_task([{"status": "RUNNING", "after": 0}])
    monkeypatch.setenv("LONGTASKID", task_id)
    lines = [task_line("a"), task_line("b", level="debug")]
    run_supervisor(lines, rel="dag_id=d/run_id=r/task_id=env/attempt=1.log")

    if compat.AIRFLOW_V_3_2_PLUS:
        assert carol_lines(carol_sandbox, task_id) == [("INFO", "a"), ("DEBUG", "b")]
    else:  # 3.1's supervisor drops relayed lines below its own level: not in the Airflow log, nor in Carol
        written = (airflow_home / "logs" / "dag_id=d/run_id=r/task_id=env/attempt=1.log").read_text()
        assert '"a"' in written and '"b"' not in written
        assert carol_lines(carol_sandbox, task_id) == [("INFO", "a")]


@needs_remote_log_io
def test_secrets_are_masked_before_they_leave(carol_sandbox, carol_remote_logging):
    from airflow.sdk.log import mask_secret

    task_id = carol_sandbox.create_task([{"status": "RUNNING", "after": 0}])
    mask_secret("hunter2-very-secret")
    run_supervisor([task_line("password is hunter2-very-secret", **{LOG_TASK_ID_KEY: task_id})],
                   rel="dag_id=d/run_id=r/task_id=mask/attempt=1.log")

    assert carol_lines(carol_sandbox, task_id) == [("INFO", "password is ***")]


def test_from_config_reads_the_logging_section(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(tmp_path))
    monkeypatch.setenv("AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER", "carol://carol_logs")
    kwargs = '{"batch_size": 50, "delete_local_copy": 1}'  # the IO's keys are taken, others left alone
    monkeypatch.setenv("AIRFLOW__LOGGING__REMOTE_TASK_HANDLER_KWARGS", kwargs)
    monkeypatch.delenv("AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID", raising=False)

    remote = CarolRemoteLogIO.from_config()

    assert remote.conn_id == "carol_logs"
    assert remote.base_log_folder == str(tmp_path)
    assert remote._shipper.batch_size == 50
    assert remote.read("x", None) == ([], None)


@pytest.mark.parametrize(
    ("folder", "kwargs", "message"),
    [("s3://bucket/logs", "{}", "carol://"), ("carol://c", "[1]", "JSON object"), ("carol://c", "{", "JSON")],
)
def test_from_config_rejects_bad_settings(monkeypatch, folder, kwargs, message):
    monkeypatch.setenv("AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER", folder)
    monkeypatch.setenv("AIRFLOW__LOGGING__REMOTE_TASK_HANDLER_KWARGS", kwargs)
    with pytest.raises(ValueError, match=message):
        CarolRemoteLogIO.from_config()


@pytest.mark.parametrize(("enabled", "folder"), [("True", "carol://carol_logs"), ("False", "carol://x"),
                                                 ("True", "s3://bucket")])
def test_logging_config_module_exports_what_airflow_reads(monkeypatch, caplog, enabled, folder):
    monkeypatch.setenv("AIRFLOW__LOGGING__REMOTE_LOGGING", enabled)
    monkeypatch.setenv("AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER", folder)
    monkeypatch.delenv("AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID", raising=False)
    monkeypatch.delitem(sys.modules, "airflow_provider_carol.log.config", raising=False)

    compat._reported.clear()
    with caplog.at_level(logging.WARNING, logger="airflow_provider_carol.compat"):
        module = importlib.import_module("airflow_provider_carol.log.config")

    assert module.LOGGING_CONFIG["handlers"]["task"]["class"].endswith("FileTaskHandler")
    said = [r.getMessage() for r in caplog.records if r.name == "airflow_provider_carol.compat"]
    if enabled == "True" and folder.startswith("carol://") and compat.AIRFLOW_V_3_0_PLUS:
        assert isinstance(module.REMOTE_TASK_LOG, CarolRemoteLogIO)
        assert module.DEFAULT_REMOTE_CONN_ID == "carol_logs"
    else:
        assert module.REMOTE_TASK_LOG is None and module.DEFAULT_REMOTE_CONN_ID is None
    if enabled == "True" and folder.startswith("carol://") and not compat.AIRFLOW_V_3_0_PLUS:
        assert len(said) == 1 and "CarolLogHandler" in said[0], said  # 2.11: says where to go instead
    else:
        assert said == []


def test_logging_config_module_configures_logging_and_masks_on_this_line(monkeypatch):
    """``dictConfig`` of the module works with this line's own secrets-masker filter (the 3.1+ path made
    it fail on 3.0 and 2.11), and masking still works once Airflow's logging is configured from it."""
    import logging.config

    from airflow.providers.common.compat.sdk import mask_secret, redact

    monkeypatch.delitem(sys.modules, CONFIG_MODULE, raising=False)
    module = importlib.import_module(CONFIG_MODULE)
    names = ("", "airflow.task", "flask_appbuilder")
    loggers = [logging.getLogger(name) for name in names]
    saved = [(logger.handlers[:], logger.filters[:]) for logger in loggers]
    try:
        logging.config.dictConfig(module.LOGGING_CONFIG)
        task_filters = logging.getLogger("airflow.task").filters
        maskers = [f for f in task_filters if type(f).__name__ == "SecretsMasker"]
        assert maskers  # this process had one already: dictConfig adds its own, it does not replace
        mask_secret("config-secret-7c1e5a")
        assert redact("token config-secret-7c1e5a") == "token ***"
    finally:
        for logger, (handlers, filters) in zip(loggers, saved, strict=True):
            logger.handlers[:], logger.filters[:] = handlers, filters


@needs_remote_log_io
def test_core_and_task_sdk_both_resolve_the_carol_io_from_the_logging_module(monkeypatch):
    """What the API server (core) and a worker (task SDK) load with the documented configuration."""
    from airflow import logging_config as core
    from airflow.sdk import log as sdk_log

    monkeypatch.setenv("AIRFLOW__LOGGING__REMOTE_LOGGING", "True")
    monkeypatch.setenv("AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER", "carol://carol_logs")
    monkeypatch.setenv("AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS", f"{CONFIG_MODULE}.LOGGING_CONFIG")
    monkeypatch.delenv("AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID", raising=False)
    monkeypatch.delitem(sys.modules, CONFIG_MODULE, raising=False)
    # The loaders' names moved between lines: 3.3 core._load_logging_config/get_remote_task_log; 3.2
    # core.load_logging_config/get_remote_task_log; 3.1 core.load_logging_config and a REMOTE_TASK_LOG
    # global, which the task SDK reads too (3.2+ loads its own copy).
    # vars(): 3.1's airflow.logging_config answers None for any unknown attribute (module __getattr__).
    names = vars(core)
    try:
        (names.get("_load_logging_config") or core.load_logging_config)()
        if hasattr(sdk_log, "_load_logging_config"):
            sdk_log._load_logging_config()
        get_core = names.get("get_remote_task_log")
        assert isinstance(get_core() if get_core else core.REMOTE_TASK_LOG, CarolRemoteLogIO)
        assert isinstance(sdk_log.load_remote_log_handler(), CarolRemoteLogIO)
        assert sdk_log.load_remote_conn_id() == "carol_logs"
    finally:
        if "_ActiveLoggingConfig" in names:
            core._ActiveLoggingConfig.set(None, None)
            core._ActiveLoggingConfig.logging_config_loaded = False
        forget_logging_config(sdk_log)
