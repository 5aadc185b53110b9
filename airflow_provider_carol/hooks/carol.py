"""``CarolHook``: one authenticated, keep-alive HTTP client for a ``carol`` connection.

The connection is read on first use (never at DAG parse). One ``requests.Session`` per hook; retries
with backoff and jitter on connection errors, 429 and 5xx for idempotent requests only, honouring
``Retry-After`` up to a cap; a 401 triggers exactly one re-authentication and a resend.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Mapping
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

import requests
from airflow.sdk import BaseHook
from airflow.sdk.log import mask_secret
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from airflow_provider_carol.exceptions import CarolApiError, CarolAuthError
from airflow_provider_carol.hooks import client, endpoints
from airflow_provider_carol.hooks.apps import AppsHookMixin
from airflow_provider_carol.hooks.auth import (
    Token,
    TokenRequest,
    auth_headers,
    initial_token,
    obtain_token,
)
from airflow_provider_carol.hooks.bigquery import BigQueryHookMixin
from airflow_provider_carol.hooks.config import CarolConnectionConfig
from airflow_provider_carol.hooks.models import CarolContext
from airflow_provider_carol.hooks.staging import StagingHookMixin
from airflow_provider_carol.hooks.tasks import TasksHookMixin


def _nothing_was_sent(exc: BaseException) -> bool:
    """True for failures that happen before the request leaves (connect timeout, connection refused)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    seen: BaseException | None = exc
    while seen is not None:
        if type(seen).__name__ in ("NewConnectionError", "ConnectionRefusedError", "NameResolutionError"):
            return True
        seen = seen.__cause__ or seen.__context__ or getattr(seen, "reason", None)
        if not isinstance(seen, BaseException):
            seen = None
    return False


