"""The asynchronous driver of the request pipeline: ``httpx.AsyncClient`` and the event loop.

It performs exactly the flows the sync hook performs (same URL building, auth, retries, error mapping);
only the I/O differs. The connection is read with common-compat's ``get_async_connection`` +
``get_async_extra_dejson`` (``aget_connection``/``aextra_dejson`` on 3.3.2+, the sync lookup in a worker
thread before): a sync lookup on the loop would block or deadlock the triggerer's event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections.abc import Mapping
from typing import cast

import httpx
from airflow.providers.common.compat.connection import get_async_connection, get_async_extra_dejson
from airflow.providers.common.compat.sdk import BaseHook
from typing_extensions import Self

from airflow_provider_carol import compat
from airflow_provider_carol.hooks.core import endpoints, sessions
from airflow_provider_carol.hooks.core.auth import Token
from airflow_provider_carol.hooks.core.config import CarolConnectionConfig, ConnectionView
from airflow_provider_carol.hooks.core.context import CarolContext, get_context
from airflow_provider_carol.hooks.core.retry import RetryPolicy
from airflow_provider_carol.hooks.core.transport import (
    Action,
    Authenticate,
    Call,
    Flow,
    Parallel,
    Pipeline,
    Send,
    Sleep,
    T,
)
from airflow_provider_carol.hooks.core.types import Json
from airflow_provider_carol.hooks.core.wire import HttpRequest, HttpResponse, classify, default_headers

#: Flows a :class:`~.transport.Parallel` action runs at once.
MAX_CONCURRENT_FLOWS = 8
#: Digests of the secrets this process already gave Airflow's masker (each is registered once, not once
#: per trigger: on the triggerer every registration is a round-trip to its supervisor).
_MASKED: set[str] = set()


async def _mask(secret: str | None) -> None:
    if not secret:
        return
    digest = hashlib.sha256(secret.encode()).hexdigest()
    if digest in _MASKED:
        return
    _MASKED.add(digest)  # before the await: hooks starting together register it once
    try:
        await compat.amask_secret(secret)
    except BaseException:
        _MASKED.discard(digest)
        raise


class CarolAsyncHookBase(BaseHook):
    """Connection, client, token and async flow driver for triggers; use as ``async with hook:``.

    The HTTP client, the token, the request gate and the poll scheduler are shared by every hook of the
    same connection on the same event loop (:mod:`~airflow_provider_carol.hooks.core.sessions`), so a
    triggerer with many deferred Carol tasks logs in once and keeps a handful of connections open.

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
        self.retry_policy = RetryPolicy(retry_limit, retry_delay, max_retry_wait)
        self.carol_conn_id = carol_conn_id
        self._config: CarolConnectionConfig | None = None
        self._pipeline: Pipeline | None = None
        self._session: sessions.SharedSession | None = None

    # ----------------------------------------------------------------- connection and client
    async def get_config(self) -> CarolConnectionConfig:
        """The validated connection, read with the async connection API (never the sync lookup)."""
        if self._config is None:
            conn = await get_async_connection(self.carol_conn_id)
            view = ConnectionView(
                conn_id=conn.conn_id or self.carol_conn_id,
                password=conn.password,
                login=conn.login,
                host=conn.host,
                port=conn.port,
                extra_dejson=await get_async_extra_dejson(conn),
            )
            config = CarolConnectionConfig.from_connection(view)
            await _mask(config.secret)
            await _mask(config.refresh_token)
            self._config = config
        return self._config

    async def get_pipeline(self) -> Pipeline:
        """The request flows of this connection."""
        if self._pipeline is None:
            self._pipeline = Pipeline(await self.get_config(), self.retry_policy, self.log)
        return self._pipeline

    async def get_session(self) -> sessions.SharedSession:
        """This hook's share of the loop's session for its connection (taken on first use)."""
        config = await self.get_config()
        if self._session is None:  # checked after the await: concurrent first uses take one share
            self._session = sessions.acquire(config, self._build_client)
        return self._session

    async def get_client(self) -> httpx.AsyncClient:
        """The keep-alive ``httpx.AsyncClient`` shared by this connection's hooks on this loop.

        Closed when the last hook sharing it is closed (:meth:`aclose`), not before.
        """
        return await (await self.get_session()).client()

    @staticmethod
    def _build_client(config: CarolConnectionConfig, limits: httpx.Limits) -> httpx.AsyncClient:
        verify: bool | ssl.SSLContext = (
            config.verify
            if isinstance(config.verify, bool)
            else ssl.create_default_context(cafile=config.verify)
        )
        return httpx.AsyncClient(
            verify=verify,
            timeout=httpx.Timeout(config.timeout, connect=min(10.0, config.timeout)),
            headers=default_headers(),
            limits=limits,
        )

    async def aclose(self) -> None:
        """Give back this hook's share of the client; the last hook closes the pooled connections.

        The hook can be used again afterwards (it takes a new share).
        """
        if self._session is not None:
            session, self._session = self._session, None
            await sessions.release(session)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # ----------------------------------------------------------------- public API
    async def call_api(
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
        """Call ``{prefix}{path}`` and return the parsed JSON, exactly like ``CarolHook.call_api``."""
        call = Call(path, method, params, json, data, headers, prefix, idempotent)
        return await self.run((await self.get_pipeline()).call(call))

    async def request(
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
    ) -> httpx.Response:
        """Send one logical request (retries, one re-auth on 401) and return the 2xx ``httpx.Response``."""
        call = Call(path, method, params, json, data, headers, prefix, idempotent, authenticate)
        response = await self.run((await self.get_pipeline()).request(call))
        return cast(httpx.Response, response.raw)

    async def get_current(self) -> CarolContext:
        """The tenant and organization this connection lands in, like ``CarolHook.get_current``."""
        return await self.run(get_context((await self.get_config()).org_level))

    # ----------------------------------------------------------------- the driver
    async def run(self, flow: Flow[T]) -> T:
        """Perform a flow's actions (HTTP with ``httpx``, pauses on the session's scheduler); its result."""
        result: object = None
        failure: Exception | None = None
        while True:
            try:
                action = flow.throw(failure) if failure is not None else flow.send(result)
            except StopIteration as stop:
                return cast(T, stop.value)
            result, failure = None, None
            try:
                result = await self._perform(action)
            except Exception as exc:  # noqa: BLE001 - handed to the flow, which decides or re-raises
                failure = exc

    async def _perform(self, action: Action) -> object:
        if isinstance(action, Send):
            return await self._send(action.request)
        if isinstance(action, Sleep):  # kept by the session's one scheduler, not a timer per wait
            await (await self.get_session()).scheduler.sleep(action.seconds)
            return None
        if isinstance(action, Authenticate):
            return await self._authenticate(action)
        if isinstance(action, Call):
            return await self.run((await self.get_pipeline()).call(action))
        if isinstance(action, Parallel):
            limit = asyncio.Semaphore(MAX_CONCURRENT_FLOWS)

            async def one(flow: Flow[object]) -> object:
                async with limit:
                    return await self.run(flow)

            return list(await asyncio.gather(*(one(flow) for flow in action.flows)))
        raise TypeError(f"unknown flow action {action!r}")

    async def _send(self, request: HttpRequest) -> HttpResponse:
        session = await self.get_session()
        http = await session.client()
        body = request.body
        content, form = (body, None) if body is None or isinstance(body, bytes) else (None, dict(body))
        try:
            async with session.slot():
                response = await http.request(
                    request.method,
                    request.url,
                    params=request.params,  # type: ignore[arg-type]  # httpx accepts any str()-able value
                    content=content,
                    data=form,
                    headers=dict(request.headers),
                )
        except httpx.HTTPError as exc:
            raise classify(exc) from exc
        return HttpResponse(
            response.status_code, response.headers, response.content, str(response.url), response
        )

    async def _authenticate(self, action: Authenticate) -> Token | None:
        """The token to send, renewed first when needed: one renewal at a time for every hook of the
        session, and a token another hook just renewed is used as it is."""
        session = await self.get_session()
        async with session.token_lock:
            steps = session.tokens.renewal(action.stale, rejected=action.rejected)
            if steps is not None:
                token = await self.run((await self.get_pipeline()).token(steps))
                await _mask(token.access_token)
                await _mask(token.refresh_token)
                session.tokens.token = token
            return session.tokens.token
