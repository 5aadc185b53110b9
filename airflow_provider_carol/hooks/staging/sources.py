"""Where staging records come from: in-memory data, files (Parquet, CSV, NDJSON) or a SQL query.

Every source is read as a stream of *blocks* (lists of records) so that memory stays bounded: files
through pyarrow's batch readers or line by line, SQL through ``cursor.fetchmany``. Arrow data has its
timestamps normalised (aware ones to UTC, nanoseconds to microseconds) before becoming records.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from typing import Any

import msgspec

from airflow_provider_carol.exceptions import CarolConfigError
from airflow_provider_carol.hooks.files import (
    FilePath,
    expand_paths,
    file_format_of,
    normalise_format,
    open_binary,
)

_RECORDS = msgspec.json.Decoder(list[dict[str, Any]])


@dataclass(frozen=True)
class SourceSpec:
    """Exactly one of ``data``, ``path`` or ``sql`` (with ``sql_conn_id``), validated before any I/O."""

    data: Any = None
    path: Any = None
    sql: str | None = None
    sql_conn_id: str | None = None
    sql_parameters: Any = None
    file_format: str | None = None

    def __post_init__(self) -> None:
        given = [name for name in ("data", "path", "sql") if getattr(self, name) is not None]
        if len(given) != 1:
            raise CarolConfigError(
                f"Give exactly one source of records: data, path or sql (got {', '.join(given) or 'none'})."
            )
        if self.sql is not None and not self.sql_conn_id:
            raise CarolConfigError("A sql source needs sql_conn_id (an Airflow SQL connection).")
        object.__setattr__(self, "file_format", normalise_format(self.file_format))

    @property
    def in_memory(self) -> bool:
        """True for ``data``: it can be encoded whole, so bad values fail before any request."""
        return self.data is not None

    @property
    def normalised(self) -> bool:
        """True when records come through Arrow or JSON: no aware non-UTC datetimes can remain."""
        if self.path is not None:
            return True
        return self.data is not None and type(self.data).__module__.startswith("pyarrow")

    def describe(self) -> str:
        """A short label for logs and errors."""
        if self.path is not None:
            return f"path {self.path!s}"
        return f"sql on {self.sql_conn_id!r}" if self.sql is not None else f"{type(self.data).__name__} data"


def iter_blocks(spec: SourceSpec, block_size: int) -> Generator[list[Any], None, None]:
    """The source's records, in order, as lists of at most (about) ``block_size`` records."""
    if spec.data is not None:
        yield from _data_blocks(spec.data, block_size)
    elif spec.path is not None:
        for path in expand_paths(spec.path):
            yield from _file_blocks(path, file_format_of(path, spec.file_format), block_size)
    else:
        yield from _sql_blocks(spec.sql or "", spec.sql_conn_id or "", spec.sql_parameters, block_size)


def count_rows(spec: SourceSpec) -> int:
    """How many records the source holds (Parquet metadata, a streaming count, or SQL ``COUNT(*)``)."""
    if spec.data is not None:
        return sum(len(block) for block in _data_blocks(spec.data, 1 << 20))
    if spec.sql is not None:
        sql = f"SELECT COUNT(*) FROM ({spec.sql.strip().rstrip(';')}) carol_count"
        hook = _db_hook(spec.sql_conn_id or "")
        row = hook.get_first(sql, parameters=spec.sql_parameters)
        return int(row[0])
    total = 0
    for path in expand_paths(spec.path):
        total += _count_file(path, file_format_of(path, spec.file_format))
    return total


def cheap_count(spec: SourceSpec) -> int | None:
    """The row count when it costs no scan (Parquet metadata), for progress ETAs; else None."""
    if spec.path is None:
        return None
    paths = expand_paths(spec.path)
    if any(file_format_of(path, spec.file_format) != "parquet" for path in paths):
        return None
    return sum(_count_file(path, "parquet") for path in paths)


def first_records(spec: SourceSpec, limit: int) -> list[Any]:
    """Up to ``limit`` records from the start of the source (a sample for schemas and planning)."""
    sample: list[Any] = []
    blocks = iter_blocks(spec, limit)
    with closing(blocks):
        for block in blocks:
            sample.extend(block[: limit - len(sample)])
            if len(sample) >= limit:
                break
    return sample


