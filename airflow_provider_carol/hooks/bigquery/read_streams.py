"""Storage Read API streams to Arrow record batches, several streams in parallel, memory bounded.

Each ``ReadRows`` response is taken from gRPC as raw bytes and the Arrow IPC batch inside it is sliced
out of those bytes without a copy (a ``ReadRowsResponse`` is decoded by protobuf into a message and then
copied once more into a ``bytes`` field; for large messages those two copies were most of a read's peak
memory). Only the two fields we use are parsed: ``arrow_record_batch.serialized_record_batch`` (4.1) and
``row_count`` (6). A stream broken by a transient gRPC error is resumed at the row offset already read,
as the Google client's ``ReadRowsStream`` does.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    import pyarrow as pa
    from google.cloud.bigquery_storage_v1 import BigQueryReadClient

READ_ROWS_METHOD = "/google.cloud.bigquery.storage.v1.BigQueryRead/ReadRows"
RESUME_ATTEMPTS = 3
_DONE = object()


# ---------------------------------------------------------------------------------------------- wire format
def _varint(buffer: memoryview, index: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = buffer[index]
        index += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, index
        shift += 7


def _fields(buffer: memoryview, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """``(field number, value or start, end)`` for each field; varints yield ``(n, value, -1)``."""
    index = start
    while index < end:
        key, index = _varint(buffer, index)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, index = _varint(buffer, index)
            yield number, value, -1
        elif wire_type == 2:
            length, index = _varint(buffer, index)
            yield number, index, index + length
            index += length
        elif wire_type == 1:
            index += 8
        elif wire_type == 5:
            index += 4
        else:
            raise ValueError(f"unexpected protobuf wire type {wire_type} in a ReadRows response")


def parse_read_rows_response(raw: bytes) -> tuple[memoryview | None, int]:
    """The serialized Arrow batch (a zero-copy view of ``raw``) and the row count of one response."""
    view = memoryview(raw)
    batch, rows = None, 0
    for number, start, end in _fields(view, 0, len(view)):
        if number == 6 and end == -1:
            rows = start
        elif number == 4 and end != -1:
            for inner, inner_start, inner_end in _fields(view, start, end):
                if inner == 1 and inner_end != -1:
                    batch = view[inner_start:inner_end]
    return batch, rows


# ---------------------------------------------------------------------------------------------- one stream
def _read_rows_call(storage: BigQueryReadClient) -> Callable[..., Any]:
    """``ReadRows`` on the client's own channel (credentials, endpoint, TLS) with raw-bytes responses."""
    from google.cloud.bigquery_storage_v1 import types

    # The client is always built with the gRPC transport (see BigQueryMethods.get_bigquery_storage_client).
    return storage.transport.grpc_channel.unary_stream(  # type: ignore[attr-defined]
        READ_ROWS_METHOD, request_serializer=types.ReadRowsRequest.serialize, response_deserializer=None
    )


def iter_stream(storage: BigQueryReadClient, name: str, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """The Arrow batches of one read stream; resumed at the current offset after a transient error."""
    import grpc
    import pyarrow as pa
    from google.api_core import exceptions as api_exceptions
    from google.cloud.bigquery_storage_v1 import types

    call = _read_rows_call(storage)
    metadata = [("x-goog-request-params", f"read_stream={quote(name, safe='')}")]
    offset, attempt = 0, 0
    while True:
        try:
            for raw in call(types.ReadRowsRequest(read_stream=name, offset=offset), metadata=metadata):
                batch, rows = parse_read_rows_response(raw)
                if batch is not None:
                    yield pa.ipc.read_record_batch(pa.py_buffer(batch), schema)
                offset += rows
            return
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            attempt += 1
            if (
                code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL)
                or attempt > RESUME_ATTEMPTS
            ):
                raise api_exceptions.from_grpc_error(exc) from None
            time.sleep(min(2.0**attempt * 0.1, 2.0))


# ---------------------------------------------------------------------------------------------- all streams
def _hand_over(handoff: queue.Queue[Any], stop: threading.Event, item: Any) -> bool:
    """Put ``item`` on the bounded queue unless the consumer stopped; False when it did."""
    while not stop.is_set():
        try:
            handoff.put(item, timeout=0.2)
            return True
        except queue.Full:
            continue
    return False


def _stream_worker(
    storage: BigQueryReadClient,
    name: str,
    schema: pa.Schema,
    handoff: queue.Queue[Any],
    stop: threading.Event,
) -> None:
    """Thread body: one stream's batches onto the queue, then its error (if any), then ``_DONE``."""
    try:
        for batch in iter_stream(storage, name, schema):
            if stop.is_set() or not _hand_over(handoff, stop, batch):
                return
    except Exception as exc:  # noqa: BLE001 - handed to the consumer, which raises it
        _hand_over(handoff, stop, exc)
    finally:
        _hand_over(handoff, stop, _DONE)


def read_streams(
    storage: BigQueryReadClient,
    names: list[str],
    schema: pa.Schema,
    on_error: Callable[[Exception], Exception],
) -> Iterator[pa.RecordBatch]:
    """Read every stream in its own thread; batches come out in arrival order through a bounded queue.

    ``on_error`` turns a Google API error into the exception to raise. Closing the iterator early stops
    the threads.
    """
    from google.api_core.exceptions import GoogleAPICallError

    if not names:
        return
    handoff: queue.Queue[Any] = queue.Queue(maxsize=len(names) + 1)
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=_stream_worker,
            args=(storage, name, schema, handoff, stop),
            daemon=True,
            name="carol-bq-read",
        )
        for name in names
    ]
    for thread in threads:
        thread.start()
    remaining = len(threads)
    try:
        while remaining:
            item = handoff.get()
            if item is _DONE:
                remaining -= 1
            elif isinstance(item, GoogleAPICallError):
                raise on_error(item)
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        stop.set()
        deadline = time.monotonic() + 5
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
