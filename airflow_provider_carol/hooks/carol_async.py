"""``CarolAsyncHook``: the triggerer's Carol client (``httpx.AsyncClient``): what triggers need of Carol.

It runs the same flows as the sync hook (:mod:`~airflow_provider_carol.hooks.core.transport` and
:mod:`~airflow_provider_carol.hooks.tasks.methods`), so connection parsing, auth, retries, error mapping and
the waiting policy are the sync hook's; only the I/O is ``await``-ed.
"""

from __future__ import annotations

from airflow_provider_carol.hooks.listings import AsyncListingMethods
from airflow_provider_carol.hooks.tasks.methods import AsyncTaskMethods


class CarolAsyncHook(AsyncTaskMethods, AsyncListingMethods):
    """Async Carol client for triggers; use as ``async with CarolAsyncHook(conn_id) as hook:``.

    :param carol_conn_id: the ``carol`` connection.
    :param retry_limit: retries of a retryable failure (same policy as ``CarolHook``).
    :param retry_delay: base of the exponential backoff (full jitter), seconds.
    :param max_retry_wait: cap on any single wait, including ``Retry-After``.
    """


__all__ = ["CarolAsyncHook"]