# --------------------------------------------------------------------------------------- in-memory data
def _data_blocks(data: Any, block_size: int) -> Iterator[list[Any]]:
    kind = f"{type(data).__module__}.{type(data).__name__}"
    if isinstance(data, (str, bytes)):
        try:
            data = _RECORDS.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise CarolConfigError(f"data is a string but not a JSON array of objects: {exc}") from None
    if isinstance(data, dict):
        data = [data]
    if isinstance(data, (list, tuple)):
        for start in range(0, len(data), block_size):
            yield list(data[start : start + block_size])
    elif kind.startswith("pandas.") and type(data).__name__ == "DataFrame":
        yield from _frame_blocks(data, block_size)
    elif kind.startswith("pyarrow.") and type(data).__name__ in ("Table", "RecordBatch"):
        for batch in data.to_batches(max_chunksize=block_size) if hasattr(data, "to_batches") else [data]:
            yield arrow_records(batch)
    else:
        raise CarolConfigError(
            f"data must be a list of dicts, a JSON string, a pandas DataFrame or a pyarrow Table; got {kind}."
        )


def _frame_blocks(frame: Any, block_size: int) -> Iterator[list[Any]]:
    """DataFrame rows as records, through Arrow when the columns allow it (fast, typed)."""
    import pyarrow as pa

    duplicated = frame.columns[frame.columns.duplicated()].tolist()
    if duplicated:
        raise CarolConfigError(f"The DataFrame has duplicated column names: {duplicated}.")
    for start in range(0, len(frame), block_size):
        part = frame.iloc[start : start + block_size]
        try:
            table = pa.Table.from_pandas(part, preserve_index=False)
        except (pa.ArrowException, TypeError, ValueError):  # mixed object columns: plain Python rows
            yield part.to_dict("records")
        else:
            yield from (arrow_records(batch) for batch in table.to_batches())


def arrow_records(batch: Any) -> list[dict[str, Any]]:
    """A RecordBatch as records; aware timestamps converted to UTC and nanoseconds cut to microseconds."""
    import pyarrow as pa

    columns = []
    changed = False
    for column, field in zip(batch.columns, batch.schema, strict=True):
        if pa.types.is_timestamp(field.type) and (field.type.tz or field.type.unit == "ns"):
            target = pa.timestamp("us", tz="UTC" if field.type.tz else None)
            column = column.cast(target, safe=False)
            changed = True
        columns.append(column)
    if changed:
        batch = pa.RecordBatch.from_arrays(columns, names=batch.schema.names)
    return batch.to_pylist()


# --------------------------------------------------------------------------------------- files
def _file_blocks(path: FilePath, file_format: str, block_size: int) -> Iterator[list[Any]]:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    with open_binary(path) as stream:
        try:
            if file_format == "ndjson":
                yield from _ndjson_blocks(stream, path, block_size)
            elif file_format == "parquet":
                parquet = pq.ParquetFile(stream, buffer_size=1 << 20, pre_buffer=False)
                for batch in parquet.iter_batches(batch_size=block_size, use_threads=False):
                    yield arrow_records(batch)
            else:
                for batch in _arrow_batches(stream, file_format, pacsv):
                    for start in range(0, batch.num_rows, block_size):
                        yield arrow_records(batch.slice(start, block_size))
        except pa.ArrowException as exc:
            raise CarolConfigError(f"Cannot read {file_format} file {path!s}: {exc}") from None


def _arrow_batches(stream: Any, file_format: str, pacsv: Any) -> Iterator[Any]:
    """CSV streamed in 4 MB blocks; Arrow IPC batch by batch (a compressed IPC file is read whole)."""
    if file_format == "csv":
        yield from pacsv.open_csv(stream, read_options=pacsv.ReadOptions(block_size=1 << 22))
        return
    import pyarrow as pa

    reader = pa.ipc.open_file(stream if stream.seekable() else pa.BufferReader(stream.read()))
    for index in range(reader.num_record_batches):
        yield reader.get_batch(index)


def _ndjson_blocks(stream: Any, path: FilePath, block_size: int) -> Iterator[list[Any]]:
    lines: list[bytes] = []
    line_numbers: list[int] = []
    for number, line in enumerate(stream, start=1):
        if line.strip():
            lines.append(line)
            line_numbers.append(number)
            if len(lines) >= block_size:
                yield _decode_lines(lines, line_numbers, path)
                lines, line_numbers = [], []
    if lines:
        yield _decode_lines(lines, line_numbers, path)


