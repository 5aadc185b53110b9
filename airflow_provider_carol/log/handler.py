"""``CarolLogHandler``: a stdlib ``logging.Handler`` that sends records to a Carol long task's log.

It replaces pycarol's ``CarolHandler`` (one blocking POST per record, retried into duplicates, errors
raised into ``logger.info``): records are formatted and queued in the caller's thread, then shipped in
batches by a background thread (see :mod:`airflow_provider_carol.log.shipper`).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import IO, TYPE_CHECKING

from airflow_provider_carol.hooks.tasks.logs import carol_level
from airflow_provider_carol.log.shipper import LogShipper

if TYPE_CHECKING:
    from airflow_provider_carol.hooks.carol import CarolHook


def _default_hook_factory(carol_conn_id: str) -> Callable[[], CarolHook]:
    def build() -> CarolHook:
        from airflow_provider_carol.hooks.carol import CarolHook

        # Few, short retries: a log line is not worth a minute of backoff at shutdown.
        return CarolHook(carol_conn_id, retry_limit=2, retry_delay=0.2, max_retry_wait=5.0)

    return build


class CarolLogHandler(logging.Handler):
    """Send log records to the log of a Carol long task, in batches, without ever blocking or raising.

    With no Carol task id (the ``task_id`` argument, else the ``LONGTASKID`` environment variable), records
    are written to ``stream`` instead, like pycarol's console mode. Lines of a batch Carol refused or
    could not receive are written to ``stream`` too, and the failure is reported once.

    :param carol_conn_id: the Airflow connection (conn_type ``carol``) to send with.
    :param task_id: the Carol long task (``mdmId``) receiving the lines; default ``$LONGTASKID``.
    :param level: the handler's level.
    :param batch_size: most lines per POST.
    :param flush_interval: seconds a line may wait before it is sent.
    :param max_queue: most lines held in memory; further ones are dropped and counted.
    :param stream: where lines go when there is no Carol task id (default ``sys.stdout``).
    :param close_timeout: how long :meth:`close` (and interpreter exit) waits for queued lines.
    """

    def __init__(
        self,
        carol_conn_id: str = "carol_default",
        task_id: str | None = None,
        *,
        level: int = logging.NOTSET,
        batch_size: int = 500,
        flush_interval: float = 2.0,
        max_queue: int = 50_000,
        stream: IO[str] | None = None,
        close_timeout: float = 10.0,
    ) -> None:
        # Import the hook (and so Airflow) now, before this handler is registered: Airflow configures
        # logging on import, and dictConfig closes every handler that exists at that moment.
        import airflow_provider_carol.hooks.carol  # noqa: F401

        super().__init__(level)
        self.carol_conn_id = carol_conn_id
        self.task_id = task_id or os.environ.get("LONGTASKID") or None
        self.close_timeout = close_timeout
        self._stream = stream
        self._console = logging.StreamHandler(stream if stream is not None else sys.stdout)
        self._shipper = LogShipper(
            _default_hook_factory(carol_conn_id),
            batch_size=batch_size,
            flush_interval=flush_interval,
            max_queue=max_queue,
            on_failed=self._write_locally,
            name=f"carol-log-{carol_conn_id}",
        )
        self._guard = threading.local()

    def setFormatter(self, fmt: logging.Formatter | None) -> None:
        """Use ``fmt`` for both Carol lines and the console fallback."""
        super().setFormatter(fmt)
        self._console.setFormatter(fmt)

    def emit(self, record: logging.LogRecord) -> None:
        """Queue the formatted record (console when no task id); never blocks on I/O, never raises."""
        if getattr(self._guard, "busy", False) or record.thread == self._shipper.shipping_thread_id:
            return  # our own shipping (hook retries, urllib3) must not feed back into the queue
        self._guard.busy = True
        try:
            if self.task_id is None:
                self._console.handle(record)
                return
            self._shipper.put(self.task_id, carol_level(record.levelno), self.format(record))
        except Exception:  # noqa: BLE001 - logging must never raise into application code
            self.handleError(record)
        finally:
            self._guard.busy = False

    def flush(self) -> None:
        """Send what is queued (bounded by ``close_timeout``); called by ``logging.shutdown``."""
        if self.task_id is not None:
            self._shipper.flush(self.close_timeout)
        self._console.flush()

    def close(self) -> None:
        """Send what is queued, then stop the shipping thread; nothing is lost on a normal exit."""
        try:
            if self.task_id is not None:
                self._shipper.close(self.close_timeout)
        finally:
            super().close()

    def stats(self) -> dict[str, int]:
        """Counters of the shipping thread: ``sent``, ``dropped``, ``failed``, ``requests``."""
        return self._shipper.stats()

    def _write_locally(self, batch: list[tuple[str, str, str]]) -> None:
        """Lines Carol did not take go to the console stream, so a failed shipment loses nothing."""
        stream = self._console.stream
        try:
            stream.write("".join(f"{message}\n" for _, _, message in batch))
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed stdout at exit is not worth an exception
            return
