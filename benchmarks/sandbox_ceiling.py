"""How fast can the sandbox ingest? Raw POSTs of pre-built gzip chunks, so the client costs almost nothing.

Runs ``python -m airflow_provider_carol.sandbox`` as a subprocess, posts N pre-compressed chunks of
~150-byte records over keep-alive ``requests.Session``s from a few threads, prints records/s and MB/s,
then checks the admin API holds every record exactly once. The figure is the ceiling any ingestion
benchmark run against the sandbox can reach on this machine.

    .venv/bin/python benchmarks/sandbox_ceiling.py --chunks 200 --records 5000 --threads 4
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import queue
import subprocess
import sys
import threading
import time

import requests


def make_chunk(start: int, size: int) -> bytes:
    """One JSON array of ``size`` records of about 150 bytes each, as pycarol would send it."""
    records = [
        {
            "id": i,
            "name": f"customer-{i:07d}",
            "email": f"c{i:07d}@example.com",
            "city": "Sao Paulo",
            "amount": round(i * 0.37, 2),
            "active": i % 2 == 0,
            "updated": "2026-01-01T00:00:00Z",
        }
        for i in range(start, start + size)
    ]
    return json.dumps(records).encode()


def start(tls: bool) -> tuple[subprocess.Popen[bytes], dict]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    cmd = [sys.executable, "-m", "airflow_provider_carol.sandbox", "--port", "0"] + (["--tls"] if tls else [])
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env)
    line = process.stdout.readline() if process.stdout else b""
    if not line:
        process.kill()
        raise SystemExit("the sandbox did not start")
    return process, json.loads(line)


def cpu_seconds(pid: int) -> float | None:
    """user+sys CPU time of a process (Linux /proc), to show whether the server or the client is the limit."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def post_all(info: dict, bodies: list[bytes], threads: int, batch_id: str) -> list[int]:
    """Post every chunk (sequence = index + 1) from ``threads`` keep-alive sessions; return the statuses."""
    work: queue.Queue[int] = queue.Queue()
    for index in range(len(bodies)):
        work.put(index)
    statuses: list[int] = []
    url = f"{info['url']}/api/v2/staging/intake/bench"
    headers = {
        "x-auth-key": info["api_key"],
        "x-auth-connectorid": info["connector_id"],
        "content-type": "application/json",
        "Content-Encoding": "gzip",
    }

    def worker() -> None:
        with requests.Session() as session:
            session.verify = info["ca_bundle"] or True
            while True:
                try:
                    index = work.get_nowait()
                except queue.Empty:
                    return
                params = {
                    "returnData": "false",
                    "connectorId": info["connector_id"],
                    "batchId": batch_id,
                    "batchIdSequence": index + 1,
                }
                response = session.post(
                    url,
                    params=params,
                    data=bodies[index],
                    headers=headers,
                    timeout=60,
                    verify=info["ca_bundle"] or True,
                )
                statuses.append(response.status_code)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=200)
    parser.add_argument("--records", type=int, default=5000, help="records per chunk")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--tls", action="store_true")
    args = parser.parse_args()

    raw = [make_chunk(i * args.records, args.records) for i in range(args.chunks)]
    bodies = [gzip.compress(body, compresslevel=6) for body in raw]
    raw_mb, gz_mb = sum(map(len, raw)) / 1e6, sum(map(len, bodies)) / 1e6
    total = args.chunks * args.records
    print(
        f"payload: {total:,} records, {raw_mb:.1f} MB JSON ({raw_mb * 1e6 / total:.0f} B/record), "
        f"{gz_mb:.1f} MB gzip, {args.chunks} chunks x {args.records}, {args.threads} threads, "
        f"{'https' if args.tls else 'http'}"
    )

    process, info = start(args.tls)
    try:
        post_all(info, bodies[: min(4, len(bodies))], args.threads, "warmup")  # warm connections and code
        cpu_before, began = cpu_seconds(process.pid), time.perf_counter()
        statuses = post_all(info, bodies, args.threads, "bench")
        elapsed = time.perf_counter() - began
        cpu_after = cpu_seconds(process.pid)
        admin = requests.get(
            f"{info['url']}/__sandbox/staging/bench",
            params={"count_only": "true"},
            verify=info["ca_bundle"] or True,
            timeout=60,
        ).json()
        batch = next(
            b
            for b in requests.get(
                f"{info['url']}/__sandbox/batches", verify=info["ca_bundle"] or True, timeout=60
            ).json()
            if b["batchId"] == "bench"
        )
    finally:
        process.terminate()
        process.wait(timeout=15)

    warm = min(4, len(bodies)) * args.records
    if cpu_before is not None and cpu_after is not None:
        server_cpu = cpu_after - cpu_before
        print(
            f"server CPU: {server_cpu:.2f} s ({server_cpu / elapsed:.0%} of one core; "
            f"{total / server_cpu:,.0f} records per server CPU-second)"
        )
    print(
        f"elapsed: {elapsed:.2f} s  ->  {total / elapsed:,.0f} records/s, "
        f"{raw_mb / elapsed:.1f} MB/s JSON, {gz_mb / elapsed:.1f} MB/s gzip on the wire"
    )
    ok = (
        statuses.count(200) == args.chunks
        and admin["count"] == total + warm
        and batch["records"] == total
        and batch["missing_sequences"] == []
        and batch["redeliveries"] == 0
    )
    print(
        f"check: {statuses.count(200)}/{args.chunks} answered 200, admin count {admin['count']:,} "
        f"(expected {total + warm:,} incl. warm-up), batch records {batch['records']:,}: "
        f"{'OK' if ok else 'FAIL'}"
    )
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
