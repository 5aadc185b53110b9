"""Event-driven: one DAG run for each batch Carol receives into the ``event_orders`` staging table.

The DAG is scheduled on an asset with an ``AssetWatcher``: the triggerer runs
``CarolStagingEventTrigger``, which polls Carol's batch summaries and fires once per completed batch
(a batch whose summary Carol received). Each event becomes an asset event, and the scheduler starts
this DAG for it. ``check_batch`` reads the event's payload from ``triggering_asset_events`` and checks
the batch: the records Carol stored for the staging must match the client's summary, or the run fails
naming the batch. A run started by hand (or by ``dag.test()``) has no Carol event and checks nothing.

The trigger keeps what it has already fired in Airflow's asset state store (Airflow 3.3), so a
triggerer restart fires neither twice nor skips what arrived meanwhile (docs/event-driven.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_provider_carol.triggers.events import CarolStagingEventTrigger

STAGING = "event_orders"
batches = Asset(
    "carol_event_orders_batches",
    watchers=[
        AssetWatcher(name="event_orders_batches", trigger=CarolStagingEventTrigger(STAGING, poll_interval=5))
    ],
)

with DAG(
    dag_id="carol_event_driven",
    schedule=[batches],
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["carol", "example"],
    doc_md=__doc__,
) as dag:

    @task
    def check_batch(**context: Any) -> list[dict[str, Any]]:
        """Check every batch that triggered this run; the checked batches (ids and counts) go to XCom."""
        import logging

        from airflow_provider_carol.exceptions import CarolError

        log = logging.getLogger("carol_event_driven")
        checked = []
        for event in context["triggering_asset_events"][batches]:
            payload = event.extra.get("payload") or {}
            if payload.get("event") != "carol_staging_batch":
                continue  # an event of this asset that no Carol trigger produced
            if payload["records_received"] != payload["total_records"]:
                raise CarolError(
                    f"Batch {payload['batch_id']} of {payload['staging']}: Carol stored "
                    f"{payload['records_received']} records, the summary says {payload['total_records']}."
                )
            log.info(
                "Batch %s of %s (connector %s): %d records, as summarised.",
                payload["batch_id"],
                payload["staging"],
                payload["connector_id"],
                payload["total_records"],
            )
            checked.append({k: payload[k] for k in ("batch_id", "staging", "connector_id", "total_records")})
        if not checked:
            log.info("No Carol batch event triggered this run: nothing to check.")
        return checked

    check_batch()
