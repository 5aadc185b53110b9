"""Where a sender's time goes, from urllib3's own DEBUG lines (both venvs have urllib3; stdlib only here).

urllib3 logs ``Starting new HTTPS connection (n): host:port`` before it connects and
``https://host:port "POST /path HTTP/1.1" 200 n`` once a response's headers are in. :class:`HttpTrace`
timestamps those lines in the sending process (no patching, nothing in the send path changes) and
:func:`summarise` turns them into phases: until the first new connection (for our hook that is the
up-front encoding; its first request reuses the connection ``get_current`` opened), until the first
intake response, the steady part, and the batch summary. Per-thread gaps between responses are the
request latencies, since every sender thread takes its next chunk at once.
"""

from __future__ import annotations

import itertools
import logging
import statistics
import threading
import time
from typing import Any


class HttpTrace(logging.Handler):
    """Collect ``(seconds since start, thread, kind, path)`` for urllib3's connection/response lines."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.events: list[tuple[float, str, str, str]] = []
        self.started = time.perf_counter()
        self._lock_events = threading.Lock()
        self.logger = logging.getLogger("urllib3.connectionpool")

    def __enter__(self) -> HttpTrace:
        self.saved = (self.logger.level, self.logger.propagate)
        self.logger.setLevel(logging.DEBUG)
        self.logger.propagate = False  # nothing reaches Airflow's or pycarol's handlers
        self.logger.addHandler(self)
        self.started = time.perf_counter()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.logger.removeHandler(self)
        self.logger.setLevel(self.saved[0])
        self.logger.propagate = self.saved[1]

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        at = time.perf_counter() - self.started
        if message.startswith("Starting new"):
            event = (at, record.threadName or "", "connect", "")
        elif '"' in message:
            request = message.split('"')[1].split()  # METHOD PATH VERSION
            path = request[1].split("?")[0] if len(request) > 1 else ""
            event = (at, record.threadName or "", "response", path)
        else:
            return
        with self._lock_events:
            self.events.append(event)


def summarise(events: list[tuple[float, str, str, str]], total_seconds: float) -> dict[str, Any]:
    """Phases (seconds from the start of the send), connections opened, request latencies."""
    connects = [at for at, _thread, kind, _path in events if kind == "connect"]
    intake = [(at, thread) for at, thread, kind, path in events if kind == "response" and "/intake/" in path]
    summary = [at for at, _t, kind, path in events if kind == "response" and path.endswith("/summary")]
    latencies: list[float] = []
    threads = sorted({thread for _at, thread in intake})
    for name in threads:
        times = sorted(at for at, thread in intake if thread == name)
        latencies += [later - earlier for earlier, later in itertools.pairwise(times)]
    return {
        "connections": len(connects),
        "first_connect_s": min(connects) if connects else None,
        "first_intake_response_s": min(at for at, _ in intake) if intake else None,
        "last_intake_response_s": max(at for at, _ in intake) if intake else None,
        "summary_response_s": max(summary) if summary else None,
        "total_s": total_seconds,
        "intake_requests": len(intake),
        "sending_threads": len(threads),
        "request_latency_median_s": statistics.median(latencies) if latencies else None,
        "request_latency_max_s": max(latencies) if latencies else None,
    }
