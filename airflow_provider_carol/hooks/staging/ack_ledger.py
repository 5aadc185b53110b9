"""Resumable sends: which chunks of a batch Carol acknowledged, kept in the task state store.

As chunks are acknowledged, their sequence numbers and a CRC-32 of each chunk's JSON are recorded; a
later try of the same Airflow task (same batch id) re-encodes the source and skips every chunk whose
sequence was acknowledged with the same content, so only the unacknowledged chunks and the summary are
sent. A chunk whose content changed (the source changed between tries) is sent again: Carol replaces a
re-sent ``(batchId, batchIdSequence)``, so nothing is lost or doubled either way.
"""

from __future__ import annotations

import threading

from airflow_provider_carol.hooks.core.task_state import TaskStateStore, forget
from airflow_provider_carol.hooks.core.types import LoggerLike
from airflow_provider_carol.hooks.staging.codec import Chunk

KEY_PREFIX = "carol_staging_acks/"
#: How long closing the ledger waits for its last write.
CLOSE_TIMEOUT = 30.0


class AckLedger:
    """The acknowledged chunks of one batch (``{sequence: crc32}``), loaded from and saved to ``store``.

    Acknowledgements are written by a background thread as soon as they come, coalesced (a write is one
    call to the Airflow API server), so sending never waits for the store and a try that dies loses only
    the acknowledgements of the write in progress; those chunks are simply sent again.
    """

    def __init__(self, store: TaskStateStore | None, batch_id: str, log: LoggerLike) -> None:
        self.store, self.key, self.log = store, KEY_PREFIX + batch_id, log
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closing = False
        self._acked: dict[int, int] = {}
        self._dirty = False
        self.previous: dict[int, int] = {}
        self.skipped = 0
        self.writes = 0
        if store is not None:
            stored = store.get(self.key) or {}
            self.previous = {int(seq): int(crc) for seq, crc in dict(stored).items()}
            self._acked = dict(self.previous)
            if self.previous:
                log.info(
                    "Batch %s: an earlier try had %d chunk(s) acknowledged; those are not sent again.",
                    batch_id,
                    len(self.previous),
                )

    @property
    def active(self) -> bool:
        """Whether acknowledgements are kept (a task state store exists): chunks then need a CRC."""
        return self.store is not None

    def already_acknowledged(self, chunk: Chunk) -> bool:
        """True when an earlier try had this exact chunk acknowledged (it is then not sent again)."""
        recorded = self.previous.get(chunk.sequence)
        if recorded is not None and recorded == chunk.checksum():
            self.skipped += 1
            return True
        return False

    def acknowledged(self, sequence: int, crc: int) -> None:
        """Record that Carol acknowledged chunk ``sequence`` (CRC ``crc``; called from the sender's
        pool); written soon after."""
        if self.store is None:
            return
        with self._lock:
            self._acked[sequence] = crc
            self._dirty = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="carol-ack-ledger", daemon=True)
                self._thread.start()
        self._wake.set()

    def close(self) -> None:
        """Write what is left and stop the writer thread (the sender calls it, failure or not)."""
        with self._lock:
            self._closing = True
            thread = self._thread
        self._wake.set()
        if thread is not None:
            thread.join(CLOSE_TIMEOUT)
        self._write()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            try:
                self._write()
            except Exception as exc:  # noqa: BLE001 - a lost write only means a chunk is sent again
                self.log.warning("Could not record acknowledged chunks (%s); a retry may resend them.", exc)
            if self._closing:
                return

    def _write(self) -> None:
        with self._lock:
            if self.store is None or not self._dirty:
                return
            snapshot = {str(seq): crc for seq, crc in self._acked.items()}
            self._dirty = False
        self.store.set(self.key, snapshot)
        self.writes += 1

    def forget(self) -> None:
        """The batch is complete (summary sent): a later run of the task starts a fresh ledger."""
        forget(self.store, self.key)
