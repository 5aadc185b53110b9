"""Fault injection and the request log, applied by one pure-ASGI middleware.

A pure ASGI middleware (not ``BaseHTTPMiddleware``) keeps the per-request cost tiny, which matters for
the intake benchmark. Connection drops abort the uvicorn transport that carries the request.
"""

from __future__ import annotations

import asyncio
import fnmatch
import itertools
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field, fields
from typing import Any

import msgspec

from .errors import CarolError, error_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
ADMIN_PREFIX = "/__sandbox/"
DROP_MODES = ("before", "after")


@dataclass
class Fault:
    """Fail, slow down, hold or drop the next ``times`` requests whose path matches the glob ``path``."""

    fault_id: int
    path: str
    method: str | None = None
    status: int | None = None
    times: int = 1
    retry_after: str | None = None
    latency: float | None = None
    drop: str | None = None
    body: Any = None
    rate: float | None = None  # hit each matching request with this probability (seeded), up to ``times``
    seed: int = 0
    hold: bool = False  # wait until the test releases held requests (``FaultRegistry.release``), then go on
    _rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._rng.seed(self.seed)

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and fnmatch.fnmatchcase(path, self.path)

    def fires(self) -> bool:
        """False when a ``rate`` fault lets this matching request through (the draw is seeded)."""
        return self.rate is None or self._rng.random() < self.rate

    def to_json(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("fault_id", "_rng")}
        return {"id": self.fault_id, **values}


