"""Local and object-storage files the provider reads: which format a file is, where it is, how to open it.

One table of file formats for every reader (staging sends stream them, ``CarolDuckDBOperator`` loads
them): Parquet, CSV, NDJSON (``.json``/``.jsonl`` are read as one JSON object per line) and Arrow IPC.
"""

from __future__ import annotations

import glob
import gzip
import os
from typing import IO, TYPE_CHECKING, Union

from airflow_provider_carol.exceptions import CarolConfigError

if TYPE_CHECKING:
    import pyarrow as pa
    from airflow.providers.common.compat.sdk import ObjectStoragePath

FORMATS = ("parquet", "csv", "ndjson", "ipc")
#: Other names accepted for a format (``json`` was the DuckDB operator's name for NDJSON).
ALIASES = {"json": "ndjson", "jsonl": "ndjson", "arrow": "ipc", "feather": "ipc"}
SUFFIXES = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "ndjson",
    ".arrow": "ipc",
    ".feather": "ipc",
    ".ipc": "ipc",
}
_GLOB_CHARS = set("*?[")

FilePath = Union[str, "ObjectStoragePath"]


def normalise_format(file_format: str | None, *, what: str = "file_format") -> str | None:
    """A known format name (aliases resolved), None when not given; anything else names the setting."""
    if file_format is None:
        return None
    name = ALIASES.get(str(file_format).lower(), str(file_format).lower())
    if name not in FORMATS:
        raise CarolConfigError(f"{what} must be one of {', '.join(FORMATS)}, got {file_format!r}.")
    return name


def file_format_of(path: FilePath, file_format: str | None = None) -> str:
    """The explicit ``file_format``, else the one the file's suffix names (``.gz`` is looked through)."""
    given = normalise_format(file_format)
    if given:
        return given
    name = str(path).lower().removesuffix(".gz")
    for suffix, found in SUFFIXES.items():
        if name.endswith(suffix):
            return found
    raise CarolConfigError(
        f"Cannot tell the format of {path!s} from its name; pass file_format (one of {', '.join(FORMATS)})."
    )


def expand_paths(path: object) -> list[FilePath]:
    """Files named by a path, a glob, an ``ObjectStoragePath`` or a list of those (globs sorted)."""
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    if isinstance(path, list | tuple):
        return [found for item in path for found in expand_paths(item)]
    if isinstance(path, str) and "://" in path and not path.startswith("file://"):
        path = ObjectStoragePath(path)
    if not isinstance(path, ObjectStoragePath):
        text = os.path.expanduser(os.fspath(path).removeprefix("file://"))  # type: ignore[call-overload]
        if _GLOB_CHARS & set(text):
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                raise CarolConfigError(f"path {text!r} matched no files.")
            return list(matches)
        if not os.path.isfile(text):
            raise CarolConfigError(f"path {text!r} is not a file.")
        return [text]
    if _GLOB_CHARS & set(path.name):
        found = sorted(path.parent.glob(path.name), key=str)
        if not found:
            raise CarolConfigError(f"path {str(path)!r} matched no files.")
        return list(found)
    if not path.is_file():
        raise CarolConfigError(f"path {str(path)!r} is not a file.")
    return [path]


def open_binary(path: FilePath) -> IO[bytes]:
    """A binary file object for a local path or an ``ObjectStoragePath``, gunzipping ``*.gz``."""
    raw: IO[bytes] = open(path, "rb") if isinstance(path, str) else path.open("rb")  # noqa: SIM115 - caller closes
    return gzip.GzipFile(fileobj=raw, mode="rb") if str(path).lower().endswith(".gz") else raw  # type: ignore[return-value]


def read_arrow(path: FilePath, file_format: str) -> pa.Table:
    """A whole file as an Arrow table (for sources that are queried, not streamed)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.ipc as ipc
    import pyarrow.json as pajson
    import pyarrow.parquet as pq

    with open_binary(path) as stream:
        if file_format == "parquet":
            return pq.read_table(stream)
        if file_format == "csv":
            return pacsv.read_csv(stream)
        if file_format == "ndjson":
            return pajson.read_json(stream)
        source = stream if stream.seekable() else pa.BufferReader(stream.read())
        return ipc.open_file(source).read_all()


def read_table(path: object, file_format: str | None = None) -> pa.Table:
    """Every file ``path`` names (a path, glob, URL, ``ObjectStoragePath`` or a list), as one Arrow table."""
    import pyarrow as pa

    for given in path if isinstance(path, list | tuple) else [path]:
        file_format_of(str(given), file_format)  # a name we cannot read fails before any file is opened
    tables = [read_arrow(found, file_format_of(found, file_format)) for found in expand_paths(path)]
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="default")
