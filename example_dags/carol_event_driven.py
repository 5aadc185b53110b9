"""Event-driven: one DAG run each time Carol's ``event_orders`` staging table grows.

The DAG is scheduled on an asset with an ``AssetWatcher``: the triggerer runs
``CarolStagingEventTrigger``, which polls Carol's connector stats (record counts per staging) and fires
when the staging holds more records than at its last event. Each event becomes an asset event, and the
scheduler starts this DAG for it. ``check_records`` reads the event's payload from
``triggering_asset_events``, logs how many records arrived (``delta``) and reads the staging's count
from Carol again: it must hold at least the event's ``count`` (fewer means records were deleted since),
or the run fails naming the staging. A run started by hand (or by ``dag.test()``) has no Carol event
and checks nothing.

The trigger keeps the counts it has fired for in Airflow's asset state store (Airflow 3.3), so a
triggerer restart neither fires twice nor skips records that arrived meanwhile (docs/event-driven.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.providers.common.compat.sdk import DAG, Asset, task

from airflow_provider_carol.compat import AIRFLOW_V_3_0_PLUS
from airflow_provider_carol.triggers.events import CarolStagingEventTrigger

# AssetWatcher (event-driven scheduling) is Airflow 3.0+: on Airflow 2.11 this file parses, defining no DAG.
if AIRFLOW_V_3_0_PLUS:
    from airflow.sdk import AssetWatcher

    STAGING = "event_orders"
    records = Asset(
        "carol_event_orders_records",
        watchers=[
            AssetWatcher(
                name="event_orders_records", trigger=CarolStagingEventTrigger(STAGING, poll_interval=5)
            )
        ],
    )

    with DAG(
        dag_id="carol_event_driven",
        schedule=[records],
        start_date=datetime(2024, 1, 1),
        catchup=False,
        tags=["carol", "example"],
        doc_md=__doc__,
    ) as dag:

        @task
        def check_records(**context: Any) -> list[dict[str, Any]]:
            """Check every growth that triggered this run against Carol's count now; the events go to XCom."""
            import logging

            from airflow_provider_carol.exceptions import CarolError
            from airflow_provider_carol.hooks.carol import CarolHook
            from airflow_provider_carol.hooks.listings import staging_counts
            from airflow_provider_carol.triggers.events import STAGING_EVENT

            log = logging.getLogger("carol_event_driven")
            checked = []
            with CarolHook() as hook:
                for event in context["triggering_asset_events"][records]:
                    payload = event.extra.get("payload") or {}
                    if payload.get("event") != STAGING_EVENT:
                        continue  # an event of this asset that no Carol trigger produced
                    staging, connector_id = payload["staging"], payload["connector_id"]
                    log.info(
                        "Staging %s (connector %s): %d new records, %d -> %d.",
                        staging,
                        connector_id,
                        payload["delta"],
                        payload["previous_count"],
                        payload["count"],
                    )
                    now = hook.run(staging_counts(staging, connector_id)).get(connector_id, 0)
                    if now < payload["count"]:
                        raise CarolError(
                            f"Staging {staging} of connector {connector_id} holds {now} records, fewer than "
                            f"the {payload['count']} it held when the event fired: records were deleted "
                            "since."
                        )
                    keys = ("staging", "connector_id", "count", "previous_count", "delta")
                    checked.append({k: payload[k] for k in keys})
            if not checked:
                log.info("No Carol staging event triggered this run: nothing to check.")
            return checked

        check_records()
