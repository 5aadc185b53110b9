"""``CarolLogHandler`` against the sandbox over HTTP: batching, order, levels, fallback, failures, exit."""

from __future__ import annotations

import io
import json
import logging
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_carol.log import CarolLogHandler, carol_level
from tests.dagutil import carol_lines, wait_until

LOGS_GLOB = "/api/v1/tasks/*/logs"


class Records(logging.Handler):
    """Collects the bridge's own local reports (logger ``airflow_provider_carol.log``)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def warnings(self) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= logging.WARNING]


@pytest.fixture
def reports() -> Iterator[Records]:
    collector = Records()
    bridge = logging.getLogger("airflow_provider_carol.log")
    bridge.addHandler(collector)
    try:
        yield collector
    finally:
        bridge.removeHandler(collector)


@pytest.fixture
def app_logger(request: pytest.FixtureRequest) -> Iterator[logging.Logger]:
    """A private application logger; handlers added by a test are closed and removed afterwards."""
    logger = logging.getLogger(f"carol.app.{request.node.name}")
    logger.setLevel(1)
    logger.propagate = False
    try:
        yield logger
    finally:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()


def log_posts(sandbox: Any, task_id: str) -> list[dict[str, Any]]:
    path = f"/api/v1/tasks/{task_id}/logs"
    return sandbox.requests(method="POST", path=path)


def new_task(sandbox: Any) -> str:
    return sandbox.create_task([{"status": "RUNNING", "after": 0}])


def test_lines_arrive_in_order_in_size_batches_and_close_sends_the_rest(carol_sandbox, app_logger):
    task_id = new_task(carol_sandbox)
    handler = CarolLogHandler(task_id=task_id, batch_size=100, flush_interval=60)
    app_logger.addHandler(handler)

    for number in range(250):
        app_logger.info("line %03d", number)
    handler.close()

    assert carol_lines(carol_sandbox, task_id) == [("INFO", f"line {n:03d}") for n in range(250)]
    posts = log_posts(carol_sandbox, task_id)
    assert [p["status"] for p in posts] == [200, 200, 200]  # 100 + 100 + 50, the last one at close
    assert handler.stats() == {"sent": 250, "dropped": 0, "failed": 0, "requests": 3}


def test_interval_flush_sends_without_close(carol_sandbox, app_logger):
    task_id = new_task(carol_sandbox)
    handler = CarolLogHandler(task_id=task_id, batch_size=1000, flush_interval=0.1)
    app_logger.addHandler(handler)
    app_logger.warning("only line")

    # No close(), no flush(): only the interval can send it.
    received = wait_until(lambda: carol_lines(carol_sandbox, task_id), "the line sent by the interval flush")
    assert received == [("WARN", "only line")]


def test_levels_map_to_carol_levels(carol_sandbox, app_logger):
    task_id = new_task(carol_sandbox)
    handler = CarolLogHandler(task_id=task_id)
    handler.setFormatter(logging.Formatter("%(levelname)s|%(message)s"))
    app_logger.addHandler(handler)

    app_logger.debug("d")
    app_logger.info("i")
    app_logger.warning("w")
    app_logger.error("e")
    app_logger.critical("c")
    app_logger.log(25, "between info and warning")
    app_logger.log(5, "below debug")
    handler.close()

    assert [level for level, _ in carol_lines(carol_sandbox, task_id)] == [
        "DEBUG", "INFO", "WARN", "ERROR", "ERROR", "INFO", "TRACE"
    ]
    assert carol_lines(carol_sandbox, task_id)[0][1] == "DEBUG|d"  # the handler's formatter is used


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        (logging.DEBUG, "DEBUG"), (logging.INFO, "INFO"), (logging.WARNING, "WARN"), (logging.ERROR, "ERROR"),
        (logging.CRITICAL, "ERROR"), (logging.NOTSET, "INFO"), (1, "TRACE"), (35, "WARN"), (1000, "ERROR"),
        ("warning", "WARN"), ("WARN", "WARN"), ("exception", "ERROR"), ("critical", "ERROR"),
        ("fatal", "ERROR"), ("trace", "TRACE"), ("bogus", "INFO"), (None, "INFO"), (True, "INFO"),
        (3.5, "INFO"), (object(), "INFO"),
    ],
)
def test_carol_level_never_raises(level, expected):
    assert carol_level(level) == expected


def test_without_task_id_lines_are_printed_locally_and_nothing_is_sent(
    carol_sandbox, app_logger, monkeypatch
):
    monkeypatch.delenv("LONGTASKID", raising=False)
    stream = io.StringIO()
    handler = CarolLogHandler(stream=stream)
    app_logger.addHandler(handler)

    app_logger.info("local one")
    app_logger.error("local two")
    handler.close()

    assert handler.task_id is None
    assert stream.getvalue().splitlines() == ["local one", "local two"]
    assert not carol_sandbox.requests(path="*/logs")


def test_longtaskid_names_the_task_when_no_argument_is_given(carol_sandbox, app_logger, monkeypatch):
    task_id = new_task(carol_sandbox)
    monkeypatch.setenv("LONGTASKID", task_id)
    handler = CarolLogHandler()
    app_logger.addHandler(handler)
    app_logger.info("via LONGTASKID")
    handler.close()

    assert handler.task_id == task_id
    assert carol_lines(carol_sandbox, task_id) == [("INFO", "via LONGTASKID")]


def test_a_refused_batch_is_not_resent_and_is_reported_once(carol_sandbox, app_logger, reports):
    task_id = new_task(carol_sandbox)
    carol_sandbox.add_fault(LOGS_GLOB, method="POST", status=503, times=2)
    stream = io.StringIO()
    handler = CarolLogHandler(task_id=task_id, batch_size=10, flush_interval=60, stream=stream)
    app_logger.addHandler(handler)

    for number in range(30):
        app_logger.info("line %d", number)
    handler.close()

    # The first two batches met a 503: each was sent once, never again; the third arrived.
    assert [p["status"] for p in log_posts(carol_sandbox, task_id)] == [503, 503, 200]
    assert carol_lines(carol_sandbox, task_id) == [("INFO", f"line {n}") for n in range(20, 30)]
    failures = [w for w in reports.warnings() if "shipping failed" in w]
    assert len(failures) == 1 and "503" in failures[0] and task_id in failures[0]
    assert stream.getvalue().splitlines() == [f"line {n}" for n in range(20)]  # kept locally
    assert handler.stats()["failed"] == 20


def test_a_connection_dropped_after_carol_stored_the_batch_is_not_resent(carol_sandbox, app_logger, reports):
    task_id = new_task(carol_sandbox)
    carol_sandbox.add_fault(LOGS_GLOB, method="POST", drop="after", times=1)
    handler = CarolLogHandler(task_id=task_id, batch_size=5, flush_interval=60, stream=io.StringIO())
    app_logger.addHandler(handler)

    for number in range(10):
        app_logger.info("line %d", number)
    handler.close()

    lines = [message for _, message in carol_lines(carol_sandbox, task_id)]
    assert lines == [f"line {n}" for n in range(10)]  # each line exactly once: no blind resend
    assert [p["status"] for p in log_posts(carol_sandbox, task_id)] == [None, 200]
    assert len([w for w in reports.warnings() if "shipping failed" in w]) == 1


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_carol_never_raises_into_the_application(carol_sandbox, app_logger, reports, monkeypatch):
    conn = json.loads(carol_sandbox.connection_json("api_key"))
    conn["port"] = _closed_port()
    monkeypatch.setenv("AIRFLOW_CONN_CAROL_DEFAULT", json.dumps(conn))
    handler = CarolLogHandler(task_id="no-such-carol", batch_size=50, stream=io.StringIO(), close_timeout=30)
    app_logger.addHandler(handler)

    for number in range(200):
        app_logger.error("still logging %d", number)  # must not raise
    handler.close()

    assert handler.stats()["failed"] == 200 and handler.stats()["sent"] == 0
    assert len([w for w in reports.warnings() if "shipping failed" in w]) == 1


def test_a_full_queue_drops_lines_and_counts_them(carol_sandbox, app_logger, reports):
    task_id = new_task(carol_sandbox)
    carol_sandbox.add_fault(LOGS_GLOB, method="POST", latency=1.0, times=1)
    handler = CarolLogHandler(task_id=task_id, batch_size=10, flush_interval=60, max_queue=50)
    app_logger.addHandler(handler)

    for number in range(500):
        app_logger.info("line %d", number)
    handler.close()

    stats = handler.stats()
    assert stats["dropped"] > 0
    assert stats["sent"] + stats["dropped"] == 500
    assert len(carol_lines(carol_sandbox, task_id)) == stats["sent"]
    assert any(f"{stats['dropped']} log line(s) dropped" in w for w in reports.warnings())


def test_a_program_that_just_exits_loses_nothing(carol_sandbox):
    task_id = new_task(carol_sandbox)
    program = textwrap.dedent(
        f"""
        import logging
        from airflow_provider_carol.log import CarolLogHandler
        log = logging.getLogger("exiting.app")
        log.propagate = False
        log.setLevel(logging.INFO)
        log.addHandler(CarolLogHandler(task_id={task_id!r}, batch_size=1000, flush_interval=60))
        for number in range(300):
            log.info("line %d", number)
        """
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr[-2000:]
    assert [m for _, m in carol_lines(carol_sandbox, task_id)] == [f"line {n}" for n in range(300)]
