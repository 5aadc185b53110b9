"""``CarolProcessQueryOperator``: Carol's BigQuery processing of SQL into a data model, as a long task."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow.providers.common.compat.sdk import Context

from airflow_provider_carol.hooks.queries import process_query_params
from airflow_provider_carol.hooks.tasks.models import CarolTask
from airflow_provider_carol.operators.longtask import CarolLongTaskOperator

#: Task state store key of the processing task this Airflow task started (kept across tries).
TASK_KEY = "carol_process_query_task_id"


class CarolProcessQueryOperator(CarolLongTaskOperator):
    """Run GoogleSQL through Carol's ``v2/bigQuery/processQuery`` into a data model and wait for it.

    Carol runs the query on the tenant's BigQuery data and writes the result into ``data_model`` as a
    long task; this operator starts it (the POST is never resent), pushes the task id (XCom
    ``carol_task_id``) and the "Carol task" link, and waits like :class:`CarolRunAppProcessOperator`:
    polling or deferred, reconnecting a retry to the task an earlier try started, cancelling it on
    timeout or kill. Returns the Carol task id.

    :param sql: the GoogleSQL query (templated; a path ending in ``.sql`` is read as a template file).
    :param data_model: the data model (``entityTemplateName``) the result is written to (templated).
    :param save_cds: ``saveCds`` (default True); :param clear_cds: ``clearCds`` (default False).
    :param send_subscriptions: ``sendSubscriptions`` (default True).
    :param clear_realtime: ``clearRealtime``; :param send_realtime: ``sendRealtime`` (default False).
    :param use_dataflow: ``useDataflow``; :param save_bigquery: ``saveBigQuery``;
        :param clear_bigquery: ``clearBigQuery``; :param deduplicate_results: ``deduplicateResults``
        (all default False, as in pycarol's ``process_bigquery``).
    :param extra_params: further query parameters Carol may add (templated).
    :param carol_conn_id: the ``carol`` connection.

    The waiting arguments (``wait_for_completion``, ``deferrable``, ``poll_interval``, ``timeout``,
    ``cancel_on_kill``, ``resume``, ...) are those of
    :class:`~airflow_provider_carol.operators.longtask.CarolLongTaskOperator`.
    """

    template_fields: Sequence[str] = ("sql", "data_model", "extra_params", "carol_conn_id")
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"sql": "sql", "extra_params": "json"}
    task_state_key = TASK_KEY
    started_what = "a BigQuery processQuery"

    def __init__(
        self,
        *,
        sql: str,
        data_model: str,
        save_cds: bool = True,
        clear_cds: bool = False,
        send_subscriptions: bool = True,
        clear_realtime: bool = False,
        send_realtime: bool = False,
        use_dataflow: bool = False,
        save_bigquery: bool = False,
        clear_bigquery: bool = False,
        deduplicate_results: bool = False,
        extra_params: Mapping[str, object] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sql, self.data_model, self.extra_params = sql, data_model, extra_params
        self.flags = {
            "saveCds": save_cds,
            "clearCds": clear_cds,
            "sendSubscriptions": send_subscriptions,
            "clearRealtime": clear_realtime,
            "sendRealtime": send_realtime,
            "useDataflow": use_dataflow,
            "saveBigQuery": save_bigquery,
            "clearBigQuery": clear_bigquery,
            "deduplicateResults": deduplicate_results,
        }
        if "{{" not in str(data_model):  # checked at parse time unless a template fills it in later
            process_query_params(data_model, self.flags)

    def start_carol_task(self, context: Context) -> CarolTask:
        """POST the SQL to processQuery (never resent)."""
        return self.hook.process_query(
            self.sql, self.data_model, flags=self.flags, extra_params=self.extra_params
        )
