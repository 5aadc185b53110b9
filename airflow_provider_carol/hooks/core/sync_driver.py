"""The synchronous driver of the request pipeline: ``requests`` for I/O, ``time.sleep`` for waits.

:class:`CarolHookBase` is what every capability of :class:`~airflow_provider_carol.hooks.carol.CarolHook`
stands on: the connection (read on first use, never at DAG parse), one keep-alive ``requests.Session``,
the token (thread-safe), and :meth:`CarolHookBase.run`, which performs a flow's actions.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from functools import cached_property
from typing import cast

import requests
from airflow.providers.common.compat.sdk import BaseHook, mask_secret
from requests.adapters import HTTPAdapter
from typing_extensions import Self

from airflow_provider_carol.hooks.core import endpoints
from airflow_provider_carol.hooks.core.auth import Token, TokenKeeper
from airflow_provider_carol.hooks.core.config import CarolConnectionConfig
from airflow_provider_carol.hooks.core.context import CarolContext, describe_context, get_context
from airflow_provider_carol.hooks.core.retry import RETRYABLE_STATUSES, RetryPolicy
from airflow_provider_carol.hooks.core.transport import (
    Action,
    Authenticate,
    Call,
    Flow,
    Pipeline,
    Send,
    Sleep,
    T,
)
from airflow_provider_carol.hooks.core.types import Json
from airflow_provider_carol.hooks.core.wire import HttpRequest, HttpResponse, classify, default_headers


class CarolHookBase(BaseHook):
    """Connection, session, token and flow driver shared by every synchronous Carol capability.

    :param carol_conn_id: the Airflow connection id (conn_type ``carol``).
    :param retry_limit: how many times a retryable failure is retried (0 disables retries).
    :param retry_delay: base of the exponential backoff, in seconds (full jitter).
    :param max_retry_wait: cap on any single wait, including a server's ``Retry-After``.
    :param pool_maxsize: keep-alive connections kept per host (for concurrent senders).
    """

    conn_name_attr = "carol_conn_id"
    default_conn_name = "carol_default"
    conn_type = "carol"
    hook_name = "TOTVS Carol"

    def __init__(
        self,
        carol_conn_id: str = default_conn_name,
        *,
        retry_limit: int = 5,
        retry_delay: float = 0.5,
        max_retry_wait: float = 60.0,
        pool_maxsize: int = 16,
    ) -> None:
        super().__init__()
        self.retry_policy = RetryPolicy(retry_limit, retry_delay, max_retry_wait)
        self.carol_conn_id = carol_conn_id
        self.pool_maxsize = pool_maxsize
        self._token_lock = threading.Lock()

    @property
    def retry_limit(self) -> int:
        """Retries of a retryable failure (see :class:`RetryPolicy`)."""
        return self.retry_policy.retry_limit

    # ----------------------------------------------------------------- connection and session
    @cached_property
    def config(self) -> CarolConnectionConfig:
        """The validated connection; its secrets are registered with Airflow's log masker."""
        config = CarolConnectionConfig.from_connection(self.get_connection(self.carol_conn_id))
        mask_secret(config.secret)
        if config.refresh_token:
            mask_secret(config.refresh_token)
        return config

    @cached_property
    def pipeline(self) -> Pipeline:
        """The request flows of this connection (I/O-free; :meth:`run` performs them)."""
        return Pipeline(self.config, self.retry_policy, self.log)

    @cached_property
    def _tokens(self) -> TokenKeeper:
        return TokenKeeper(self.config)

    @cached_property
    def session(self) -> requests.Session:
        """The hook's keep-alive session (retries are ours, not urllib3's)."""
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=self.pool_maxsize, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.headers.update(default_headers())
        session.verify = self.config.verify
        return session

    def get_conn(self) -> requests.Session:
        """The underlying session (authentication headers are added per request)."""
        return self.session

    def close(self) -> None:
        """Close pooled connections; the hook can be used again afterwards."""
        if "session" in self.__dict__:
            self.__dict__.pop("session").close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ----------------------------------------------------------------- public API
    def call_api(
        self,
        path: str,
        method: str | None = None,
        *,
        params: Mapping[str, object] | None = None,
        json: Json = None,
        data: bytes | str | Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        prefix: str = endpoints.API_PREFIX,
        idempotent: bool | None = None,
    ) -> Json:
        """Call ``{prefix}{path}`` and return the parsed JSON (``{}`` for an empty body).

        ``idempotent=None`` retries GET/HEAD/PUT/DELETE but not POST; pass ``True`` for a POST that is
        safe to resend. Error statuses raise :class:`CarolApiError` (``CarolAuthError`` for 401/403).
        """
        call = Call(path, method, params, json, data, headers, prefix, idempotent)
        return self.run(self.pipeline.call(call))

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, object] | None = None,
        json: Json = None,
        data: bytes | str | Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        prefix: str = endpoints.API_PREFIX,
        idempotent: bool | None = None,
        authenticate: bool = True,
        retry_statuses: frozenset[int] = RETRYABLE_STATUSES,
    ) -> requests.Response:
        """Send one logical request (retries, one re-auth on 401) and return the 2xx ``requests.Response``.

        ``retry_statuses`` are the statuses a resendable request is retried on.
        """
        call = Call(
            path, method, params, json, data, headers, prefix, idempotent, authenticate, retry_statuses
        )
        return cast(requests.Response, self.run(self.pipeline.request(call)).raw)

    def get_current(self) -> CarolContext:
        """The tenant and organization this connection lands in (ids and names)."""
        return self.run(get_context(self.config.org_level))

    @cached_property
    def current(self) -> CarolContext:
        """:meth:`get_current`, fetched once per hook."""
        return self.get_current()

    def test_connection(self) -> tuple[bool, str]:
        """Authenticate for real and read the current tenant; never raises (the UI's Test button)."""
        try:
            context = self.get_current()
        except Exception as exc:  # noqa: BLE001 - the UI wants a message, not a traceback
            return False, str(exc)
        return True, describe_context(context, self.config.auth_type)

    # ----------------------------------------------------------------- the driver
    def run(self, flow: Flow[T]) -> T:
        """Perform a flow's actions (HTTP with ``requests``, waits with ``time.sleep``); return its result."""
        result: object = None
        failure: Exception | None = None
        while True:
            try:
                action = flow.throw(failure) if failure is not None else flow.send(result)
            except StopIteration as stop:
                return cast(T, stop.value)
            result, failure = None, None
            try:
                result = self._perform(action)
            except Exception as exc:  # noqa: BLE001 - handed to the flow, which decides or re-raises
                failure = exc

    def _perform(self, action: Action) -> object:
        if isinstance(action, Send):
            return self._send(action.request)
        if isinstance(action, Sleep):
            time.sleep(action.seconds)
            return None
        if isinstance(action, Authenticate):
            return self._authenticate(action)
        if isinstance(action, Call):
            return self.run(self.pipeline.call(action))
        raise TypeError(f"{type(action).__name__} is performed by the async hook only (the triggerer's)")

    def _send(self, request: HttpRequest) -> HttpResponse:
        timeout = (min(10.0, self.config.timeout), self.config.timeout)
        try:
            response = self.session.request(
                request.method,
                request.url,
                params=request.params,  # type: ignore[arg-type]  # requests accepts any str()-able value
                data=request.body,
                headers=dict(request.headers),
                timeout=timeout,
                verify=self.config.verify,  # REQUESTS_CA_BUNDLE would beat session.verify
            )
        except requests.RequestException as exc:
            raise classify(exc) from exc
        return HttpResponse(response.status_code, response.headers, response.content, response.url, response)

    def _authenticate(self, action: Authenticate) -> Token | None:
        """The token to send, renewed first when needed; one renewal at a time across threads."""
        with self._token_lock:
            steps = self._tokens.renewal(action.stale, rejected=action.rejected)
            if steps is not None:
                token = self.run(self.pipeline.token(steps))
                mask_secret(token.access_token)
                if token.refresh_token:
                    mask_secret(token.refresh_token)
                self._tokens.token = token
            return self._tokens.token
