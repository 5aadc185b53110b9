"""Test helpers: load and run DAG files from tests/dags, a recording task instance, sandbox long tasks
and request logs, a free port."""

from __future__ import annotations

import importlib.util
import socket
from pathlib import Path
from typing import Any

import requests

DAGS = Path(__file__).resolve().parent / "dags"


def load_module(name: str) -> Any:
    """Import ``tests/dags/<name>.py`` as a module, as Airflow's DAG processor parses a DAG file."""
    spec = importlib.util.spec_from_file_location(f"carol_test_dag_{name}", DAGS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_dag(name: str, dag_id: str | None = None) -> Any:
    """Import ``tests/dags/<name>.py`` and return its DAG (``dag`` or the one with ``dag_id``)."""
    module = load_module(name)
    if dag_id is None:
        return module.dag
    return next(v for v in vars(module).values() if getattr(v, "dag_id", None) == dag_id)


def run_dag(dag: Any, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
    """``dag.test()`` and the task instances by task id (mapped ones keyed ``task_id[i]``).

    Airflow 3's ``dag.test()`` writes the DAG (with its assets and asset aliases) to the metadata DB
    first; 2.11's leaves that to the DAG processor, without which a dataset event through an alias
    cannot be stored, so the DAG is written here as the DAG processor would.
    """
    from airflow_provider_carol.compat import AIRFLOW_V_3_0_PLUS

    if not AIRFLOW_V_3_0_PLUS:
        dag.sync_to_db()
    dag_run = dag.test(**kwargs)
    tis = {}
    for ti in dag_run.get_task_instances():
        key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
        tis[key] = ti
    return dag_run, tis


class RecordingTI:
    """Stands in for the task instance when calling ``execute`` directly: records what is pushed to XCom."""

    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def task_context() -> dict[str, Any]:
    """A minimal context for ``operator.execute(context)``."""
    return {"ti": RecordingTI()}


def steps(final: str, after: float) -> list[dict]:
    """A long-task schedule: RUNNING at once, then ``final`` after ``after`` seconds."""
    return [{"status": "RUNNING", "after": 0}, {"status": final, "after": after}]


def create_sandbox_task(schedule: list[dict], **spec: Any) -> str:
    """Create a scheduled long task through the admin API of the sandbox ``carol_default`` points at.

    For test DAG files, which only know the connection (not the ``carol_sandbox`` fixture).
    """
    from airflow.providers.common.compat.sdk import BaseHook

    conn = BaseHook.get_connection("carol_default")
    url = f"{conn.extra_dejson.get('scheme', 'http')}://{conn.host}:{conn.port}/__sandbox/tasks"
    response = requests.post(url, json={"schedule": schedule, **spec}, timeout=30)
    response.raise_for_status()
    return response.json()["id"]


def carol_lines(sandbox: Any, task_id: str) -> list[tuple[str, str]]:
    """The ``(level, message)`` log lines the sandbox holds for Carol task ``task_id``, in order."""
    return [(e["mdmLogLevel"], e["mdmLogMessage"]) for e in sandbox.task(task_id)["logs"]]


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition: Any, what: str, timeout: float = 120.0, interval: float = 0.05) -> Any:
    """Poll ``condition()`` until it returns something truthy; fail naming ``what`` after ``timeout``.

    Tests wait for events (a request seen, a status reached), never for a fixed time, so they pass on a
    busy machine; ``timeout`` only bounds a test that would otherwise hang.
    """
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def connections_at_once(log: list[dict[str, Any]]) -> int:
    """The most TCP connections of a sandbox request log whose first and last requests overlap.

    A lower bound of the connections a client held open at once (each log entry names its
    ``client`` host:port, one per connection).
    """
    spans: dict[str, list[float]] = {}
    for entry in log:
        spans.setdefault(entry["client"], [entry["time"], entry["time"]])[1] = entry["time"]
    edges = sorted([(first, 1) for first, _ in spans.values()] + [(last, -1) for _, last in spans.values()])
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


async def await_until(condition: Any, what: str, timeout: float = 120.0, interval: float = 0.05) -> Any:
    """:func:`wait_until` for async tests (``condition`` is a plain callable; the loop keeps running)."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(condition)
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(interval)


def crash_test_hooks(context: Any) -> None:
    """``pre_execute`` of the crash-test DAGs: write the task process's pid, restore a saved state store.

    See :mod:`tests.reliability.crash`: the test kills exactly this process, and for the retry run by
    ``dag.test()`` (which recreates the DAG run) it hands over the entries the killed try had stored.
    """
    import json
    import os

    pid_path = os.environ.get("CAROL_CRASH_PID_FILE")
    if pid_path:
        Path(pid_path).write_text(str(os.getpid()))
    saved = os.environ.get("CAROL_CRASH_STORE_FILE")
    if saved and Path(saved).exists():
        for key, value in json.loads(Path(saved).read_text()).items():
            context["task_state_store"].set(key, value)
