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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from airflow_provider_carol.hooks.core.sessions import MAX_IN_FLIGHT
from tests.dagutil import connections_at_once
from tests.deployment.harness import Deployment, wait_for

pytestmark = pytest.mark.deployment
DAG_ID, WAITS, RESUMED = "deploy_many_sensors", 1000, 8
TOKEN_PATH = "/api/v5/oauth2/token"


@dataclass
class ManyWaits:
    """One ``deploy_many_sensors`` run and its Carol tasks, checked phase by phase."""

    deployment: Deployment
    task_ids: list[str]
    run_id: str = ""

    @property
    def paths(self) -> dict[str, str]:
        return {f"/api/v1/tasks/{t}": t for t in self.task_ids}

    def states(self) -> dict[tuple[str, bool], int]:
        """How many mapped sensors are in each state, split by whether a triggerer runs their trigger."""
        rows = self.deployment.query(
            "SELECT ti.state, t.triggerer_id IS NOT NULL, count(*) FROM task_instance ti "
            "LEFT JOIN trigger t ON t.id = ti.trigger_id "
            "WHERE ti.dag_id = %s AND ti.run_id = %s AND ti.task_id = 'wait' GROUP BY 1, 2",
            DAG_ID,
            self.run_id,
        )
        return {(str(state), bool(assigned)): count for state, assigned, count in rows}

    def polled(self, since: int = 0) -> set[str]:
        """The Carol tasks a GET answered (200) after the first ``since`` request-log entries."""
        paths = self.paths
        return {
            paths[r["path"]]
            for r in self.deployment.sandbox.requests()[since:]
            if r["path"] in paths and r["status"] == 200
        }

    def wait(self, what: str, check: Callable[[], object]) -> None:
        def alive_and() -> object:
            self.deployment.check_alive()
            return check()

        wait_for(what, alive_and, 900, 2.0, self.deployment.log_tails)

    def defer_all(self) -> None:
        """Start the run; wait until every sensor is deferred in one triggerer and every task polled."""
        self.run_id = self.deployment.trigger(DAG_ID, {"carol_task_ids": self.task_ids})

        def all_in_the_triggerer() -> bool:
            states = self.states()
            assert not {state for state, _ in states} & {"failed", "upstream_failed"}, states
            return states.get(("deferred", True)) == WAITS

        self.wait(f"{WAITS} deferred in the triggerer", all_in_the_triggerer)
        (triggerers,) = self.deployment.query(
            "SELECT count(DISTINCT t.triggerer_id) FROM trigger t "
            "JOIN task_instance ti ON ti.trigger_id = t.id WHERE ti.dag_id = %s AND ti.run_id = %s",
            DAG_ID,
            self.run_id,
        )
        assert triggerers == (1,)
        self.wait("every Carol task polled", lambda: self.polled() == set(self.task_ids))

    def relogin_after_expiry(self) -> list[dict[str, Any]]:
        """Carol expires the token; the requests until every task was polled again with a new one."""
        expired_at = len(self.deployment.sandbox.requests())
        self.deployment.sandbox.expire_tokens()
        self.wait(
            "every task polled with a renewed token", lambda: self.polled(expired_at) == set(self.task_ids)
        )
        return self.deployment.sandbox.requests()[expired_at:]

    def fire_all(self) -> dict[str, float]:
        """End every Carol task; wait until no sensor is deferred. Lateness of the polls that saw the ends."""
        finished: dict[str, float] = {}
        for task_id in self.task_ids:
            finished[task_id] = time.time()
            self.deployment.sandbox.finish_task(task_id)
        self.wait("every trigger to fire", lambda: all(state != "deferred" for state, _ in self.states()))
        return lateness(self.deployment.sandbox.requests(), self.paths, finished)

    def check_events_after_some_resumed(self) -> list[int]:
        """Once ``RESUMED`` sensors succeeded: each fired sensor holds its own task's event, each resumed
        one returned its task. The map indexes that resumed."""
        self.wait(
            f"{RESUMED} sensors to succeed on the workers",
            lambda: self.states().get(("success", False), 0) >= RESUMED,
        )
        rows = self.deployment.query(  # one snapshot: an event is held until its sensor has resumed
            "SELECT map_index, state, next_kwargs FROM task_instance "
            "WHERE dag_id = %s AND run_id = %s AND task_id = 'wait'",
            DAG_ID,
            self.run_id,
        )
        assert sorted(index for index, _, _ in rows) == list(range(WAITS))
        wrong = [
            (index, (kwargs or {}).get("event"))
            for index, state, kwargs in rows
            if state != "success"
            and (kwargs or {}).get("event")
            != {"status": "COMPLETED", "carol_task_id": self.task_ids[index], "error": None, "logs_tail": []}
        ]
        assert not wrong, wrong[:3]
        done = [index for index, state, _ in rows if state == "success"]
        for index in done:
            value = self.deployment.xcom(DAG_ID, self.run_id, "wait", map_index=index)
            assert value == {"carol_task_id": self.task_ids[index], "status": "COMPLETED"}
        return done

    def end_run(self) -> None:
        """Mark the run successful (the other resumptions would take ~25 min) and let the workers drain."""
        self.deployment.api("PATCH", f"dags/{DAG_ID}/dagRuns/{self.run_id}", json={"state": "success"})
        busy = (
            "SELECT count(*) FROM task_instance "
            "WHERE dag_id = %s AND run_id = %s AND state IN ('queued', 'running')"
        )
        self.wait(
            "the workers to be idle", lambda: self.deployment.query(busy, DAG_ID, self.run_id)[0][0] == 0
        )


def test_a_thousand_deferred_sensors_cost_carol_one_login_and_a_few_connections(
    deployment: Deployment, observations: dict[str, Any]
) -> None:
    sandbox = deployment.sandbox
    sandbox.reset()
    others = deployment.query("SELECT count(*) FROM trigger")[0][0]
    assert others == 0, f"{others} trigger(s) there already: {WAITS} more exceed the triggerer's capacity"
    waits = ManyWaits(
        deployment, [sandbox.create_task([{"status": "RUNNING", "after": 0}]) for _ in range(WAITS)]
    )
    started = time.monotonic()

    waits.defer_all()
    deferred_s = time.monotonic() - started
    log = sandbox.requests()
    assert [r["path"] for r in log if r["path"] == TOKEN_PATH] == [TOKEN_PATH]  # one login for all
    assert connections_at_once(log) <= MAX_IN_FLIGHT

    window = waits.relogin_after_expiry()  # every trigger's next poll is refused; one re-login serves all
    assert sum(1 for r in window if r["path"] == TOKEN_PATH) == 1
    rejected = sum(1 for r in window if r["status"] == 401)
    assert rejected >= 1

    late = waits.fire_all()
    done = waits.check_events_after_some_resumed()
    waits.end_run()
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
