"""``CarolAsyncHook``: the triggerer's Carol client (``httpx.AsyncClient``), twin of ``CarolHook``.

It shares everything but the transport with the sync hook: the connection is validated by
``CarolConnectionConfig``, errors are mapped by ``client.error_for_response``, the retry decision uses
``client.RETRYABLE_STATUSES``/``retry_after_seconds``/``backoff_seconds``, and tokens come from the
sans-IO ``auth.obtain_token`` flow driven with ``await``. The connection is read with the async API
(``BaseHook.aget_connection`` + ``aextra_dejson``): a sync lookup would block or deadlock the event loop.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Generator, Mapping
from types import SimpleNamespace
from typing import Any

import httpx
from airflow.sdk import BaseHook
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from airflow_provider_carol.exceptions import CarolApiError, CarolAuthError
from airflow_provider_carol.hooks import client, endpoints
from airflow_provider_carol.hooks.auth import Token, TokenRequest, auth_headers, initial_token, obtain_token
from airflow_provider_carol.hooks.config import CarolConnectionConfig
from airflow_provider_carol.hooks.models import CarolTask, CarolTaskLogEntry
from airflow_provider_carol.hooks.tasks import task_from_answer

try:  # Airflow 3.3.2+: masking from the event loop without a blocking round-trip
    from airflow.sdk.log import amask_secret as _amask
except ImportError:  # pragma: no cover - older task SDKs
    _amask = None


async def _mask(secret: str | None) -> None:
    if not secret:
        return
    if _amask is not None:
        await _amask(secret)
    else:  # pragma: no cover
        from airflow.sdk.log import mask_secret

        mask_secret(secret)


class CarolAsyncHook(BaseHook):
    """Async Carol client for triggers; use as ``async with CarolAsyncHook(conn_id) as hook:``.

    :param carol_conn_id: the ``carol`` connection.
    :param retry_limit: retries of a retryable failure (same policy as ``CarolHook``).
    :param retry_delay: base of the exponential backoff (full jitter), seconds.
    :param max_retry_wait: cap on any single wait, including ``Retry-After``.
    """

    conn_name_attr = "carol_conn_id"
    default_conn_name = "carol_default"
    conn_type = "carol"
    hook_name = "TOTVS Carol (async)"

    def __init__(
        self,
        carol_conn_id: str = default_conn_name,
        *,
        retry_limit: int = 5,
        retry_delay: float = 0.5,
        max_retry_wait: float = 60.0,
    ) -> None:
        super().__init__()
        client.check_retry_settings(retry_limit, retry_delay, max_retry_wait)
        self.carol_conn_id = carol_conn_id
        self.retry_limit = retry_limit
        self.retry_delay = retry_delay
        self.max_retry_wait = max_retry_wait
        self._config: CarolConnectionConfig | None = None
        self._client: httpx.AsyncClient | None = None
        self._token: Token | None = None
        self._token_lock = asyncio.Lock()

    # ----------------------------------------------------------------- connection and client
    async def get_config(self) -> CarolConnectionConfig:
        """The validated connection, read with the async connection API (never the sync lookup)."""
        if self._config is None:
            conn = await BaseHook.aget_connection(self.carol_conn_id)
            extras = await conn.aextra_dejson()
            view = SimpleNamespace(
                conn_id=conn.conn_id or self.carol_conn_id,
                extra_dejson=extras,
                password=conn.password,
                login=conn.login,
                host=conn.host,
                port=conn.port,
            )
            config = CarolConnectionConfig.from_connection(view)
            await _mask(config.secret)
            await _mask(config.refresh_token)
            self._config = config
        return self._config

    async def get_client(self) -> httpx.AsyncClient:
        """The hook's keep-alive ``httpx.AsyncClient`` (created on first use; closed by :meth:`aclose`)."""
        if self._client is None:
            config = await self.get_config()
            # Loading CA certificates is blocking file I/O: keep it off the event loop.
            self._client = await asyncio.to_thread(self._build_client, config)
        return self._client

    @staticmethod
    def _build_client(config: CarolConnectionConfig) -> httpx.AsyncClient:
        verify: bool | ssl.SSLContext = (
            config.verify
            if isinstance(config.verify, bool)
            else (ssl.create_default_context(cafile=config.verify))
        )
        return httpx.AsyncClient(
            verify=verify,
            timeout=httpx.Timeout(config.timeout, connect=min(10.0, config.timeout)),
            headers=client.default_headers(),
        )

    async def aclose(self) -> None:
        """Close the pooled connections; the hook can be used again afterwards."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> CarolAsyncHook:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # ----------------------------------------------------------------- public API
    async def call_api(
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
        """Call ``{prefix}{path}`` and return the parsed JSON, exactly like ``CarolHook.call_api``."""
        method = (method or client.default_method(json, data)).upper()
        response = await self.request(
            method,
            path,
            params=params,
            json=json,
            data=data,
            headers=headers,
            prefix=prefix,
            idempotent=idempotent,
        )
        return client.parse_json_body(response.content, method, response.url.path)

    async def request(
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
    ) -> httpx.Response:
        """Send one logical request (retries, one re-auth on 401) and return the 2xx response."""
        config = await self.get_config()
        method = method.upper()
        url = client.join_url(config.base_url, prefix, path)
        body, content_headers = client.encode_body(json, data, method, path)
        extra = {**content_headers, **(headers or {})}
        token = await self._valid_token() if authenticate else None
        auth = auth_headers(config, token) if authenticate else {}
        response = await self._send(method, url, params, body, {**extra, **auth}, idempotent)
        if response.status_code == 401 and authenticate and config.auth_type != "api_key":
            token = await self._renew_token(stale=token)
            response = await self._send(
                method, url, params, body, {**extra, **auth_headers(config, token)}, idempotent
            )
        if response.status_code >= 400:
            raise client.error_for_response(response.status_code, response.content, method, response.url.path)
        error = client.error_in_body(response.status_code, response.content, method, response.url.path)
        if error is not None:
            raise error
        return response

    async def get_task(self, task_id: str) -> CarolTask:
        """The task's current state, like ``CarolHook.get_task``."""
        body = await self.call_api(endpoints.TASK_GET.path(task_id=task_id))
        return task_from_answer(body, task_id, "GET")

    async def cancel_task(self, task_id: str, *, force: bool = False) -> CarolTask:
        """Ask Carol to cancel the task, like ``CarolHook.cancel_task`` (safe to resend)."""
        body = await self.call_api(
            endpoints.TASK_CANCEL.path(task_id=task_id),
            "POST",
            params={"force": "true" if force else "false"},
            idempotent=True,
        )
        if isinstance(body, dict) and body.get("mdmTaskStatus"):
            return task_from_answer(body, task_id, "cancel")
        return await self.get_task(task_id)

    async def get_task_logs(self, task_id: str) -> list[CarolTaskLogEntry]:
        """The task's Carol log lines, oldest first."""
        body = await self.call_api(endpoints.TASK_LOGS_GET.path(task_id=task_id))
        if isinstance(body, dict):
            body = body.get("hits") or body.get("logs") or []
        return [CarolTaskLogEntry.from_api(item) for item in body if isinstance(item, dict)]

    # ----------------------------------------------------------------- authentication
    async def _valid_token(self) -> Token | None:
        config = await self.get_config()
        if config.auth_type == "api_key":
            return None
        async with self._token_lock:
            if self._token is None:
                self._token = initial_token(config) or await self._drive(obtain_token(config, None))
            elif self._token.needs_renewal():
                self._token = await self._drive(obtain_token(config, self._token))
            return self._token

    async def _renew_token(self, stale: Token | None) -> Token:
        config = await self.get_config()
        async with self._token_lock:
            if self._token is not None and self._token is not stale:
                return self._token
            self._token = await self._drive(obtain_token(config, stale))
            return self._token

    async def _drive(self, flow: Generator[TokenRequest, Any, Token]) -> Token:
        """Run the shared auth flow's token requests with ``await``."""
        try:
            request = next(flow)
            while True:
                try:
                    answer = await self._token_call(request)
                except CarolAuthError as exc:
                    request = flow.throw(exc)
                else:
                    request = flow.send(answer)
        except StopIteration as stop:
            token: Token = stop.value
            await _mask(token.access_token)
            await _mask(token.refresh_token)
            return token

    async def _token_call(self, request: TokenRequest) -> Any:
        try:
            response = await self.request(
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
        return client.parse_json_body(response.content, "POST", response.url.path)

    # ----------------------------------------------------------------- transport
    async def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        body: Any,
        headers: dict[str, str],
        idempotent: bool | None,
    ) -> httpx.Response:
        """One HTTP exchange under the shared retry policy; transport failures raise CarolConnectionError."""
        http = await self.get_client()
        retryable = client.is_idempotent(method, idempotent)
        content, form = (body, None) if isinstance(body, (bytes, str)) or body is None else (None, body)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.retry_limit + 1),
            wait=self._wait,
            retry=retry_if_exception(lambda exc: self._should_retry(exc, retryable)),
            before_sleep=lambda state: self._log_retry(state, method, url),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    response = await http.request(
                        method, url, params=_params(params), content=content, data=form, headers=headers
                    )
                    if retryable and response.status_code in client.RETRYABLE_STATUSES:
                        raise client.RetryableResponse(response)
                    return response
        except client.RetryableResponse as exhausted:
            return exhausted.response
        except httpx.HTTPError as exc:
            config = await self.get_config()
            raise client.connection_error(exc, method, url, verify=config.verify) from exc
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    @staticmethod
    def _should_retry(exc: BaseException, retryable: bool) -> bool:
        """Same decision as the sync hook: unsent requests always, sent ones only when idempotent."""
        if isinstance(exc, client.RetryableResponse):
            return True
        if not isinstance(exc, httpx.TransportError) or client.is_certificate_error(exc):
            return False
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
            return True  # nothing reached Carol
        return retryable

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return client.retry_wait(
            exc, state.attempt_number, base=self.retry_delay, max_wait=self.max_retry_wait
        )

    def _log_retry(self, state: RetryCallState, method: str, url: str) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        self.log.warning(
            "Carol %s %s: %s: %s; retry %d of %d in %.1f s",
            method,
            httpx.URL(url).path,
            type(exc).__name__,
            exc,
            state.attempt_number,
            self.retry_limit,
            wait,
        )


def _params(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Drop ``None`` values, as ``requests`` does, so both hooks send the same query string."""
    if params is None:
        return None
    return {key: value for key, value in params.items() if value is not None}
