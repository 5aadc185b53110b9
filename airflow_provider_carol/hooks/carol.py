"""``CarolHook``: every Carol capability over one authenticated, keep-alive connection.

Where each method lives:

- ``call_api``, ``request``, ``get_current``, ``test_connection``, ``run``, ``config``:
  :mod:`~airflow_provider_carol.hooks.core.sync_driver`;
- connectors and staging schemas: :mod:`~airflow_provider_carol.hooks.staging.connectors`;
- sends and batches: :mod:`~airflow_provider_carol.hooks.staging.sends`;
- long tasks (get, cancel, logs, wait, url): :mod:`~airflow_provider_carol.hooks.tasks.methods`;
- apps (settings, processes): :mod:`~airflow_provider_carol.hooks.apps`;
- BigQuery (key, clients, queries, reads): :mod:`~airflow_provider_carol.hooks.bigquery.methods`;
- processQuery, named queries (paged): :mod:`~airflow_provider_carol.hooks.queries`.

The request pipeline they all use (auth, retries, ``Retry-After``, error mapping) is written once in
:mod:`~airflow_provider_carol.hooks.core.transport` and shared with ``CarolAsyncHook``.
"""

from __future__ import annotations

from airflow_provider_carol import compat
from airflow_provider_carol.hooks.apps import AppMethods
from airflow_provider_carol.hooks.bigquery.methods import BigQueryMethods
from airflow_provider_carol.hooks.queries import QueryMethods
from airflow_provider_carol.hooks.staging.sends import SendMethods
from airflow_provider_carol.hooks.tasks.methods import TaskMethods


class CarolHook(SendMethods, TaskMethods, AppMethods, BigQueryMethods, QueryMethods):
    """Talk to the Carol REST API with any auth mode of a ``carol`` connection.

    The connection is read on first use (never at DAG parse). One ``requests.Session`` per hook;
    retries with backoff and jitter on connection errors, 429 and 5xx for idempotent requests only,
    honouring ``Retry-After`` up to a cap; a 401 triggers exactly one re-authentication and a resend.

    :param carol_conn_id: the Airflow connection id (conn_type ``carol``).
    :param retry_limit: how many times a retryable failure is retried (0 disables retries).
    :param retry_delay: base of the exponential backoff, in seconds (full jitter).
    :param max_retry_wait: cap on any single wait, including a server's ``Retry-After``.
    :param pool_maxsize: keep-alive connections kept per host (for concurrent senders).
    """

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, object]:
        """The connection form's extra fields on Airflow 3.1 (3.2+ reads ``conn-fields`` instead)."""
        return compat.get_connection_form_widgets(cls)

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, object]:
        """The connection form's field labels on Airflow 3.1 (3.2+ reads ``ui-field-behaviour``)."""
        return compat.get_ui_field_behaviour(cls)


__all__ = ["CarolHook"]
