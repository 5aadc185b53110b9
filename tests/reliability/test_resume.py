"""Resumable sends: a send killed half-way (SIGKILL, not an exception) and run again finishes exactly once.

The first attempt runs ``dag.test()`` in a child process; once the sandbox has acknowledged some of the
chunks, the test SIGKILLs the process that runs the task (its pid comes from the task's
``pre_execute``). The second attempt runs the same task of the same DAG run (same ``run_id``; ``dag.test``
cannot detect the dead process the way the scheduler does, so the retry is started by hand) and must
re-send the same (batchId, batchIdSequence) pairs: Carol then holds every record exactly once and one
exact summary.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest

from tests.dagutil import load_dag, run_dag
from tests.reliability.ledger import LEDGER

pytestmark = pytest.mark.dag

RECORDS = 40_000
CHUNK = 500  # tests/dags/test_reliability_resume.py
KILL_AFTER_ACKS = 20
CHILD = """
import json, sys
from datetime import datetime
from tests.dagutil import load_dag
when = datetime.fromisoformat(sys.argv[1])
load_dag("test_reliability_resume").test(logical_date=when, run_after=when, run_conf=json.loads(sys.argv[2]))
"""


def acknowledged(sandbox) -> int:
    return sum(
        1
        for e in sandbox.requests()
        if e["path"] == "/api/v2/staging/intake/resume" and e["status"] and e["status"] < 300
    )


def kill_when_acknowledged(sandbox, child: subprocess.Popen, pid_file, acks: int) -> int:
    """SIGKILL the task's process once ``acks`` chunks were acknowledged; return the acks seen then."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise AssertionError(f"the first attempt ended by itself (exit {child.returncode})")
        seen = acknowledged(sandbox)
        if seen >= acks and pid_file.exists() and pid_file.read_text():
            pid = int(pid_file.read_text())
            os.kill(pid, signal.SIGKILL)
            child.wait(30)
            return seen
        time.sleep(0.02)
    raise AssertionError("the first attempt never reached the kill point")


def test_send_killed_half_way_then_retried_stores_every_record_once(
    airflow_db, carol_sandbox, monkeypatch, tmp_path
):
    source = tmp_path / "customers.jsonl"
    with source.open("w") as handle:
        for i in range(RECORDS):
            handle.write(json.dumps({"id": i, "name": f"customer {i}", "score": i % 97}) + "\n")
    pid_file = tmp_path / "task.pid"
    monkeypatch.setenv("CAROL_RESUME_PID_FILE", str(pid_file))
    # Slow each chunk a little so the kill lands with chunks acknowledged, in flight and still unread.
    carol_sandbox.add_fault("/api/v2/staging/intake/resume", method="POST", latency=0.05, times=100_000)
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    conf = {"path": str(source)}

    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, when.isoformat(), json.dumps(conf)],
        cwd=str(os.getcwd()),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        acked = kill_when_acknowledged(carol_sandbox, child, pid_file, KILL_AFTER_ACKS)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)
    assert child.returncode == -signal.SIGKILL and int(pid_file.read_text()) == child.pid
    time.sleep(0.3)  # requests the dead process left in flight finish server-side
    (first,) = carol_sandbox.batches()
    total_chunks = RECORDS // CHUNK
    assert KILL_AFTER_ACKS <= first["requests"] < total_chunks, first  # really half-way
    assert first["summary"] is None  # a killed send reports nothing to Carol

    carol_sandbox._admin("DELETE", "faults")
    pid_file.unlink()
    dag = load_dag("test_reliability_resume")
    dag_run, tis = run_dag(dag, logical_date=when, run_after=when, run_conf=conf)
    assert dag_run.state == "success", {t: ti.state for t, ti in tis.items()}

    (batch,) = carol_sandbox.batches()
    assert batch["batchId"] == first["batchId"]  # the retry resumed the same batch
    assert batch["sequences"] == list(range(1, total_chunks + 1)) and batch["missing_sequences"] == []
    assert batch["records"] == RECORDS and batch["conflicts"] == 0
    assert batch["redeliveries"] >= first["requests"]  # the same (batchId, sequence) pairs were re-sent
    assert batch["summary"]["totalRecords"] == RECORDS and batch["totals_match"] is True
    assert batch["summaries_posted"] == 1
    ids = [row["record"]["id"] for row in carol_sandbox.staging("resume")]
    assert len(ids) == RECORDS and sorted(ids) == list(range(RECORDS))
    LEDGER.figures["resumable retry"] = (
        f"killed (SIGKILL) after {acked} of {total_chunks} chunks acknowledged; the retry re-sent "
        f"{batch['redeliveries']} of them: {RECORDS:,} records stored once each, one exact summary"
    )
