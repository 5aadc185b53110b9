"""Strict JSON for intake: encode records with msgspec and cut them into byte-bounded chunks.

pycarol wrote ``NaN``/``Infinity`` literals (invalid JSON) and crashed on numpy scalars; here NaN/±Inf,
NaT and ``pd.NA`` become ``null``, datetimes are ISO-8601 (aware ones in UTC), ``Decimal`` stays exact,
``bytes`` are base64 and numpy scalars are native. Anything else is a :class:`CarolConfigError` naming
the row and field. Chunks are bounded by records *and* bytes (Carol refuses bodies over 10 MiB).
"""

from __future__ import annotations

import datetime as dt
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import msgspec

from airflow_provider_carol.exceptions import CarolConfigError

MAX_REQUEST_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_CHUNK_BYTES = 9 * 1024 * 1024  # a margin under Carol's 10 MiB (decoded) intake limit
DEFAULT_CHUNK_SIZE = 5000
# How msgspec writes an aware, non-UTC datetime's offset: '...T01:02:03-03:00"'. A literal first
# character lets ``re`` scan with memchr (about 0.5 ms per MB); a hit only costs a re-encode.
_OFFSETS = (re.compile(rb'-\d\d:\d\d"'), re.compile(rb'\+\d\d:\d\d"'))


def _enc_hook(value: Any) -> Any:
    """Map the types msgspec does not know natively to JSON-native values, or raise TypeError."""
    module = type(value).__module__
    if module == "numpy":
        import numpy as np

        if isinstance(value, np.datetime64):
            return None if np.isnat(value) else _enc_hook(_pandas_timestamp(value))
        if isinstance(value, np.timedelta64):
            return None if np.isnat(value) else value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, np.generic):
            return value.item()
    if module.startswith("pandas"):
        import pandas as pd

        if value is pd.NaT or value is pd.NA:
            return None
        if isinstance(value, pd.Timestamp):
            return to_utc(value.to_pydatetime(warn=False))
        if isinstance(value, pd.Timedelta):
            return value.to_pytimedelta()
    if isinstance(value, dt.datetime):  # other datetime subclasses
        return to_utc(dt.datetime.fromisoformat(value.isoformat()))
    raise TypeError(f"values of type {type(value).__module__}.{type(value).__qualname__} are not JSON")


def _pandas_timestamp(value: Any) -> Any:
    import pandas as pd

    return pd.Timestamp(value)


def _strict_encoder() -> msgspec.json.Encoder:
    """msgspec's encoder with our hook for foreign types and exact decimals."""
    return msgspec.json.Encoder(enc_hook=_enc_hook, decimal_format="number")


def to_utc(value: dt.datetime) -> dt.datetime:
    """An aware datetime converted to UTC; a naive one unchanged (it carries no zone to convert)."""
    return value.astimezone(dt.timezone.utc) if value.tzinfo is not None else value


def _utc_copy(value: Any) -> Any:
    """A copy of ``value`` with every aware datetime (at any depth) converted to UTC.

    Never raises: an instant UTC cannot hold (year 1 or 9999 near the edge) keeps its offset, still a
    valid ISO-8601 timestamp. That is what lets the sender run this pass after validation.
    """
    if type(value) is dt.datetime:
        try:
            return to_utc(value)
        except OverflowError:
            return value
    if isinstance(value, dict):
        return {k: _utc_copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_utc_copy(v) for v in value]
    return value


@dataclass(frozen=True)
class Chunk:
    """One intake request's worth of records: its sequence number and the (uncompressed) JSON array."""

    sequence: int
    first_row: int
    records: int
    body: bytes = field(repr=False)
    #: Length of ``body``, kept when the body is dropped (byte counts).
    size: int = 0
    #: The records, while their UTC pass is still to do (see :meth:`final_body`).
    utc_records: list[Any] | None = field(default=None, repr=False, compare=False)

    def without_body(self) -> Chunk:
        """The same chunk without its JSON (kept while only its compressed form is needed)."""
        return replace(self, body=b"", utc_records=None)

    def checksum(self) -> int:
        """The CRC-32 of ``body``, which resumable sends record (computed only where a ledger needs it,
        on the sender's threads; zlib releases the GIL)."""
        return zlib.crc32(self.body)

    def final_body(self) -> bytes:
        """The JSON to send: ``body``, with aware datetimes moved to UTC if that pass was deferred.

        A chunker with ``defer_utc`` leaves the pass to the sending thread, off the caller's, where it
        cannot fail (validation already encoded every value) and can only shorten the body.
        """
        if self.utc_records is None:
            return self.body
        return in_utc(self.body, self.utc_records, _strict_encoder())


_DICT = frozenset({dict})


def in_utc(body: bytes, records: list[Any], encoder: msgspec.json.Encoder) -> bytes:
    """``body`` (the JSON of ``records``), re-encoded with every aware datetime in UTC if it shows an
    offset. A string that merely looks like one costs a re-encode that writes the same bytes."""
    if not any(pattern.search(body) for pattern in _OFFSETS):
        return body
    return encoder.encode([_utc_copy(record) for record in records])


