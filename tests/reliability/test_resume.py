"""Resumable sends: a send killed at 25% (SIGKILL, not an exception) and run again finishes exactly once.

The first attempt runs ``dag.test()`` in a child process; once the sandbox has acknowledged a quarter of
the chunks, the test SIGKILLs the process that runs the task (its pid comes from the task's
``pre_execute``). The second attempt runs the same task of the same DAG run (same ``run_id``; ``dag.test``
cannot detect the dead process the way the scheduler does, so the retry is started by hand). It reads the
acknowledged chunks from the task state store and sends only the others, then the summary: Carol holds
every record exactly once and one exact summary, and the chunks acknowledged before the kill are not
sent again.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from tests.dagutil import load_dag, run_dag
from tests.reliability.crash import hand_to_retry, kill_when, saved_state, start_first_try
from tests.reliability.ledger import LEDGER

pytestmark = pytest.mark.dag

RECORDS = 200_000
CHUNK = 5_000  # tests/dags/dag_reliability_resume.py
KILL_AFTER_ACKS = 10  # of 40 chunks: 25%


def acknowledged(sandbox) -> int:
    return sum(
        1
        for e in sandbox.requests()
        if e["path"] == "/api/v2/staging/intake/resume" and e["status"] and e["status"] < 300
    )


def intake_sequences(sandbox, boundary: int) -> tuple[set[int], set[int]]:
    """(sequences stored before ``boundary`` in the request log, sequences sent after it), for this batch."""
    from urllib.parse import parse_qs

    def sequences(entries: list[dict]) -> set[int]:
        return {
            int(parse_qs(e["query"])["batchIdSequence"][0])
            for e in entries
            if e["path"] == "/api/v2/staging/intake/resume" and e["status"] and e["status"] < 300
        }

    log = sandbox.requests()
    return sequences(log[:boundary]), sequences(log[boundary:])


@pytest.mark.parametrize("store_survives", [True, False], ids=["state-store", "no-state-store"])
def test_send_killed_at_a_quarter_then_retried_stores_every_record_once(
    airflow_db, carol_sandbox, monkeypatch, tmp_path, pid_file, store_survives
):
    """With the task state store (Airflow 3.3) the retry skips what was acknowledged; without it (older
    Airflow, or a store lost) it sends every chunk again, which Carol takes as replacements."""
    source = tmp_path / "customers.jsonl"
    with source.open("w") as handle:
        for i in range(RECORDS):
            handle.write(json.dumps({"id": i, "name": f"customer {i}", "score": i % 97}) + "\n")
    # Slow each chunk a little so the kill lands with chunks acknowledged, in flight and still unread.
    carol_sandbox.add_fault("/api/v2/staging/intake/resume", method="POST", latency=0.05, times=100_000)
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    conf = {"path": str(source)}

    child = start_first_try("dag_reliability_resume", when, conf)
    acked = kill_when(
        child,
        pid_file,
        lambda: (n := acknowledged(carol_sandbox)) >= KILL_AFTER_ACKS and n,
        "a quarter acknowledged",
    )
    total_chunks = RECORDS // CHUNK
    (first,) = carol_sandbox.batches()
    assert KILL_AFTER_ACKS <= first["requests"] < total_chunks, first  # really part-way
    assert first["summary"] is None  # a killed send reports nothing to Carol
    key = f"carol_staging_acks/{first['batchId']}"
    ledger = saved_state("test_reliability_resume", "send", key)  # what the dead try had stored
    recorded = {int(seq) for seq in ledger or {}}
    assert recorded, "the first try recorded no acknowledged chunk"
    if store_survives:
        hand_to_retry(monkeypatch, tmp_path, {key: ledger})

    carol_sandbox._admin("DELETE", "faults")
    boundary = len(carol_sandbox.requests())  # what follows is the retry's
    pid_file.unlink()
    dag = load_dag("dag_reliability_resume")
    dag_run, tis = run_dag(dag, logical_date=when, run_after=when, run_conf=conf)
    assert dag_run.state == "success", {t: ti.state for t, ti in tis.items()}

    (batch,) = carol_sandbox.batches()
    assert batch["batchId"] == first["batchId"]  # the retry resumed the same batch
    assert batch["sequences"] == list(range(1, total_chunks + 1)) and batch["missing_sequences"] == []
    assert batch["records"] == RECORDS and batch["conflicts"] == 0
    assert batch["summary"]["totalRecords"] == RECORDS and batch["totals_match"] is True
    assert batch["summaries_posted"] == 1
    ids = [row["record"]["id"] for row in carol_sandbox.staging("resume")]
    assert len(ids) == RECORDS and sorted(ids) == list(range(RECORDS))
    # The retry sent exactly the chunks Carol had not acknowledged to the dead try as far as the state
    # store knew: none of the recorded ones, every other one once.
    stored_before, sent_by_retry = intake_sequences(carol_sandbox, boundary)
    skipped = recorded if store_survives else set()
    assert sent_by_retry == set(range(1, total_chunks + 1)) - skipped
    resent = sorted(sent_by_retry & stored_before)  # stored by the killed try, sent again
    assert batch["redeliveries"] == len(resent)
    LEDGER.figures[f"resumable retry ({'with' if store_survives else 'without'} the task state store)"] = (
        f"killed (SIGKILL) at {acked} of {total_chunks} chunks acknowledged ({len(stored_before)} stored, "
        f"{len(recorded)} recorded); the retry sent {len(sent_by_retry)} chunks, re-sending {len(resent)} "
        f"({len(resent) * CHUNK:,} records): {RECORDS:,} records stored once each, one exact summary"
    )
