"""A triggerer at its default capacity: 1,000 deferred Carol sensors on one connection, in a deployment.

``deploy_many_sensors`` maps ``CarolTaskSensor`` over 1,000 Carol tasks that stay RUNNING until the test
completes them; its instances start in the triggerer (``start_from_trigger``, see the DAG), so all 1,000
``CarolTaskTrigger``s run in the one triggerer, as many deferred sensors of a busy deployment do. The
sandbox's request log then shows what the triggerer costs Carol: one login, every task polled, no more
connections at a time than the shared client's pool, one re-login for all when Carol expires the token,
and each trigger's event carrying its own task once the tasks end.

The triggerer's default capacity is 1,000 triggers, so this test must run while no other trigger exists
(first in tests/deployment, before the event-driven test leaves its asset watcher running).
Resuming 1,000 sensors on the two one-slot workers would take about 25 minutes on this 2-core
machine (about 0.7 resumptions a second), and it is no part of what the triggerer does: the first
``RESUMED`` sensors resume and succeed on the workers, then the run is marked successful through the REST
API. Waits are on events and counts, never on elapsed time.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import pytest

from airflow_provider_carol.hooks.core.sessions import MAX_IN_FLIGHT
from tests.dagutil import connections_at_once
from tests.deployment.harness import Deployment, wait_for

pytestmark = pytest.mark.deployment
DAG_ID, WAITS, RESUMED = "deploy_many_sensors", 1000, 8
TOKEN_PATH = "/api/v5/oauth2/token"


def sensor_states(deployment: Deployment, run_id: str) -> dict[tuple[str, bool], int]:
    """How many mapped sensors are in each state, split by whether a triggerer runs their trigger."""
    rows = deployment.query(
        "SELECT ti.state, t.triggerer_id IS NOT NULL, count(*) FROM task_instance ti "
        "LEFT JOIN trigger t ON t.id = ti.trigger_id "
        "WHERE ti.dag_id = %s AND ti.run_id = %s AND ti.task_id = 'wait' GROUP BY 1, 2",
        DAG_ID,
        run_id,
    )
    return {(str(state), bool(assigned)): count for state, assigned, count in rows}


def polled(log: list[dict[str, Any]], paths: dict[str, str]) -> set[str]:
    """The Carol tasks a GET of the log answered (200)."""
    return {paths[r["path"]] for r in log if r["path"] in paths and r["status"] == 200}


def test_a_thousand_deferred_sensors_cost_carol_one_login_and_a_few_connections(
    deployment: Deployment, observations: dict[str, Any]
) -> None:
    sandbox = deployment.sandbox
    sandbox.reset()
    others = deployment.query("SELECT count(*) FROM trigger")[0][0]
    assert others == 0, f"{others} trigger(s) there already: {WAITS} more exceed the triggerer's capacity"
    task_ids = [sandbox.create_task([{"status": "RUNNING", "after": 0}]) for _ in range(WAITS)]
    paths = {f"/api/v1/tasks/{t}": t for t in task_ids}
    started = time.monotonic()
    run_id = deployment.trigger(DAG_ID, {"carol_task_ids": task_ids})

    def all_in_the_triggerer() -> bool:
        deployment.check_alive()
        states = sensor_states(deployment, run_id)
        assert not {state for state, _ in states} & {"failed", "upstream_failed"}, states
        return states.get(("deferred", True)) == WAITS

    wait_for(f"{WAITS} deferred in the triggerer", all_in_the_triggerer, 900, 2.0, deployment.log_tails)
    (triggerers,) = deployment.query(
        "SELECT count(DISTINCT t.triggerer_id) FROM trigger t JOIN task_instance ti ON ti.trigger_id = t.id "
        "WHERE ti.dag_id = %s AND ti.run_id = %s",
        DAG_ID,
        run_id,
    )
    assert triggerers == (1,)
    wait_for("every Carol task polled", lambda: polled(sandbox.requests(), paths) == set(task_ids), 900, 2.0)
    deferred_s = time.monotonic() - started
    log = sandbox.requests()
    assert [r["path"] for r in log if r["path"] == TOKEN_PATH] == [TOKEN_PATH]  # one login for all
    assert connections_at_once(log) <= MAX_IN_FLIGHT

    # Carol expires the token: every trigger's next poll gets a 401, and one re-login serves them all.
    expired_at = len(log)
    sandbox.expire_tokens()
    wait_for(
        "every task polled again with a renewed token",
        lambda: polled(sandbox.requests()[expired_at:], paths) == set(task_ids),
        900,
        2.0,
    )
    window = sandbox.requests()[expired_at:]
    assert sum(1 for r in window if r["path"] == TOKEN_PATH) == 1
    rejected = sum(1 for r in window if r["status"] == 401)
    assert rejected >= 1

    finished: dict[str, float] = {}
    for task_id in task_ids:
        finished[task_id] = time.time()
        sandbox.finish_task(task_id)

    def all_fired() -> bool:
        deployment.check_alive()
        return not any(state == "deferred" for state, _ in sensor_states(deployment, run_id))

    wait_for("every trigger to fire", all_fired, 900, 2.0, deployment.log_tails)
    late = lateness(sandbox.requests(), paths, finished)

    def resumed() -> bool:
        deployment.check_alive()
        return sensor_states(deployment, run_id).get(("success", False), 0) >= RESUMED

    wait_for(f"{RESUMED} sensors to succeed on the workers", resumed, 900, 2.0, deployment.log_tails)
    # One snapshot: a sensor not yet resumed holds its trigger's event; a resumed one has returned it.
    rows = deployment.query(
        "SELECT map_index, state, next_kwargs FROM task_instance "
        "WHERE dag_id = %s AND run_id = %s AND task_id = 'wait'",
        DAG_ID,
        run_id,
    )
    assert sorted(index for index, _, _ in rows) == list(range(WAITS))
    done = [index for index, state, _ in rows if state == "success"]
    events = {index: (kwargs or {}).get("event") for index, state, kwargs in rows if state != "success"}
    wrong = {
        i: e
        for i, e in events.items()
        if e != {"status": "COMPLETED", "carol_task_id": task_ids[i], "error": None, "logs_tail": []}
    }
    assert not wrong, list(wrong.items())[:3]
    for index in done:
        value = deployment.xcom(DAG_ID, run_id, "wait", map_index=index)
        assert value == {"carol_task_id": task_ids[index], "status": "COMPLETED"}
    deployment.api("PATCH", f"dags/{DAG_ID}/dagRuns/{run_id}", json={"state": "success"})
    wait_for("the workers to be idle", lambda: not busy(deployment, run_id), 600, 2.0, deployment.log_tails)
    observations["many_sensors"] = {
        "waits": WAITS,
        "seconds_until_all_deferred_and_polled": round(deferred_s, 1),
        "logins_before_expiry": 1,
        "connections_at_once_seen": connections_at_once(log),
        "requests_rejected_401_after_expiry": rejected,
        "relogins_after_expiry": 1,
        "lateness_s": late,
        "resumed_on_workers": len(done),
        "wall_s": round(time.monotonic() - started, 1),
    }


def lateness(
    log: list[dict[str, Any]], paths: dict[str, str], finished: dict[str, float]
) -> dict[str, float]:
    """Seconds from each task's end to its first poll answered after it (the trigger yields on that one;
    a poll already in flight at the end may have seen RUNNING, so this can be one pause short)."""
    seen: dict[str, float] = {}
    for r in log:
        task_id = paths.get(r["path"])
        if task_id and r["status"] == 200 and r["time"] >= finished[task_id]:
            seen.setdefault(task_id, r["time"] - finished[task_id])
    values = sorted(seen.values())
    return {
        "median": round(statistics.median(values), 2),
        "p99": round(values[int(0.99 * (len(values) - 1))], 2),
        "max": round(values[-1], 2),
    }


def busy(deployment: Deployment, run_id: str) -> bool:
    """Whether any task of the run is still queued or running (after the run was marked successful)."""
    rows = deployment.query(
        "SELECT count(*) FROM task_instance "
        "WHERE dag_id = %s AND run_id = %s AND state IN ('queued', 'running')",
        DAG_ID,
        run_id,
    )
    return rows[0][0] > 0