class RecordEncoder:
    """Encode lists of records as one JSON array, strictly (see the module docstring)."""

    def __init__(self) -> None:
        self._encoder = _strict_encoder()

    def encode(self, records: list[Any], first_row: int = 0, *, utc: bool = True) -> bytes:
        """The JSON array of ``records``; ``first_row`` numbers the rows in error messages.

        ``utc=False`` skips the search for aware datetimes, for sources already normalised (Arrow).
        """
        if not set(map(type, records)) <= _DICT:  # the C loop: ~4x faster than a generator
            self.check_records(records, first_row)
        try:
            body = self._encoder.encode(records)
            if utc:  # aware datetimes: to UTC
                body = in_utc(body, records, self._encoder)
        except (TypeError, ValueError, OverflowError, RecursionError, msgspec.EncodeError) as exc:
            raise self._locate(records, first_row, exc) from None
        return body

    def check_records(self, records: list[Any], first_row: int) -> None:
        """Raise a clear error unless every item is a JSON object (a dict with string keys)."""
        for index, record in enumerate(records):
            if type(record) is not dict and not isinstance(record, dict):
                raise CarolConfigError(
                    f"Row {first_row + index}: a staging record must be a JSON object (dict), "
                    f"got {type(record).__name__}."
                )

    def _locate(self, records: list[Any], first_row: int, exc: BaseException) -> CarolConfigError:
        """Find the row and field that failed, for an error message a user can act on."""
        self.check_records(records, first_row)
        for index, record in enumerate(records):
            for key, value in record.items():
                try:
                    self._encoder.encode({key: value})
                except (
                    TypeError,
                    ValueError,
                    OverflowError,
                    RecursionError,
                    msgspec.EncodeError,
                ) as field_exc:
                    return CarolConfigError(
                        f"Row {first_row + index}, field {key!r}: cannot be sent as JSON: {field_exc}."
                    )
        return CarolConfigError(
            f"Rows {first_row}..{first_row + len(records) - 1}: cannot be sent as JSON: {exc}"
        )


class Chunker:
    """Turn blocks of records into :class:`Chunk` s of at most ``chunk_size`` records and ``max_bytes``.

    ``fixed=True`` (a planned slice of a cross-task batch) never splits a chunk: its sequence numbers
    were assigned up front, so an oversized chunk is an error before it is sent. Otherwise an oversized
    chunk is halved until it fits; a single record over ``max_bytes`` is always an error.
    """

    def __init__(
        self,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        max_bytes: int = DEFAULT_MAX_CHUNK_BYTES,
        *,
        first_sequence: int = 1,
        fixed: bool = False,
        utc: bool = True,
        defer_utc: bool = False,
    ) -> None:
        validate_chunking(chunk_size, max_bytes)
        self.chunk_size = chunk_size
        self.max_bytes = max_bytes
        self.fixed = fixed
        self.utc = utc
        # Leave the UTC pass to the sender (Chunk.final_body): for input validated whole before the
        # first request, so the caller's thread only encodes (the scan is ~30% of encoding).
        self.defer_utc = defer_utc and utc
        self.encoder = RecordEncoder()
        self._next_sequence = first_sequence
        self._row = 0

    def chunks(self, blocks: Iterable[list[Any]]) -> Iterator[Chunk]:
        """Re-slice ``blocks`` (lists of records of any length) into encoded chunks, in order."""
        pending: list[Any] = []
        size = self.chunk_size
        for block in blocks:
            start = 0
            if pending:
                start = size - len(pending)
                pending.extend(block[:start])
                if len(pending) < size:
                    continue
                yield from self._emit(pending)
                pending = []
            while len(block) - start >= size:
                yield from self._emit(block[start : start + size])
                start += size
            pending = list(block[start:])
        if pending:
            yield from self._emit(pending)

    def _emit(self, records: list[Any]) -> Iterator[Chunk]:
        first_row = self._row
        body = self.encoder.encode(records, first_row, utc=self.utc and not self.defer_utc)
        if len(body) > self.max_bytes:  # the deferred UTC pass only shortens a body ("-03:00" -> "Z")
            yield from self._oversized(records, body, first_row)
            return
        self._row += len(records)
        utc_records = records if self.defer_utc else None
        chunk = Chunk(self._next_sequence, first_row, len(records), body, len(body), utc_records)
        self._next_sequence += 1
        yield chunk

    def _oversized(self, records: list[Any], body: bytes, first_row: int) -> Iterator[Chunk]:
        if len(records) == 1:
            raise CarolConfigError(
                f"Row {first_row} encodes to {len(body):,} bytes of JSON, more than the "
                f"{self.max_bytes:,}-byte limit of one intake request (Carol refuses bodies over "
                f"{MAX_REQUEST_BYTES:,} bytes)."
            )
        if self.fixed:
            raise CarolConfigError(
                f"Rows {first_row}..{first_row + len(records) - 1} encode to {len(body):,} bytes, over "
                f"max_chunk_bytes={self.max_bytes:,}; this batch's chunk size was planned up front "
                f"({self.chunk_size} records), so plan it again with a smaller chunk_size."
            )
        middle = len(records) // 2
        yield from self._emit(records[:middle])
        yield from self._emit(records[middle:])


def validate_chunking(chunk_size: int, max_bytes: int) -> None:
    """Reject chunk settings Carol cannot take, naming the setting."""
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
        raise CarolConfigError(f"chunk_size must be a positive number of records, got {chunk_size!r}.")
    if not isinstance(max_bytes, int) or not 1024 <= max_bytes <= MAX_REQUEST_BYTES:
        raise CarolConfigError(
            f"max_chunk_bytes must be between 1024 and {MAX_REQUEST_BYTES:,} (Carol's limit), "
            f"got {max_bytes!r}."
        )