class CarolHook(StagingHookMixin, TasksHookMixin, AppsHookMixin, BigQueryHookMixin, BaseHook):
    """Talk to the Carol REST API with any auth mode of a ``carol`` connection.

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
        client.check_retry_settings(retry_limit, retry_delay, max_retry_wait)
        self.carol_conn_id = carol_conn_id
        self.retry_limit = retry_limit
        self.retry_delay = retry_delay
        self.max_retry_wait = max_retry_wait
        self.pool_maxsize = pool_maxsize
        self._token: Token | None = None
        self._token_lock = threading.Lock()

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
    def session(self) -> requests.Session:
        """The hook's keep-alive session (retries are ours, not urllib3's)."""
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=self.pool_maxsize, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.headers.update(client.default_headers())
        session.verify = self.config.verify
        return session

    def get_conn(self) -> requests.Session:
        """The underlying session (authentication headers are added per request by :meth:`request`)."""
        return self.session

    def close(self) -> None:
        """Close pooled connections; the hook can be used again afterwards."""
        if "session" in self.__dict__:
            self.__dict__.pop("session").close()

    def __enter__(self) -> CarolHook:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ----------------------------------------------------------------- public API
    def call_api(
        self,
        path: str,
        method: str | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        prefix: str = endpoints.API_PREFIX,
        idempotent: bool | None = None,
    ) -> Any:
        """Call ``{prefix}{path}`` and return the parsed JSON (``{}`` for an empty body).

        ``idempotent=None`` retries GET/HEAD/PUT/DELETE but not POST; pass ``True`` for a POST that is
        safe to resend. Error statuses raise :class:`CarolApiError` (``CarolAuthError`` for 401/403).
        """
        method = (method or client.default_method(json, data)).upper()
        response = self.request(
            method,
            path,
            params=params,
            json=json,
            data=data,
            headers=headers,
            prefix=prefix,
            idempotent=idempotent,
        )
        return client.parse_json_body(response.content, method, urlsplit(response.url).path)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        prefix: str = endpoints.API_PREFIX,
        idempotent: bool | None = None,
        authenticate: bool = True,
    ) -> requests.Response:
        """Send one logical request (retries, one re-auth on 401) and return the 2xx response."""
        method = method.upper()
        url = client.join_url(self.config.base_url, prefix, path)
        body, content_headers = client.encode_body(json, data, method, path)
        extra = {**content_headers, **(headers or {})}
        token = self._valid_token() if authenticate else None
        response = self._send(
            method, url, params, body, {**extra, **self._auth(token, authenticate)}, idempotent
        )
        if response.status_code == 401 and authenticate and self.config.auth_type != "api_key":
            token = self._renew_token(stale=token)
            response = self._send(method, url, params, body, {**extra, **self._auth(token, True)}, idempotent)
        if response.status_code >= 400:
            raise client.error_for_response(
                response.status_code, response.content, method, urlsplit(url).path
            )
        error = client.error_in_body(response.status_code, response.content, method, urlsplit(url).path)
        if error is not None:
            raise error
        return response

    def get_current(self) -> CarolContext:
        """The tenant and organization this connection lands in (ids and names)."""
        tenant = self.call_api(endpoints.TENANT_CURRENT.path())
        org = self.call_api(endpoints.ORGANIZATION_CURRENT.path())
        return CarolContext(
            tenant_id=tenant.get("mdmId"),
            tenant_name=tenant.get("mdmName"),
            org_id=org.get("mdmId"),
            org_name=org.get("mdmName"),
            org_level=not tenant.get("mdmName"),
        )

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
        where = "at organization level" if context.org_level else f"to tenant {context.tenant_name!r}"
        return True, (
            f"Connected {where} of organization {context.org_name!r} "
            f"with auth_type {self.config.auth_type!r}."
        )

    # ----------------------------------------------------------------- authentication
    def _auth(self, token: Token | None, authenticate: bool) -> dict[str, str]:
        return auth_headers(self.config, token) if authenticate else {}

    def _valid_token(self) -> Token | None:
        """The current token, logging in or refreshing first when needed (thread-safe)."""
        if self.config.auth_type == "api_key":
            return None
        with self._token_lock:
            if self._token is None:
                self._token = initial_token(self.config) or self._drive(obtain_token(self.config, None))
                self._mask(self._token)
            elif self._token.needs_renewal():
                self._token = self._drive(obtain_token(self.config, self._token))
            return self._token

    def _renew_token(self, stale: Token | None) -> Token:
        """Re-authenticate after a 401, unless another thread already replaced ``stale``."""
        with self._token_lock:
            if self._token is not None and self._token is not stale:
                return self._token
            self._token = self._drive(obtain_token(self.config, stale))
            return self._token

    def _drive(self, flow: Generator[TokenRequest, Any, Token]) -> Token:
        """Run the auth flow's token requests with this hook's transport."""
        try:
            request = next(flow)
            while True:
                try:
                    answer = self._token_call(request)
                except CarolAuthError as exc:
                    request = flow.throw(exc)
                else:
                    request = flow.send(answer)
        except StopIteration as stop:
            token: Token = stop.value
            self._mask(token)
            return token

    def _token_call(self, request: TokenRequest) -> Any:
        try:
            response = self.request(
                request.endpoint.method,
                request.endpoint.path(),
                data=request.form,
                headers=request.headers,
                prefix=request.endpoint.prefix,
                idempotent=True,
                authenticate=False,
            )
        except CarolApiError as exc:
            refused = client.refused_grant(exc, request.purpose)
            if refused is exc:
                raise
            raise refused from exc
        return client.parse_json_body(response.content, "POST", urlsplit(response.url).path)

    @staticmethod
    def _mask(token: Token | None) -> None:
        if token is not None:
            mask_secret(token.access_token)
            if token.refresh_token:
                mask_secret(token.refresh_token)

    # ----------------------------------------------------------------- transport
    def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        body: Any,
        headers: dict[str, str],
        idempotent: bool | None,
    ) -> requests.Response:
        """One HTTP exchange with the retry policy; returns the last response, raises on transport failure."""
        retryable = client.is_idempotent(method, idempotent)
        timeout = (min(10.0, self.config.timeout), self.config.timeout)
        retrying = Retrying(
            stop=stop_after_attempt(self.retry_limit + 1),
            wait=self._wait,
            retry=retry_if_exception(lambda exc: self._should_retry(exc, retryable)),
            before_sleep=lambda state: self._log_retry(state, method, url),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    response = self.session.request(
                        method,
                        url,
                        params=params,
                        data=body,
                        headers=headers,
                        timeout=timeout,
                        verify=self.config.verify,  # REQUESTS_CA_BUNDLE would beat session.verify
                    )
                    if retryable and response.status_code in client.RETRYABLE_STATUSES:
                        raise client.RetryableResponse(response)
                    return response
        except client.RetryableResponse as exhausted:
            return exhausted.response
        except requests.RequestException as exc:
            raise client.connection_error(exc, method, url.split("?")[0], verify=self.config.verify) from exc
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    @staticmethod
    def _should_retry(exc: BaseException, retryable: bool) -> bool:
        if isinstance(exc, client.RetryableResponse):
            return True
        if client.is_certificate_error(exc):
            return False
        if _nothing_was_sent(exc):
            return True
        return retryable and isinstance(exc, (requests.ConnectionError, requests.Timeout))

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return client.retry_wait(
            exc, state.attempt_number, base=self.retry_delay, max_wait=self.max_retry_wait
        )

    def _log_retry(self, state: RetryCallState, method: str, url: str) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        self.log.warning(
            "Carol %s %s: %s; retry %d of %d in %.1f s",
            method,
            urlsplit(url).path,
            exc,
            state.attempt_number,
            self.retry_limit,
            wait,
        )
