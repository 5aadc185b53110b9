"""A bounded queue of log lines shipped to Carol long tasks in batches, from one background thread.

Shared by :class:`~airflow_provider_carol.log.handler.CarolLogHandler` (stdlib logging) and
:class:`~airflow_provider_carol.log.remote.CarolRemoteLogIO` (Airflow task logs). The caller only appends
to a deque: no lock on the common path, no network, no exception. Batches go out as one
``POST v1/tasks/{id}/logs`` each, which is never resent once it may have reached Carol (a resend could
duplicate lines); a failed batch is dropped, counted and reported once in the local log.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from airflow_provider_carol.hooks.core.redaction import redact_text

if TYPE_CHECKING:
    from airflow_provider_carol.hooks.carol import CarolHook

#: Longest message sent as is; longer ones are cut (Carol stores each line as one document).
MAX_MESSAGE_CHARS = 32_000
_TRUNCATED = " ... [truncated by airflow-provider-carol]"

#: Local (never shipped) logger for the bridge's own reports.
local_log = logging.getLogger("airflow_provider_carol.log")


def _clip(message: str) -> str:
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    return message[: MAX_MESSAGE_CHARS - len(_TRUNCATED)] + _TRUNCATED


class LogShipper:
    """Queue ``(carol_task_id, level, message)`` entries and POST them in batches from a daemon thread.

    :param hook_factory: builds the :class:`~airflow_provider_carol.hooks.carol.CarolHook` to send with;
        called lazily in the shipping thread, so constructing a shipper does no I/O.
    :param batch_size: most lines per POST; a full batch wakes the thread at once.
    :param flush_interval: seconds a line may wait before it is sent.
    :param max_queue: most lines held; further lines are dropped and counted (never blocks the caller).
    :param max_batch_bytes: approximate cap on one POST's payload.
    :param on_failed: called (in the shipping thread) with the entries of a batch that could not be sent.
    """

    def __init__(
        self,
        hook_factory: Callable[[], CarolHook],
        *,
        batch_size: int = 500,
        flush_interval: float = 2.0,
        max_queue: int = 50_000,
        max_batch_bytes: int = 1_000_000,
        on_failed: Callable[[list[tuple[str, str, str]]], None] | None = None,
        name: str = "carol-log-shipper",
    ) -> None:
        if batch_size < 1 or max_queue < 1 or flush_interval <= 0 or max_batch_bytes < 1:
            raise ValueError(
                "batch_size, max_queue and max_batch_bytes must be >= 1 and flush_interval > 0 "
                f"(got {batch_size}, {max_queue}, {max_batch_bytes}, {flush_interval})."
            )
        self._hook_factory = hook_factory
        self._hook: CarolHook | None = None
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_queue = max_queue
        self.max_batch_bytes = max_batch_bytes
        self._on_failed = on_failed
        self._name = name
        self._queue: deque[tuple[str, str, str]] = deque()
        self._wake = threading.Event()
        self._idle = threading.Condition()
        self._in_flight = 0
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._start_lock = threading.Lock()
        self._stopping = False
        self.dropped = 0
        self._dropped_reported = 0
        self.failed = 0
        self.sent = 0
        self.requests = 0
        self._failure_reported = False
        _ALL.add(self)

    # ------------------------------------------------------------------------------- caller side
    def put(self, carol_task_id: str, level: str, message: str) -> bool:
        """Queue one line (O(1), no lock, no I/O); False (and counted) when the queue is full."""
        queue = self._queue
        if len(queue) >= self.max_queue:
            self.dropped += 1
            return False
        queue.append((carol_task_id, level, message))
        if self._thread is None or self._stopping:
            self._start()
        if len(queue) >= self.batch_size and not self._wake.is_set():
            self._wake.set()
        return True

    @property
    def shipping_thread_id(self) -> int | None:
        """Ident of the shipping thread: lines logged from it (the hook's own logs) are never shipped."""
        thread = self._thread
        return thread.ident if thread is not None else None

    def prepare(self) -> CarolHook:
        """Build the hook and read its connection now (no request): for callers that must resolve the
        connection while it is available (Airflow's supervisor exports it only around some calls)."""
        if self._hook is None:
            hook = self._hook_factory()
            _ = hook.config
            self._hook = hook
        return self._hook

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Send everything queued so far; True when the queue drained within ``timeout`` seconds."""
        if threading.get_ident() == self.shipping_thread_id:
            return not self._queue  # e.g. logging.shutdown() run by an import inside our own send
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._thread is None or self._stopping or self._pid != os.getpid():
            if not self._queue:
                return True
            self._start()
        self._wake.set()
        with self._idle:
            while self._queue or self._in_flight:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._idle.wait(0.05 if remaining is None else min(0.05, remaining))
                self._wake.set()
        return True

    def close(self, timeout: float | None = 10.0) -> None:
        """Flush (bounded by ``timeout``), stop the thread and report anything left unsent.

        A line queued after ``close`` starts the thread again (like a stdlib handler reopening its
        stream): ``logging.config.dictConfig`` closes every handler it replaces, even ones still in use.
        """
        if self._thread is None or self._stopping:
            return
        if threading.get_ident() == self.shipping_thread_id:
            return
        drained = self.flush(timeout)
        self._stopping = True
        self._wake.set()
        left = len(self._queue)
        if not drained and left:
            local_log.warning(
                "Carol log shipping: %d log line(s) were still queued after %.0f s at close and are not "
                "sent to Carol (they remain in the local log).",
                left,
                timeout or 0,
            )
        self._report_drops()
        hook, self._hook = self._hook, None
        if hook is not None and hasattr(hook, "close"):
            try:
                hook.close()
            except Exception:  # noqa: BLE001 - closing sockets must not raise into a caller's shutdown
                local_log.debug("Carol log shipping: closing the hook failed", exc_info=True)

    # ------------------------------------------------------------------------------- shipping thread
    def _start(self) -> None:
        with self._start_lock:
            if self._thread is not None and not self._stopping and self._pid == os.getpid():
                return
            if self._thread is not None and self._stopping and self._pid == os.getpid():
                self._thread.join(1.0)  # let a stopping thread finish its last round first
            self._stopping = False
            if self._pid != os.getpid():  # forked: the parent's thread and locks do not exist here
                self._pid = os.getpid()
                self._idle = threading.Condition()
                self._wake = threading.Event()
                self._in_flight = 0
                self._hook = None
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()
            _LIVE.add(self)
            _register_atexit()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            self._drain()
            with self._idle:
                self._idle.notify_all()
            if self._stopping:
                return

    def _drain(self) -> None:
        while self._queue:
            batch = self._take_batch()
            if not batch:
                return
            try:
                self._send(batch)
            finally:
                with self._idle:
                    self._in_flight = 0
                    self._idle.notify_all()

    def _take_batch(self) -> list[tuple[str, str, str]]:
        """Up to ``batch_size`` consecutive lines for the same Carol task (order is kept)."""
        queue, size = self._queue, 0
        batch: list[tuple[str, str, str]] = []
        with self._idle:
            while queue and len(batch) < self.batch_size:
                entry = queue[0]
                if batch and (entry[0] != batch[0][0] or size + len(entry[2]) > self.max_batch_bytes):
                    break
                batch.append(queue.popleft())
                size += len(entry[2]) + 64
            self._in_flight = len(batch)
        return batch

    def _send(self, batch: list[tuple[str, str, str]]) -> None:
        task_id = batch[0][0]
        body = [
            {"mdmTaskId": task_id, "mdmLogMessage": _clip(redact_text(message)), "mdmLogLevel": level}
            for _, level, message in batch
        ]
        try:
            hook = self.prepare()
            from airflow_provider_carol.hooks.tasks.methods import post_task_logs  # the hook is loaded

            hook.run(post_task_logs(task_id, body))  # never resent once Carol may have stored the lines
        except Exception as exc:  # noqa: BLE001 - shipping must never fail the program that logs
            self.failed += len(batch)
            self._report_failure(task_id, len(batch), exc)
            if self._on_failed is not None:
                try:
                    self._on_failed(batch)
                except Exception:  # noqa: BLE001
                    local_log.debug("Carol log shipping: on_failed callback failed", exc_info=True)
        else:
            self.sent += len(batch)
            self.requests += 1
            self._report_drops()

    def _report_failure(self, task_id: str, count: int, exc: BaseException) -> None:
        if self._failure_reported:
            return
        self._failure_reported = True
        local_log.warning(
            "Carol log shipping failed: %d line(s) for Carol task %s were not sent (%s: %s). Later "
            "failures are counted, not reported again; the lines stay in the local log.",
            count,
            task_id,
            type(exc).__name__,
            exc,
        )

    def _report_drops(self) -> None:
        dropped = self.dropped
        if dropped > self._dropped_reported:
            local_log.warning(
                "Carol log shipping: %d log line(s) dropped because the queue was full (max_queue=%d).",
                dropped - self._dropped_reported,
                self.max_queue,
            )
            self._dropped_reported = dropped

    def stats(self) -> dict[str, int]:
        """Counters: lines sent, dropped (queue full), failed (batch refused or unreachable), requests."""
        return {"sent": self.sent, "dropped": self.dropped, "failed": self.failed, "requests": self.requests}


_LIVE: weakref.WeakSet[LogShipper] = weakref.WeakSet()
_ALL: weakref.WeakSet[LogShipper] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """A forked child (an Airflow task process) has none of the parent's threads: start afresh on use."""
    for shipper in list(_ALL):
        shipper._thread = None


os.register_at_fork(after_in_child=_after_fork_in_child)


def flush_all(timeout: float = 10.0, shippers: Iterable[LogShipper] | None = None) -> None:
    """Flush every live shipper (registered with :mod:`atexit`, so a normal exit loses nothing)."""
    for shipper in list(shippers if shippers is not None else _LIVE):
        try:
            shipper.close(timeout)
        except Exception:  # noqa: BLE001 - never raise at interpreter exit
            local_log.debug("Carol log shipping: flush at exit failed", exc_info=True)


_atexit_pid: int | None = None


def _register_atexit() -> None:
    """Register :func:`flush_all` once per process: a forked Airflow task clears inherited handlers."""
    global _atexit_pid
    if _atexit_pid != os.getpid():
        _atexit_pid = os.getpid()
        atexit.register(flush_all)
