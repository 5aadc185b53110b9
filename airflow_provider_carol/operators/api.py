"""``CarolApiOperator``: one raw Carol API call as a task, its JSON answer in XCom."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow.providers.common.compat.sdk import Context

from airflow_provider_carol.hooks.core.endpoints import API_PREFIX
from airflow_provider_carol.operators.base import CarolBaseOperator


class CarolApiOperator(CarolBaseOperator):
    """Call any Carol endpoint through :meth:`CarolHook.call_api` and return the parsed JSON.

    :param path: path under ``prefix``, e.g. ``v1/tenants/current`` (templated).
    :param method: HTTP method (templated); default GET without a body, POST with one.
    :param query_params: query parameters (templated), encoded by the HTTP client. (Not ``params``:
        that name belongs to every Airflow operator.)
    :param json: JSON body (templated).
    :param data: raw or form body (templated), instead of ``json``.
    :param headers: extra request headers (templated); never logged.
    :param prefix: URL prefix, ``/api/`` by default.
    :param idempotent: whether a POST may be resent on transient errors (default: only non-POST).
    :param carol_conn_id: the ``carol`` connection.
    """

    template_fields: Sequence[str] = ("path", "method", "query_params", "json", "data", "headers", "prefix")
    template_fields_renderers = {"json": "json", "query_params": "json"}

    def __init__(
        self,
        *,
        path: str,
        method: str | None = None,
        query_params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        prefix: str = API_PREFIX,
        idempotent: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.path = path
        self.method = method
        self.query_params = query_params
        self.json = json
        self.data = data
        self.headers = headers
        self.prefix = prefix
        self.idempotent = idempotent

    def execute(self, context: Context) -> Any:
        """Make the call and return its JSON (pushed to XCom as ``return_value``)."""
        return self.hook.call_api(
            self.path,
            self.method,
            params=self.query_params,
            json=self.json,
            data=self.data,
            headers=self.headers,
            prefix=self.prefix,
            idempotent=self.idempotent,
        )