def _decode_lines(lines: list[bytes], numbers: list[int], path: FilePath) -> list[Any]:
    try:
        return _RECORDS.decode(b"[" + b",".join(lines) + b"]")
    except (msgspec.DecodeError, msgspec.ValidationError):
        for line, number in zip(lines, numbers, strict=True):
            try:
                _RECORDS.decode(b"[" + line + b"]")
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise CarolConfigError(f"{path!s} line {number} is not a JSON object: {exc}") from None
        raise


def _count_file(path: FilePath, file_format: str) -> int:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    with open_binary(path) as stream:
        if file_format == "parquet":
            return int(pq.ParquetFile(stream).metadata.num_rows)
        if file_format == "ndjson":
            return sum(1 for line in stream if line.strip())
        return sum(batch.num_rows for batch in _arrow_batches(stream, file_format, pacsv))


# --------------------------------------------------------------------------------------- SQL
def _db_hook(conn_id: str) -> Any:
    """The common-sql ``DbApiHook`` of an Airflow connection (any SQL provider)."""
    from airflow.providers.common.compat.sdk import BaseHook
    from airflow.providers.common.sql.hooks.sql import DbApiHook

    hook = BaseHook.get_connection(conn_id).get_hook()
    if not isinstance(hook, DbApiHook):
        raise CarolConfigError(
            f"sql_conn_id {conn_id!r} is not a SQL connection (its hook is {type(hook).__name__})."
        )
    return hook


def _sql_blocks(sql: str, conn_id: str, parameters: Any, block_size: int) -> Iterator[list[Any]]:
    hook = _db_hook(conn_id)
    with closing(hook.get_conn()) as conn:
        cursor = conn.cursor()
        try:
            cursor.execute(sql, parameters) if parameters is not None else cursor.execute(sql)
            names = _column_names(cursor.description or ())
            while rows := cursor.fetchmany(block_size):
                yield [dict(zip(names, row, strict=True)) for row in rows]
        finally:
            cursor.close()


def _column_names(description: Sequence[Any]) -> list[str]:
    names = [str(column[0]) for column in description]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise CarolConfigError(f"The query returns duplicated column names {duplicated}; alias them.")
    return names


def typed_upfront(spec: SourceSpec) -> bool:
    """True when the source knows its schema before any row is read: a pyarrow Table or RecordBatch,
    or only Parquet/Arrow files (their metadata types every column). Costs no file read."""
    if spec.data is not None:
        return type(spec.data).__module__.startswith("pyarrow") and type(spec.data).__name__ in (
            "Table",
            "RecordBatch",
        )
    if spec.path is None:
        return False
    paths = expand_paths(spec.path)
    return bool(paths) and all(file_format_of(path, spec.file_format) in ("parquet", "ipc") for path in paths)


def upfront_properties(spec: SourceSpec) -> dict[str, dict[str, Any]]:
    """Staging schema properties of a :func:`typed_upfront` source: the Table's schema, or every file's
    (metadata only). Files that disagree on a column's type are an error naming the column and both files.
    """
    from airflow_provider_carol.hooks.staging.schema import arrow_properties

    if spec.data is not None:
        return arrow_properties(spec.data.schema)
    merged: dict[str, dict[str, Any]] = {}
    seen_in: dict[str, FilePath] = {}
    for path in expand_paths(spec.path):
        file_schema = _file_schema(path, file_format_of(path, spec.file_format))
        for name, found in arrow_properties(file_schema).items():
            if name in merged and found.get("type") != merged[name].get("type"):
                raise CarolConfigError(
                    f"Column {name!r} is {merged[name].get('type')} in {seen_in[name]!s} but "
                    f"{found.get('type')} in {path!s}; the files disagree on its type."
                )
            merged.setdefault(name, found)
            seen_in.setdefault(name, path)
    return merged


def _file_schema(path: FilePath, file_format: str) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with open_binary(path) as stream:
        if file_format == "parquet":
            return pq.ParquetFile(stream).schema_arrow
        return pa.ipc.open_file(stream if stream.seekable() else pa.BufferReader(stream.read())).schema
