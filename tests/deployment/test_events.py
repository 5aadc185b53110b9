"""Event-driven scheduling through the real triggerer: one DAG run per Carol event, across a SIGKILL.

``carol_event_driven`` (example_dags) is scheduled on an asset watched by ``CarolStagingEventTrigger``,
which polls Carol's connector stats and fires when the staging's record count grows. The test completes
batches in the sandbox's ``event_orders`` staging one at a time and waits for each one's run (asset
events that reach the scheduler together are merged into one run by Airflow, and records that arrive
between two polls are one growth, so batches are produced one by one to count runs per count change).
Then it SIGKILLs the triggerer, completes a batch while no triggerer runs, starts a new triggerer and
completes one more. Every check reads the metadata DB (asset events, the asset state store row holding
the record-count watermark), the REST API (runs, XCom) and the sandbox's request log; waits are on
events and counts, never on elapsed time.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.deployment.harness import Deployment, wait_for

pytestmark = pytest.mark.deployment
DAG_ID, ASSET, STAGING = "carol_event_driven", "carol_event_orders_records", "event_orders"
POLLS = ("GET", "/api/v1/connectors/stats/all")
BEFORE_KILL, AFTER_KILL = 3, 2


def asset_triggered_runs(deployment: Deployment) -> list[dict[str, Any]]:
    found = deployment.api("GET", f"dags/{DAG_ID}/dagRuns", params={"limit": 100, "order_by": "id"})
    return [run for run in found["dag_runs"] if run["run_type"] == "asset_triggered"]


def asset_event_payloads(deployment: Deployment) -> list[dict[str, Any]]:
    """The trigger's payload of every asset event of the watched asset, oldest first."""
    rows = deployment.query(
        "SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id WHERE a.name = %s ORDER BY e.id",
        ASSET,
    )
    extras = [row[0] if isinstance(row[0], dict) else json.loads(row[0]) for row in rows]
    return [extra["payload"] for extra in extras if extra.get("from_trigger")]


def watcher_trigger(deployment: Deployment) -> tuple[int, int | None] | None:
    """(trigger id, triggerer job id) of the asset's watcher, once the DAG processor registered it."""
    rows = deployment.query(
        "SELECT t.id, t.triggerer_id FROM trigger t JOIN asset_watcher w ON w.trigger_id = t.id "
        "JOIN asset a ON a.id = w.asset_id WHERE a.name = %s",
        ASSET,
    )
    return rows[0] if rows else None


def stored_watermark(deployment: Deployment) -> dict[str, Any] | None:
    rows = deployment.query(
        "SELECT s.value FROM asset_state_store s JOIN asset a ON a.id = s.asset_id WHERE a.name = %s", ASSET
    )
    return json.loads(rows[0][0]) if rows else None


def polls(deployment: Deployment) -> int:
    return len(deployment.sandbox.requests(*POLLS))


def growth(previous: int, records: int, connector_id: str) -> dict[str, Any]:
    """The event the trigger fires when ``records`` arrive on top of ``previous``."""
    return {
        "event": "carol_staging_records",
        "staging": STAGING,
        "connector_id": connector_id,
        "count": previous + records,
        "previous_count": previous,
        "delta": records,
    }


def produce(deployment: Deployment, expected: list[dict[str, Any]], records: int) -> None:
    """Complete one batch of ``records`` and note the growth event it must fire."""
    previous = expected[-1]["count"] if expected else 0
    deployment.sandbox.complete_batch(STAGING, records)
    expected.append(growth(previous, records, deployment.sandbox.connector_id))


def wait_for_run(deployment: Deployment, expected: list[dict[str, Any]], timeout: float) -> dict[str, Any]:
    """Wait for the asset-triggered run of the last expected event to finish; that run."""

    def its_run() -> dict[str, Any] | None:
        deployment.check_alive()
        runs = asset_triggered_runs(deployment)
        assert len(runs) <= len(expected), (runs, expected)  # never a run too many
        if len(runs) == len(expected) and runs[-1]["state"] in ("success", "failed"):
            return runs[-1]
        return None

    count = expected[-1]["count"]
    run = wait_for(f"the run for {count} records", its_run, timeout, 1.0, deployment.log_tails)
    assert run["state"] == "success", deployment.task_states(DAG_ID, run["dag_run_id"])
    return run


def test_one_run_per_record_count_change_across_a_triggerer_kill(
    deployment: Deployment, observations: dict[str, Any]
) -> None:
    sandbox = deployment.sandbox
    sandbox.reset()
    deployment.api("PATCH", f"dags/{DAG_ID}", json={"is_paused": False})
    earlier_runs = len(asset_triggered_runs(deployment))
    assert earlier_runs == 0, "no Carol staging event may fire before the test produces one"

    def watching() -> tuple[int, int] | None:
        deployment.check_alive()
        found = watcher_trigger(deployment)
        return found if found and found[1] is not None and polls(deployment) >= 1 else None

    trigger_id, first_triggerer = wait_for(
        "the watcher's trigger to poll Carol", watching, 600, 1.0, deployment.log_tails
    )
    wait_for("the first watermark in the asset state store", lambda: stored_watermark(deployment), 300)

    expected: list[dict[str, Any]] = []
    for records in range(1, BEFORE_KILL + 1):
        produce(deployment, expected, records)
        wait_for_run(deployment, expected, 600)
    assert asset_event_payloads(deployment) == expected

    deployment.kill("airflow-triggerer")
    produce(deployment, expected, 10)  # while no triggerer runs: one growth once a triggerer is back
    deployment.start_service("airflow-triggerer")
    wait_for_run(deployment, expected, 900)
    new_trigger = watcher_trigger(deployment)
    assert new_trigger is not None and new_trigger[1] not in (None, first_triggerer), new_trigger
    for records in range(AFTER_KILL - 1):
        produce(deployment, expected, 20 + records)
        wait_for_run(deployment, expected, 600)

    total = BEFORE_KILL + AFTER_KILL
    fired = asset_event_payloads(deployment)
    assert fired == expected and len(expected) == total  # one asset event per count change, none twice
    final = asset_triggered_runs(deployment)
    assert len(final) == total and {r["state"] for r in final} == {"success"}, final
    checked = [deployment.xcom(DAG_ID, r["dag_run_id"], "check_records") for r in final]
    assert checked == [[{k: v for k, v in event.items() if k != "event"}] for event in expected]
    watermark = stored_watermark(deployment)
    assert watermark == {"counts": {sandbox.connector_id: expected[-1]["count"]}}, watermark
    assert sandbox.staging_count(STAGING) == expected[-1]["count"]
    observations["event_driven"] = {
        "batches_before_kill": BEFORE_KILL,
        "batches_after_kill": AFTER_KILL,
        "asset_events": len(fired),
        "asset_triggered_runs": len(final),
        "duplicates": len(fired) - len({event["count"] for event in fired}),
        "events": [(e["previous_count"], e["count"], e["delta"]) for e in fired],
        "watcher_trigger": trigger_id,
        "triggerer_jobs": [first_triggerer, new_trigger[1]],
        "stats_polls": polls(deployment),
        "watermark": watermark,
    }
