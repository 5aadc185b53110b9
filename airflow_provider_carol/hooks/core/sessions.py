"""One HTTP client, token, request gate and poll scheduler per Carol connection and event loop.

A triggerer runs every deferred Carol sensor and operator on one event loop. Each trigger builds its own
``CarolAsyncHook``; if each hook also built its own ``httpx.AsyncClient`` and logged in on its own, N
deferred sensors would mean N TLS contexts and connection pools, N logins, and N refresh-token renewals
racing when the token expires (Carol rotates refresh tokens, so all but one would fail). Hooks of the same
connection on the same loop therefore share one :class:`SharedSession`:

* **keyed** by the running loop and the connection's validated settings (a digest that includes its
  secrets, so a rotated password gets a session of its own and the key itself reveals nothing); an
  ``httpx.AsyncClient`` belongs to the loop it first ran on, so loops never share;
* **refcounted**: a hook takes a share on first use and gives it back in ``aclose()``; the last share
  closes the client and drops the session, so nothing outlives the triggers that used it;
* **gated**: at most :data:`MAX_IN_FLIGHT` requests are on the wire at once (the pool holds as many
  connections), the rest wait their turn in order. The wait is not part of any request timeout;
* **scheduled**: the pauses of every wait on the session are kept by one
  :class:`~airflow_provider_carol.hooks.core.scheduler.PollScheduler` (one timer, due order), not by
  a timer per wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import weakref
from collections.abc import AsyncIterator, Callable

import httpx

from airflow_provider_carol.hooks.core.auth import TokenKeeper
from airflow_provider_carol.hooks.core.config import CarolConnectionConfig
from airflow_provider_carol.hooks.core.scheduler import PollScheduler

#: Requests one connection's shared session has on the wire at once (and connections it keeps open).
MAX_IN_FLIGHT = 10

ClientFactory = Callable[[CarolConnectionConfig, httpx.Limits], httpx.AsyncClient]
_SESSIONS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, SharedSession]] = (
    weakref.WeakKeyDictionary()
)


def session_key(config: CarolConnectionConfig) -> str:
    """A digest of every setting of the connection, secrets included (never the secrets themselves)."""
    values = json.dumps(dataclasses.astuple(config), default=str)
    return hashlib.sha256(values.encode()).hexdigest()


class SharedSession:
    """What the async hooks of one connection share on one loop: client, token, gate, scheduler, users."""

    def __init__(
        self, key: str, config: CarolConnectionConfig, build: ClientFactory, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.key = key
        #: Weak, so an unclosed session does not keep its loop (the registry's key) alive.
        self.loop = weakref.ref(loop)
        self.config = config
        self.tokens = TokenKeeper(config)
        #: One token renewal at a time for every hook of the session.
        self.token_lock = asyncio.Lock()
        self.users = 0
        self.scheduler = PollScheduler()
        self._gate = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._waiting = 0
        self._build = build
        self._client: httpx.AsyncClient | None = None
        self._client_lock = asyncio.Lock()

    @property
    def waiting(self) -> int:
        """Requests waiting for a free slot of the gate right now."""
        return self._waiting

    async def client(self) -> httpx.AsyncClient:
        """The shared client, built once (in a thread: loading CA certificates is blocking file I/O)."""
        if self._client is None:
            async with self._client_lock:
                if self._client is None:
                    limits = httpx.Limits(
                        max_connections=MAX_IN_FLIGHT, max_keepalive_connections=MAX_IN_FLIGHT
                    )
                    self._client = await asyncio.to_thread(self._build, self.config, limits)
        return self._client

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the gate's :data:`MAX_IN_FLIGHT` places for one request; waiters go in order."""
        self._waiting += 1
        try:
            await self._gate.acquire()
        finally:
            self._waiting -= 1
        try:
            yield
        finally:
            self._gate.release()

    async def aclose(self) -> None:
        """Close the client (its pooled connections); called by :func:`release` for the last user."""
        self.scheduler.close()
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()


def acquire(config: CarolConnectionConfig, build: ClientFactory) -> SharedSession:
    """Take a share of the running loop's session for ``config`` (created on first use)."""
    loop = asyncio.get_running_loop()
    sessions = _SESSIONS.setdefault(loop, {})
    key = session_key(config)
    session = sessions.get(key)
    if session is None:
        session = sessions[key] = SharedSession(key, config, build, loop)
    session.users += 1
    return session


async def release(session: SharedSession) -> None:
    """Give a share back; the last one closes the client and forgets the session."""
    session.users -= 1
    if session.users > 0:
        return
    loop = session.loop()  # the loop it was made on, wherever the last user closes
    sessions = _SESSIONS.get(loop, {}) if loop is not None else {}
    if sessions.get(session.key) is session:
        del sessions[session.key]
    await session.aclose()


def open_sessions(loop: asyncio.AbstractEventLoop | None = None) -> list[SharedSession]:
    """The sessions of ``loop`` (default: the running one), for tests and diagnostics."""
    return list(_SESSIONS.get(loop or asyncio.get_running_loop(), {}).values())
