"""Logging into a Carol long task: pycarol 2.56.15's ``CarolHandler`` vs ``CarolLogHandler``, one run.

    .venv/bin/python benchmarks/logging_vs_pycarol.py [--records 10000] [--pycarol-records N]

One ``carol-sandbox --tls`` process serves both sides and is reset between them. Each side runs in its
own subprocess (pycarol in ``.venv-pycarol``) that logs ``--records`` INFO records to a new long task
and closes its handler. Reported per side: wall time the handler added to the logging program (time in
the logging calls plus the drain at close, minus the same loop with a ``NullHandler``), caller time per
record (wall, and the calling thread's CPU, which other processes' load on the box does not inflate),
HTTP requests the sandbox received for the task's logs, and records the task holds. Every record
must be received exactly once, else the script exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYCAROL_PYTHON = ROOT / ".venv-pycarol" / "bin" / "python"
HELPER = ROOT / "benchmarks" / "_pycarol_log.py"


def run_side(python: Path, side: str, info: dict, task_id: str, records: int, env: dict) -> dict:
    command = [
        str(python),
        str(HELPER),
        "--side",
        side,
        "--info",
        json.dumps(info),
        "--task-id",
        task_id,
        "--records",
        str(records),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{side} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(sandbox: object, python: Path, side: str, records: int, env: dict) -> dict:
    sandbox.reset()
    task_id = sandbox.create_task([{"status": "RUNNING", "after": 0}])
    result = run_side(python, side, sandbox.info, task_id, records, env)
    path = f"/api/v1/tasks/{task_id}/logs"
    result["requests"] = sum(1 for r in sandbox.requests() if r["method"] == "POST" and r["path"] == path)
    messages = Counter(entry["mdmLogMessage"] for entry in sandbox.task(task_id)["logs"])
    expected = {f"record {n:05d} of the benchmark" for n in range(records)}
    result["received"] = sum(messages.values())
    result["exactly_once"] = set(messages) == expected and all(count == 1 for count in messages.values())
    added = result["logging_seconds"] + result["close_seconds"] - result["baseline_seconds"]
    result["added_seconds"] = added
    result["caller_us_per_record"] = (result["logging_seconds"] - result["baseline_seconds"]) / records * 1e6
    cpu = result["logging_cpu_seconds"] - result["baseline_cpu_seconds"]
    result["caller_cpu_us_per_record"] = cpu / records * 1e6
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument(
        "--pycarol-records",
        type=int,
        default=None,
        help="records for pycarol (default: --records); it sends one request per record",
    )
    args = parser.parse_args()
    if not PYCAROL_PYTHON.exists():
        sys.exit(f"{PYCAROL_PYTHON} is missing: run scripts/bootstrap-pycarol.sh first")

    sys.path.insert(0, str(ROOT))
    from airflow_provider_carol.sandbox.control import Sandbox
    from airflow_provider_carol.sandbox.pytest_plugin import start_sandbox, stop_sandbox

    work = Path(tempfile.mkdtemp(prefix="carol-bench-logging-"))
    process, info = start_sandbox(work, tls=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(
        AIRFLOW_HOME=str(work / "airflow"),
        REQUESTS_CA_BUNDLE=info["ca_bundle"],
        SSL_CERT_FILE=info["ca_bundle"],
        PYTHONPATH=str(ROOT),
        LONGTASKID="",
    )
    sandbox = Sandbox(info)
    try:
        pycarol = measure(sandbox, PYCAROL_PYTHON, "pycarol", args.pycarol_records or args.records, env)
        ours = measure(sandbox, Path(sys.executable), "ours", args.records, env)
    finally:
        sandbox.session.close()
        stop_sandbox(process)

    print(f"carol-sandbox --tls on 127.0.0.1; load average {os.getloadavg()[0]:.2f}")
    columns = ("records", "added s", "caller us/rec", "cpu us/rec", "requests", "received")
    print(
        f"{'':9} {columns[0]:>8} {columns[1]:>9} {columns[2]:>14} {columns[3]:>11} {columns[4]:>9} "
        f"{columns[5]:>9} once"
    )
    for name, row in (("pycarol", pycarol), ("ours", ours)):
        print(
            f"{name:9} {row['records']:>8} {row['added_seconds']:>9.3f} "
            f"{row['caller_us_per_record']:>14.1f} {row['caller_cpu_us_per_record']:>11.1f} "
            f"{row['requests']:>9} {row['received']:>9} "
            f"{row['exactly_once']}"
        )
    per_record_pycarol = pycarol["added_seconds"] / pycarol["records"]
    per_record_ours = ours["added_seconds"] / ours["records"]
    print(
        f"requests per record: pycarol {pycarol['requests'] / pycarol['records']:.3f}, "
        f"ours {ours['requests'] / ours['records']:.4f} "
        f"({(pycarol['requests'] / pycarol['records']) / (ours['requests'] / ours['records']):.0f}x fewer)"
    )
    print(
        f"added wall time per record: pycarol {per_record_pycarol * 1e6:.0f} us, ours "
        f"{per_record_ours * 1e6:.1f} us ({per_record_pycarol / per_record_ours:.0f}x less)"
    )
    print(json.dumps({"pycarol": pycarol, "ours": ours}))
    if not (pycarol["exactly_once"] and ours["exactly_once"]):
        sys.exit("some records were lost or duplicated")


if __name__ == "__main__":
    main()