class FaultRegistry:
    """Pending faults, consumed first-match-first; used from the event loop only."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.faults: list[Fault] = []
        self.held = 0  # requests waiting on a hold fault right now
        self._released = asyncio.Event()

    def reset(self) -> None:
        self.faults.clear()
        self.release()

    def release(self) -> int:
        """Drop every hold fault and let the requests they hold go on; how many were held."""
        self.faults = [fault for fault in self.faults if not fault.hold]
        held, released = self.held, self._released
        self._released = asyncio.Event()
        released.set()
        return held

    async def wait_for_release(self) -> None:
        """Park a request until :meth:`release` (tests wait for ``held`` instead of sleeping)."""
        released = self._released
        self.held += 1
        try:
            await released.wait()
        finally:
            self.held -= 1

    def add(self, spec: dict[str, Any]) -> Fault:
        """Validate a fault spec (the admin API's JSON) and queue it."""
        path, times, drop = spec.get("path"), spec.get("times", 1), spec.get("drop")
        status, latency = spec.get("status"), spec.get("latency")
        if not isinstance(path, str) or not path.startswith("/"):
            raise CarolError(400, "path must be a glob starting with '/'", "path")
        if not isinstance(times, int) or times < 1:
            raise CarolError(400, "times must be an integer >= 1", "times")
        if drop is not None and drop not in DROP_MODES:
            raise CarolError(400, "drop must be 'before' or 'after'", "drop")
        if status is not None and (not isinstance(status, int) or not 100 <= status <= 599):
            raise CarolError(400, "status must be an HTTP status code", "status")
        if latency is not None and (not isinstance(latency, (int, float)) or latency < 0):
            raise CarolError(400, "latency must be a number of seconds >= 0", "latency")
        hold = spec.get("hold", False)
        if not isinstance(hold, bool):
            raise CarolError(400, "hold must be true or false", "hold")
        if status is None and drop is None and latency is None and not hold:
            raise CarolError(400, "a fault needs status, drop, latency or hold", "status")
        rate, seed = spec.get("rate"), spec.get("seed", 0)
        if rate is not None and (not isinstance(rate, (int, float)) or not 0 < rate <= 1):
            raise CarolError(400, "rate must be a probability in (0, 1]", "rate")
        if not isinstance(seed, int):
            raise CarolError(400, "seed must be an integer", "seed")
        method = spec.get("method")
        retry_after = spec.get("retry_after")
        fault = Fault(
            next(self._ids),
            path,
            method.upper() if method else None,
            status,
            times,
            None if retry_after is None else str(retry_after),
            latency,
            drop,
            spec.get("body"),
            None if rate is None else float(rate),
            seed,
            hold,
        )
        self.faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.matches(method, path) and fault.fires():
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return None


class RequestLog:
    """A bounded ring of (method, path, query, status, client) for every non-admin request.

    ``client`` is the ``host:port`` the request came from: one value per TCP connection, so a test can
    count the connections a client opened (keep-alive reuse shows as repeats).
    """

    def __init__(self, size: int = 200_000) -> None:
        self.entries: deque[tuple[float, str, str, str, int | None, str | None, str]] = deque(maxlen=size)
        self.in_flight = 0  # requests being handled right now (all on the server's one event loop)

    def add(self, scope: Scope, query: str, status: int | None, fault: str | None = None) -> None:
        client = scope.get("client") or ("", 0)
        peer = f"{client[0]}:{client[1]}"
        self.entries.append((time.time(), scope["method"], scope["path"], query, status, fault, peer))

    def to_json(self) -> list[dict[str, Any]]:
        return [
            {"time": t, "method": m, "path": p, "query": q, "status": s, "fault": f, "client": c}
            for t, m, p, q, s, f, c in list(self.entries)
        ]


def is_loopback(host: str | None) -> bool:
    """True for 127.0.0.0/8 and ::1 (also IPv4-mapped); the admin API refuses everyone else."""
    if not host:
        return False
    host = host.removeprefix("::ffff:")
    return host == "::1" or host.startswith("127.")


async def _drain(_message: Message) -> None:
    return None


class SandboxMiddleware:
    """Applies pending faults, then records the request (admin paths are neither faulted nor logged)."""

    def __init__(
        self, app: ASGIApp, faults: FaultRegistry, log: RequestLog, abort: Callable[[Scope], None]
    ) -> None:
        self.app, self.faults, self.log, self.abort = app, faults, log, abort

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        self.log.in_flight += 1  # tests wait for 0 instead of sleeping while a slowed request finishes
        try:
            fault = self.faults.take(scope["method"], scope["path"]) if self.faults.faults else None
            if fault is not None:
                await self._apply(fault, scope, receive, send)
                return
            await self._run_and_record(scope, receive, send, None)
        finally:
            self.log.in_flight -= 1

    async def _run_and_record(self, scope: Scope, receive: Receive, send: Send, fault: str | None) -> None:
        """Let the app answer, and log the request with the status it answered."""
        status: list[int | None] = [None]

        async def send_and_record(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        await self.app(scope, receive, send_and_record)
        query = scope["query_string"].decode("latin-1")
        self.log.add(scope, query, status[0], fault)

    async def _apply(self, fault: Fault, scope: Scope, receive: Receive, send: Send) -> None:
        query = scope["query_string"].decode("latin-1")
        if fault.hold:
            await self.faults.wait_for_release()
        if fault.latency:
            await asyncio.sleep(fault.latency)
        if fault.drop == "before":
            self.log.add(scope, query, None, "drop_before")
            self.abort(scope)
            return
        if fault.status is not None:
            await _send_fault(fault, send)
            self.log.add(scope, query, fault.status, "status")
            return
        if fault.drop == "after":
            await self.app(scope, receive, _drain)
            self.log.add(scope, query, None, "drop_after")
            self.abort(scope)
            return
        await self._run_and_record(scope, receive, send, "latency" if fault.latency else "hold")


async def _send_fault(fault: Fault, send: Send) -> None:
    body = fault.body
    if body is None:
        body = error_body(fault.status or 500, "Injected fault (sandbox)")
    raw = body.encode() if isinstance(body, str) else msgspec.json.encode(body)
    headers = [
        (b"content-type", b"text/plain" if isinstance(body, str) else b"application/json"),
        (b"content-length", str(len(raw)).encode()),
    ]
    if fault.retry_after is not None:
        headers.append((b"retry-after", fault.retry_after.encode()))
    await send({"type": "http.response.start", "status": fault.status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})
