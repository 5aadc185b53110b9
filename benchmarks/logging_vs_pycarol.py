"""Logging into a Carol long task: pycarol 2.56.15's ``CarolHandler`` vs ``CarolLogHandler``, one run.

    .venv/bin/python benchmarks/logging_vs_pycarol.py [--records 10000] [--pycarol-records N]
    .venv/bin/python benchmarks/logging_vs_pycarol.py --rtt-ms 0,20,80 [--link auto]

One ``carol-sandbox --tls`` process serves both sides and is reset between them. Each side runs in its
own subprocess (pycarol in ``.venv-pycarol``) that logs ``--records`` INFO records to a new long task
and closes its handler. Reported per side: wall time the handler added to the logging program (time in
the logging calls plus the drain at close, minus the same loop with a ``NullHandler``), caller time per
record (wall, and the calling thread's CPU, which other processes' load on the box does not inflate),
HTTP requests the sandbox received for the task's logs, and records the task holds. Every record
must be received exactly once, else the script exits 1.

With ``--rtt-ms`` both sides log behind a link with that round-trip time (``benchmarks/_network.py``;
the output names the mechanism and the RTT measured). pycarol sends one request per record over a new
TLS connection, so it logs ``--pycarol-records`` records (200 by default there) and the figures to
compare are per record.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYCAROL_PYTHON = ROOT / ".venv-pycarol" / "bin" / "python"
HELPER = ROOT / "benchmarks" / "_pycarol_log.py"
WAN_PYCAROL_RECORDS = 200
Wrap = Callable[[list[str]], list[str]]


def run_side(
    python: Path, side: str, info: dict, task_id: str, records: int, env: dict, wrap: Wrap = list
) -> dict:
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
    done = subprocess.run(wrap(command), env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{side} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(
    sandbox: Any,
    python: Path,
    side: str,
    records: int,
    env: dict,
    client: dict | None = None,
    wrap: Wrap = list,
) -> dict:
    """One side logs ``records`` records to a new task (through ``client``/``wrap``: the link); check them."""
    sandbox.reset()
    task_id = sandbox.create_task([{"status": "RUNNING", "after": 0}])
    result = run_side(python, side, client or sandbox.info, task_id, records, env, wrap)
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
    parser.add_argument("--rtt-ms", help="comma-separated round-trip times, e.g. 0,20,80 (WAN mode)")
    parser.add_argument("--link", default="auto", choices=["auto", "netem", "tun", "relay"])
    args = parser.parse_args()
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
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
        if args.rtt_ms:
            run_wan(args, sandbox, env)
            return
        print("link: loopback (no added latency; use --rtt-ms for a WAN link)")
        pycarol = measure(sandbox, PYCAROL_PYTHON, "pycarol", args.pycarol_records or args.records, env)
        ours = measure(sandbox, Path(sys.executable), "ours", args.records, env)
    finally:
        sandbox.session.close()
        stop_sandbox(process)
        shutil.rmtree(work, ignore_errors=True)
    report(pycarol, ours)


def run_wan(args: argparse.Namespace, sandbox: Any, env: dict) -> None:
    """Both sides behind the link at each RTT; one table row per side and RTT."""
    from benchmarks._network import format_probe, wan_link

    rows = []
    with wan_link(args.link) as link:
        port = link.expose(sandbox.port)
        client = {**sandbox.info, "port": port, "url": f"https://127.0.0.1:{port}"}
        for rtt in (float(value) for value in args.rtt_ms.split(",")):
            link.set_rtt(rtt)
            print(link.describe())
            print(f"  {format_probe(link.probe(port, ca_bundle=sandbox.ca_bundle))}")
            records = args.pycarol_records or WAN_PYCAROL_RECORDS
            pycarol = measure(sandbox, PYCAROL_PYTHON, "pycarol", records, env, client, link.wrap)
            ours = measure(sandbox, Path(sys.executable), "ours", args.records, env, client, link.wrap)
            rows += [(rtt, "pycarol", pycarol), (rtt, "ours", ours)]
    print(f"\nload average {os.getloadavg()[0]:.2f}")
    print(
        f"{'rtt ms':>6} {'':8} {'records':>8} {'added s':>9} {'added us/rec':>13} {'caller us/rec':>14} "
        f"{'requests':>9} {'received':>9} once"
    )
    for rtt, name, row in rows:
        print(
            f"{rtt:>6g} {name:8} {row['records']:>8} {row['added_seconds']:>9.3f} "
            f"{row['added_seconds'] / row['records'] * 1e6:>13.1f} {row['caller_us_per_record']:>14.1f} "
            f"{row['requests']:>9} {row['received']:>9} {row['exactly_once']}"
        )
    print(json.dumps([{"rtt_ms": rtt, "side": name, **row} for rtt, name, row in rows]))
    if not all(row["exactly_once"] for _rtt, _name, row in rows):
        sys.exit("some records were lost or duplicated")


def report(pycarol: dict, ours: dict) -> None:
    """The loopback table, as before."""
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
