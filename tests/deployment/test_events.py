"""Event-driven scheduling through the real triggerer: one DAG run per Carol event, across a SIGKILL.

``carol_event_driven`` (example_dags) is scheduled on an asset watched by ``CarolStagingEventTrigger``.
The test completes batches in the sandbox's ``event_orders`` staging one at a time and waits for each
one's run (asset events that reach the scheduler together are merged into one run by Airflow, so events
are produced one by one to count runs per event). Then it SIGKILLs the triggerer, completes a batch
while no triggerer runs, starts a new triggerer and completes one more. Every check reads the metadata
DB (asset events, the asset state store row holding the watermark), the REST API (runs, XCom) and the
sandbox's request log; waits are on events and counts, never on elapsed time.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.deployment.harness import Deployment, wait_for

pytestmark = pytest.mark.deployment
DAG_ID, ASSET, STAGING = "carol_event_driven", "carol_event_orders_batches", "event_orders"
POLLS = ("GET", "/api/v3/staging/batch/summaries")
BEFORE_KILL, AFTER_KILL = 3, 2


def asset_triggered_runs(deployment: Deployment) -> list[dict[str, Any]]:
    found = deployment.api("GET", f"dags/{DAG_ID}/dagRuns", params={"limit": 100, "order_by": "id"})
    return [run for run in found["dag_runs"] if run["run_type"] == "asset_triggered"]


def asset_event_batches(deployment: Deployment) -> list[str]:
    """The batch id of every asset event of the watched asset, oldest first."""
    rows = deployment.query(
        "SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id WHERE a.name = %s ORDER BY e.id",
        ASSET,
    )
    extras = [row[0] if isinstance(row[0], dict) else json.loads(row[0]) for row in rows]
    return [extra["payload"]["batch_id"] for extra in extras if extra.get("from_trigger")]


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
    return sum(1 for r in deployment.sandbox.requests() if (r["method"], r["path"]) == POLLS)


def produce_and_wait(deployment: Deployment, produced: list[str], records: int) -> dict[str, Any]:
    """Complete one batch; wait for its asset-triggered run to succeed; that run."""
    batch = deployment.sandbox.complete_batch(STAGING, records)
    produced.append(batch["batchId"])

    def its_run() -> dict[str, Any] | None:
        deployment.check_alive()
        runs = asset_triggered_runs(deployment)
        assert len(runs) <= len(produced), (runs, produced)  # never a run too many
        if len(runs) == len(produced) and runs[-1]["state"] in ("success", "failed"):
            return runs[-1]
        return None

    run = wait_for(f"the run for batch {batch['batchId']}", its_run, 600, 1.0, deployment.log_tails)
    assert run["state"] == "success", deployment.task_states(DAG_ID, run["dag_run_id"])
    return run


def test_one_run_per_carol_batch_across_a_triggerer_kill(
    deployment: Deployment, observations: dict[str, Any]
) -> None:
    sandbox = deployment.sandbox
    sandbox.reset()
    deployment.api("PATCH", f"dags/{DAG_ID}", json={"is_paused": False})
    earlier_runs = len(asset_triggered_runs(deployment))
    assert earlier_runs == 0, "no Carol batch event may fire before the test produces one"

    def watching() -> tuple[int, int] | None:
        deployment.check_alive()
        found = watcher_trigger(deployment)
        return found if found and found[1] is not None and polls(deployment) >= 1 else None

    trigger_id, first_triggerer = wait_for(
        "the watcher's trigger to poll Carol", watching, 600, 1.0, deployment.log_tails
    )
    wait_for("the first watermark in the asset state store", lambda: stored_watermark(deployment), 300)

    produced: list[str] = []
    runs = [produce_and_wait(deployment, produced, records) for records in range(1, BEFORE_KILL + 1)]
    assert asset_event_batches(deployment) == produced

    deployment.kill("airflow-triggerer")
    during = sandbox.complete_batch(STAGING, 10)  # while no triggerer runs
    produced.append(during["batchId"])
    deployment.start_service("airflow-triggerer")

    def fired_again() -> dict[str, Any] | None:
        deployment.check_alive()
        found = asset_triggered_runs(deployment)
        assert len(found) <= len(produced), (found, produced)
        done = len(found) == len(produced) and found[-1]["state"] in ("success", "failed")
        return found[-1] if done else None

    runs.append(wait_for("the run for the batch sent meanwhile", fired_again, 900, 1.0, deployment.log_tails))
    new_trigger = watcher_trigger(deployment)
    assert new_trigger is not None and new_trigger[1] not in (None, first_triggerer), new_trigger
    for records in range(AFTER_KILL - 1):
        runs.append(produce_and_wait(deployment, produced, 20 + records))

    total = BEFORE_KILL + AFTER_KILL
    assert len(produced) == len(set(produced)) == total
    assert asset_event_batches(deployment) == produced  # one asset event per batch, none twice
    final = asset_triggered_runs(deployment)
    assert len(final) == total and {r["state"] for r in final} == {"success"}, final
    checked = [deployment.xcom(DAG_ID, r["dag_run_id"], "check_batch") for r in final]
    assert [[b["batch_id"] for b in batches] for batches in checked] == [[b] for b in produced]
    assert [batches[0]["staging"] for batches in checked] == [STAGING] * total
    watermark = stored_watermark(deployment)
    assert watermark is not None and watermark["ids"] == [f"{produced[-1]}@{sandbox.connector_id}"]
    observations["event_driven"] = {
        "batches_before_kill": BEFORE_KILL,
        "batches_after_kill": AFTER_KILL,
        "asset_events": len(asset_event_batches(deployment)),
        "asset_triggered_runs": len(final),
        "duplicates": len(produced) - len(set(asset_event_batches(deployment))),
        "watcher_trigger": trigger_id,
        "triggerer_jobs": [first_triggerer, new_trigger[1]],
        "summary_polls": polls(deployment),
        "watermark": watermark,
    }
