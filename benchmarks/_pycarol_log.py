"""Benchmark helper for ``logging_vs_pycarol.py``: log records through a handler, in one process.

Run inside ``.venv-pycarol`` with ``--side pycarol`` (pycarol 2.56.15's ``CarolHandler``) or inside our
venv with ``--side ours`` (``CarolLogHandler``). Prints one JSON line: records, seconds spent in the
logging calls (wall and the calling thread's CPU), seconds to drain at close, and the same loop with a
``NullHandler`` (baseline).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time


def log_loop(logger: logging.Logger, records: int) -> tuple[float, float]:
    """Wall and CPU seconds of the calling thread for ``records`` logging calls."""
    started, cpu = time.perf_counter(), time.thread_time()
    for number in range(records):
        logger.info("record %05d of the benchmark", number)
    return time.perf_counter() - started, time.thread_time() - cpu


def make_handler(side: str, info: dict, task_id: str) -> logging.Handler:
    if side == "pycarol":
        from _pycarol_send import pycarol_client  # a sibling script: run as benchmarks/_pycarol_log.py
        from pycarol import CarolHandler

        return CarolHandler(pycarol_client(info), task_id=task_id)
    from airflow_provider_carol.log import CarolLogHandler
    from airflow_provider_carol.sandbox.control import Sandbox

    os.environ["AIRFLOW_CONN_CAROL_BENCH"] = Sandbox(info).connection_json("api_key")
    return CarolLogHandler("carol_bench", task_id=task_id)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--side", choices=["pycarol", "ours"], required=True)
    parser.add_argument("--info", required=True, help="the sandbox's start-up JSON")
    parser.add_argument("--task-id", required=True)
    parser.add_argument("--records", type=int, required=True)
    args = parser.parse_args()
    info = json.loads(args.info)

    baseline_logger = logging.getLogger("bench.baseline")
    baseline_logger.propagate = False
    baseline_logger.setLevel(logging.INFO)
    baseline_logger.addHandler(logging.NullHandler())
    baseline, baseline_cpu = log_loop(baseline_logger, args.records)

    handler = make_handler(args.side, info, args.task_id)  # set-up (imports, login) is not timed
    logger = logging.getLogger("bench.carol")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    logging_seconds, logging_cpu = log_loop(logger, args.records)
    started = time.perf_counter()
    handler.close()  # ours: send what is queued; pycarol: nothing is queued
    close_seconds = time.perf_counter() - started
    json.dump(
        {
            "records": args.records,
            "logging_seconds": logging_seconds,
            "close_seconds": close_seconds,
            "baseline_seconds": baseline,
            "logging_cpu_seconds": logging_cpu,
            "baseline_cpu_seconds": baseline_cpu,
        },
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
