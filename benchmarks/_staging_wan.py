"""WAN mode of ``staging_vs_pycarol.py`` (``--rtt-ms``): the three senders behind a link, per RTT.

Kept apart from the loopback benchmark so that one stays as it was. One ``carol-sandbox --tls`` on
127.0.0.1 serves every run; the clients run behind ``benchmarks/_network.py``'s link, whose RTT changes
between blocks. Each run is verified through the admin API (every id exactly once, one complete batch,
matching summary) before the next starts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks._network import Link, format_probe, wan_link
from benchmarks.staging_vs_pycarol import PYCAROL_PYTHON, ROOT, run_child, verify

CASES = ("pycarol send_data (default)", "pycarol send_data(async_send=True)", "airflow-provider-carol")
CASE_KEYS = dict(zip(("default", "async", "ours"), CASES, strict=True))


def commands(args: argparse.Namespace, client_info: dict) -> dict[str, list[str]]:
    """The child command of each case, pointed at the sandbox through the link."""
    pycarol = [
        str(PYCAROL_PYTHON),
        str(ROOT / "benchmarks" / "_pycarol_send.py"),
        "--info",
        json.dumps(client_info),
        "--records",
        str(args.records),
        *(["--trace"] if args.trace else []),
        "--mode",
    ]
    ours = [
        sys.executable,
        str(ROOT / "benchmarks" / "staging_vs_pycarol.py"),
        "--child",
        "ours",
        "--info",
        json.dumps(client_info),
        "--records",
        str(args.records),
        "--chunk-size",
        str(args.chunk_size),
        "--max-in-flight",
        str(args.max_in_flight),
        *(["--trace"] if args.trace else []),
    ]
    every = dict(zip(CASES, ([*pycarol, "default"], [*pycarol, "async"], ours), strict=True))
    wanted = {CASE_KEYS[key.strip()] for key in args.cases.split(",")}
    return {name: command for name, command in every.items() if name in wanted}


def run_wan(args: argparse.Namespace) -> None:
    """Every RTT of ``--rtt-ms``: probe the link, then ``--repeat`` interleaved rounds of the 3 cases."""
    from airflow_provider_carol.sandbox.control import Sandbox
    from airflow_provider_carol.sandbox.pytest_plugin import start_sandbox, stop_sandbox

    if not PYCAROL_PYTHON.exists():
        sys.exit(f"{PYCAROL_PYTHON} is missing: run scripts/bootstrap-pycarol.sh first.")
    rtts = [float(value) for value in args.rtt_ms.split(",")]
    work = Path(tempfile.mkdtemp(prefix="carol-bench-wan-"))
    process, info = start_sandbox(work, tls=True)
    sandbox = Sandbox(info)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(
        AIRFLOW_HOME=str(work / "airflow"),
        REQUESTS_CA_BUNDLE=info["ca_bundle"],
        SSL_CERT_FILE=info["ca_bundle"],
        PYTHONPATH=str(ROOT),
    )
    results: dict[float, dict[str, list[dict]]] = {}
    probes: dict[float, dict] = {}
    try:
        with wan_link(args.link) as link:
            port = link.expose(info["port"])
            client_info = {**info, "port": port, "url": f"https://127.0.0.1:{port}"}
            cases = commands(args, client_info)
            for rtt in rtts:
                link.set_rtt(rtt)
                print(link.describe())
                probes[rtt] = link.probe(port, ca_bundle=info["ca_bundle"])
                print(f"  {format_probe(probes[rtt])}")
                results[rtt] = run_rtt(link, sandbox, cases, env, args, rtt)
            mechanism = link.describe().split(" - ")[0]
    finally:
        sandbox.session.close()
        stop_sandbox(process)
        shutil.rmtree(work, ignore_errors=True)
    report(args, rtts, results, probes, mechanism)


def run_rtt(
    link: Link, sandbox: Any, cases: dict[str, list[str]], env: dict, args: argparse.Namespace, rtt: float
) -> dict[str, list[dict]]:
    """``--repeat`` rounds; each round starts one case later, so no case always runs first."""
    runs: dict[str, list[dict]] = {name: [] for name in cases}
    names = list(cases)
    for attempt in range(args.repeat):
        shift = attempt % len(names)
        for name in names[shift:] + names[:shift]:
            sandbox.reset()
            link.stats()  # zero the link's counters
            result = run_child(link.wrap(cases[name]), env)
            result["link"] = link.stats()
            verify(sandbox, args.records, check_ids=True)
            runs[name].append(result)
            print(
                f"  rtt {rtt:g} ms run {attempt + 1} {name}: {result['records_per_s']:,.0f} records/s "
                f"in {result['seconds']:.2f} s, {result['link'].get('connections', '?')} TCP connections, "
                "verified",
                file=sys.stderr,
            )
    return runs


def median_of(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def report(
    args: argparse.Namespace,
    rtts: list[float],
    results: dict[float, dict[str, list[dict]]],
    probes: dict[float, dict],
    mechanism: str,
) -> None:
    """The table (medians over the repeats), the traces if asked, and the ratio as the last line."""
    print(
        f"\n{args.records:,} records (8 fields, nested dict, timestamp) to carol-sandbox --tls through the "
        f"{mechanism}; ours: chunks of {args.chunk_size}, {args.max_in_flight} in flight; median of "
        f"{args.repeat} interleaved runs; cores: {os.cpu_count()}, load average before: {args.load_before}"
    )
    header = f"{'case':<36} {'rtt ms':>6} {'measured':>8} {'records/s':>10} {'time s':>7} {'range s':>13}"
    print(f"{header} {'TCP conns':>9}  vs pycarol default")
    present = [name for name in CASES if name in results[rtts[0]]]
    for rtt in rtts:
        base = median_of(results[rtt].get(CASES[0]) or results[rtt][present[0]], "records_per_s")
        for name in present:
            runs = results[rtt][name]
            speed, seconds = median_of(runs, "records_per_s"), median_of(runs, "seconds")
            spread = f"{min(r['seconds'] for r in runs):.2f}-{max(r['seconds'] for r in runs):.2f}"
            connections = statistics.median(r["link"].get("connections", 0) for r in runs)
            print(
                f"{name:<36} {rtt:>6g} {probes[rtt]['request_median_ms']:>8.1f} {speed:>10,.0f} "
                f"{seconds:>7.2f} {spread:>13} {connections:>9.0f}  {speed / base:.1f}x"
            )
    if args.trace:
        print_traces(rtts, results)
    print(f"load average after: {' '.join(f'{value:.1f}' for value in os.getloadavg())}")
    top = max(rtts)
    if CASES[0] not in present or CASES[2] not in present:
        print("(ratios are against the first case run: pycarol's default send was not run)")
        return
    ratio = median_of(results[top][CASES[2]], "records_per_s") / median_of(
        results[top][CASES[0]], "records_per_s"
    )
    print(f"ratio_vs_pycarol_default={ratio:.1f} at rtt_ms={top:g}")


def print_traces(rtts: list[float], results: dict[float, dict[str, list[dict]]]) -> None:
    """Per RTT and sender, the median run's phases (seconds from the start of the send)."""
    print("\nwhere the time goes (median run; s from the start of the send; latency = gap between a thread's")
    print("consecutive intake responses):")
    for rtt in rtts:
        for name in results[rtt]:
            runs = sorted(results[rtt][name], key=lambda r: r["seconds"])
            trace = runs[len(runs) // 2].get("trace")
            if not trace:
                continue
            parts = [
                f"{trace['intake_requests']} intake requests on {trace['sending_threads']} thread(s)",
                f"{trace['connections']} new connections",
            ]
            for label, key in (
                ("first new connection", "first_connect_s"),
                ("first intake response", "first_intake_response_s"),
                ("last intake response", "last_intake_response_s"),
                ("summary response", "summary_response_s"),
            ):
                if trace[key] is not None:
                    parts.append(f"{label} {trace[key]:.2f}")
            if trace["request_latency_median_s"] is not None:
                latency = trace["request_latency_median_s"] * 1000
                ratio = f" = {latency / rtt:.1f} RTT" if rtt else ""
                parts.append(f"request latency median {latency:.0f} ms{ratio}")
            parts.append(f"total {trace['total_s']:.2f}")
            print(f"  rtt {rtt:g} {name}: " + ", ".join(parts))
