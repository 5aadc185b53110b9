"""Killing a task's process for real, and running the task again, for the durable-work tests.

The first try runs ``dag.test()`` in a child process; the test SIGKILLs the process running the task
once a condition holds (the task's pid comes from ``tests.dagutil.crash_test_hooks``). ``dag.test()``
deletes and recreates a DAG run it runs again, and the task state store with it, which a scheduler
retry keeps: :func:`saved_state` reads what the killed try stored, and ``crash_test_hooks`` puts it back
into the retry's store before the operator runs, as the scheduler's retry would find it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

CHILD = """
import json, sys
from datetime import datetime
from tests.dagutil import load_dag
when = datetime.fromisoformat(sys.argv[2])
dag = load_dag(sys.argv[1], sys.argv[4] if len(sys.argv) > 4 else None)
dag.test(logical_date=when, run_after=when, run_conf=json.loads(sys.argv[3]))
"""


def start_first_try(dag_file: str, when: datetime, conf: dict, dag_id: str | None = None) -> subprocess.Popen:
    """``dag.test()`` of ``tests/dags/<dag_file>.py`` (its DAG ``dag_id``) in a child process: the try
    that gets killed."""
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHILD,
            dag_file,
            when.isoformat(),
            json.dumps(conf),
            *([dag_id] if dag_id else []),
        ],
        cwd=str(os.getcwd()),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill_when(child: subprocess.Popen, pid_file: Path, condition: Callable[[], object], what: str) -> object:
    """SIGKILL the task's process once ``condition()`` is truthy; return what it returned."""
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline:
            if child.poll() is not None:
                raise AssertionError(f"the first try ended by itself (exit {child.returncode}) before {what}")
            seen = condition()
            if seen and pid_file.exists() and pid_file.read_text():
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
                child.wait(30)
                assert child.returncode == -signal.SIGKILL
                return seen
            time.sleep(0.02)
        raise AssertionError(f"the first try never reached the kill point: {what}")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)


def saved_state(dag_id: str, task_id: str, key: str) -> object:
    """What the killed try wrote to its task state store under ``key`` (from the metadata DB)."""
    from airflow._shared.state import TaskScope
    from airflow.models import DagRun
    from airflow.state import get_state_backend
    from airflow.utils.session import create_session

    with create_session() as session:
        (run,) = session.query(DagRun).filter(DagRun.dag_id == dag_id).all()
        stored = get_state_backend().get(TaskScope(dag_id, run.run_id, task_id), key, session=session)
    return json.loads(stored) if stored is not None else None


def hand_to_retry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, entries: dict[str, object]) -> None:
    """Make the retry's task state store start with ``entries`` (see the module docstring)."""
    path = tmp_path / "task-state-store.json"
    path.write_text(json.dumps(entries))
    monkeypatch.setenv("CAROL_CRASH_STORE_FILE", str(path))
