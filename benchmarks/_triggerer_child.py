"""One triggerer-like process: N ``CarolTaskTrigger``s on one event loop until each yields its event.

Run by ``benchmarks/triggerer_scale.py`` with ``PYTHONPATH`` pointing at the provider design under test
(the baseline revision or this checkout); it uses only the triggers' public API, so both designs run
the same code here. With ``--httpx-alone`` it makes the same polls with bare httpx instead (the floor:
what the HTTP client costs at that rate, whatever the provider does). ``AIRFLOW_CONN_CAROL_DEFAULT``
names the sandbox. A sampling thread (so a blocked event loop cannot hide anything) records the
process's CPU time (less its own) and the TCP connections open to the sandbox every 0.25 s. Prints one
JSON line: which package ran, each event's wall-clock time and status, the samples, the peak number of
connections and the peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import threading
import time
from typing import Any

import psutil

SAMPLE_EVERY = 0.25


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Sampler(threading.Thread):
    """CPU seconds and open TCP connections to ``port``, sampled off the event loop."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port, self.samples, self.peak_connections = port, [], 0
        self.stop = threading.Event()

    def run(self) -> None:
        process = psutil.Process()
        while not self.stop.is_set():
            open_now = sum(
                1
                for c in process.net_connections(kind="tcp")
                if c.raddr and c.raddr.port == self.port and c.status != psutil.CONN_LISTEN
            )
            self.peak_connections = max(self.peak_connections, open_now)
            # The process's CPU without this thread's own (psutil's /proc scans are not the triggers').
            self.samples.append((time.time(), cpu_seconds() - time.thread_time()))
            self.stop.wait(SAMPLE_EVERY)


async def triggers(task_ids: list[str], args: argparse.Namespace) -> list[tuple[float, str]]:
    """The design under test: one ``CarolTaskTrigger`` per task, as the triggerer runs them."""
    from airflow_provider_carol.triggers.tasks import CarolTaskTrigger

    async def first_event(trigger: CarolTaskTrigger) -> tuple[float, str]:
        async for event in trigger.run():
            return time.time(), str(event.payload["status"])
        raise RuntimeError("the trigger ended without an event")

    waits = [
        CarolTaskTrigger(t, poll_interval=args.interval, max_poll_interval=args.max_interval)
        for t in task_ids
    ]
    return await asyncio.gather(*(first_event(t) for t in waits))


async def httpx_alone(task_ids: list[str], args: argparse.Namespace) -> list[tuple[float, str]]:
    """The floor: the same polls (same pauses, 10 connections, 10 in flight) with bare httpx, no provider."""
    import httpx

    raw = json.loads(os.environ["CAROL_RAW"])
    gate = asyncio.Semaphore(10)
    limits = httpx.Limits(max_connections=10, max_keepalive_connections=10)

    async with httpx.AsyncClient(verify=raw["verify"], headers=raw["headers"], limits=limits) as client:

        async def wait(task_id: str) -> tuple[float, str]:
            pause = args.interval
            while True:
                try:
                    async with gate:
                        answer = await client.get(f"{raw['url']}/v1/tasks/{task_id}")
                except httpx.TransportError:  # a keep-alive connection the server just closed: again
                    continue
                status = answer.raise_for_status().json()["mdmTaskStatus"]
                if status in ("COMPLETED", "FAILED", "CANCELED"):
                    return time.time(), status
                await asyncio.sleep(pause)
                pause = min(pause * 1.5, args.max_interval)

        return await asyncio.gather(*(wait(t) for t in task_ids))


async def run(task_ids: list[str], args: argparse.Namespace) -> dict[str, Any]:
    import airflow_provider_carol
    import airflow_provider_carol.triggers.tasks  # the same imports (and RSS) in both modes

    sampler = Sampler(args.port)
    sampler.start()
    events = await (httpx_alone if args.httpx_alone else triggers)(task_ids, args)
    sampler.stop.set()
    sampler.join()
    return {
        "package": "httpx alone" if args.httpx_alone else airflow_provider_carol.__file__,
        "event_times": [t for t, _ in events],
        "statuses": [s for _, s in events],
        "samples": sampler.samples,
        "peak_connections": sampler.peak_connections,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--task-ids", required=True, help="a file holding a JSON list of Carol task ids")
    parser.add_argument("--port", type=int, required=True, help="the sandbox's port")
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--max-interval", type=float, default=5.0)
    parser.add_argument(
        "--httpx-alone", action="store_true", help="bare httpx polls (CAROL_RAW), no triggers"
    )
    args = parser.parse_args()
    with open(args.task_ids) as ids:
        task_ids = json.load(ids)
    result = asyncio.run(run(task_ids, args))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
