"""Benchmark helper run by ``staging_vs_pycarol.py`` inside ``.venv-pycarol``: send records with pycarol.

Also imported by the benchmark itself for :func:`make_records`, so both sides send the same records.
Prints one JSON line: records, seconds, records/s and peak RSS of this process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import sys
import time
from typing import Any


def make_records(count: int, start: int = 0) -> list[dict]:
    """``count`` records (ids from ``start``) of 8 fields incl. a nested dict and an ISO-8601 timestamp."""
    cities = ["Sao Paulo", "Rio de Janeiro", "Belo Horizonte", "Curitiba", "Porto Alegre", "Recife"]
    return [
        {
            "id": i,
            "name": f"Customer {i:07d}",
            "email": f"customer{i}@example.com",
            "amount": round(i * 0.37 % 10_000, 2),
            "active": i % 3 != 0,
            "created_at": f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{i % 59:02d}Z",
            "address": {"city": cities[i % len(cities)], "zip": f"{i % 99999:05d}-000", "number": i % 1000},
            "score": (i * 7919) % 1000 / 10,
        }
        for i in range(start, start + count)
    ]


def write_parquet(path: Any, rows: int) -> None:
    """``rows`` generated records as a Parquet file, written in blocks (our venv only: needs pyarrow)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    step = 100_000
    schema = pa.Table.from_pylist(make_records(10)).schema
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, step):
            block = make_records(min(step, rows - start), start)
            writer.write_table(pa.Table.from_pylist(block, schema=schema), row_group_size=50_000)


def pycarol_client(info: dict) -> Any:
    """pycarol's ``Carol`` for the sandbox described by ``info``, with API-key auth (in ``.venv-pycarol``)."""
    from pycarol import ApiKeyAuth, Carol

    return Carol(
        domain=info["tenant"],
        app_name=info.get("app_name"),
        auth=ApiKeyAuth(info["api_key"]),
        connector_id=info["connector_id"],
        organization=info["organization"],
        host="127.0.0.1",
        port=info["port"],
    )


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM: unlike ru_maxrss it does not inherit the parent's peak)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--info", required=True, help="the sandbox's start-up JSON")
    parser.add_argument("--records", type=int, required=True)
    parser.add_argument("--mode", choices=["default", "async"], required=True)
    parser.add_argument("--staging", default="bench")
    parser.add_argument("--trace", action="store_true", help="add urllib3 connection/response phases")
    args = parser.parse_args()
    info = json.loads(args.info)

    from _trace import HttpTrace, summarise  # a sibling script: run as benchmarks/_pycarol_send.py
    from pycarol import Staging

    carol = pycarol_client(info)
    records = make_records(args.records)
    trace = HttpTrace() if args.trace else contextlib.nullcontext()
    with trace:
        started = time.perf_counter()
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):  # its progress prints
            Staging(carol).send_data(
                args.staging, data=records, connector_id=info["connector_id"], async_send=args.mode == "async"
            )
        seconds = time.perf_counter() - started
    result = {
        "records": args.records,
        "seconds": seconds,
        "records_per_s": args.records / seconds,
        "peak_rss_mb": peak_rss_mb(),
    }
    if isinstance(trace, HttpTrace):
        result["trace"] = summarise(trace.events, seconds)
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
