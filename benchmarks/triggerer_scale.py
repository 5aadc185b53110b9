"""Carol waits in one triggerer: one hook per trigger (the baseline) vs the shared client, one run.

    .venv/bin/python benchmarks/triggerer_scale.py [--sizes 10,100,1000,5000]
        [--modes http-password,tls-password,http-api_key] [--task-seconds 25] [--cap 900]
        [--baseline 6b8208a] [--baseline-max 1000]

One ``carol-sandbox`` serves each mode (plain HTTP or ``--tls``; ``password`` or ``api_key`` auth) and
is reset before each run. A run is a subprocess (``benchmarks/_triggerer_child.py``) that plays one
triggerer: N ``CarolTaskTrigger``s on one event loop, ``poll_interval=2`` and ``max_poll_interval=5``,
each on its own Carol task. Every task is RUNNING and turns COMPLETED ``--task-seconds`` after the run
starts (the tasks end over the few seconds it took to create them, in creation order). The baseline is
the provider package at git revision ``--baseline`` (``git archive``; the design before the shared
client, where every trigger's hook had its own client, token and login); the other is this checkout.
The child imports one or the other through ``PYTHONPATH``. A third run, "httpx alone", makes the same
polls (same pauses, 10 connections, 10 in flight) with bare httpx and no provider code: the floor the
HTTP client sets. All run each size back to back; the baseline only up to ``--baseline-max`` waits, and
any run is stopped after ``--cap`` seconds.

Printed per run: wall time until every wait ended; logins (password grants) and task GETs the sandbox
received; peak TCP connections open from the child to the sandbox; the child's CPU in the 10 s before
the first task ends (steady state: every wait polls every 5 s), as a share of one core and per
wait-minute; peak RSS (Airflow's imports included); and lateness, from each task's end in the sandbox
to its trigger's event (median, p99, max). Every wait must report COMPLETED, else the script exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHILD = ROOT / "benchmarks" / "_triggerer_child.py"
#: The last commit before the shared client (each trigger's hook built its own client and token).
BASELINE = "6b8208a"
HOLD = 3600.0
STEADY = 10.0
TOKEN_PATH = "/api/v5/oauth2/token"
sys.path.insert(0, str(ROOT))

from airflow_provider_carol.sandbox.control import Sandbox  # noqa: E402
from airflow_provider_carol.sandbox.pytest_plugin import start_sandbox, stop_sandbox  # noqa: E402


@dataclass
class Run:
    """What one design did with N waits (None: the run hit the cap)."""

    mode: str
    size: int
    design: str
    figures: dict[str, float] | None
    note: str = ""


def extract(revision: str, into: Path) -> Path:
    """The ``airflow_provider_carol`` package as it was at ``revision``, unpacked under ``into``."""
    archive = into / "baseline.tar"
    with archive.open("wb") as out:
        subprocess.run(
            ["git", "-C", str(ROOT), "archive", revision, "airflow_provider_carol"], stdout=out, check=True
        )
    with tarfile.open(archive) as tar:
        tar.extractall(into / "baseline", filter="data")
    return into / "baseline"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run_once(
    sandbox: Sandbox, design: tuple[Path, list[str]], env: dict[str, str], size: int, args: Any, work: Path
) -> dict:
    """Create ``size`` tasks, start the child, make every task end ``--task-seconds`` later; its figures."""
    sandbox.reset()
    schedule = [{"status": "RUNNING", "after": 0}, {"status": "COMPLETED", "after": HOLD}]
    created: list[tuple[float, str]] = []
    for _ in range(size):
        before = time.time()  # the task's clock starts after this: its end is at most this + HOLD - offset
        created.append((before, sandbox.create_task(schedule)))
    ids_file, out_file, err_file = work / "task_ids.json", work / "child.out", work / "child.err"
    ids_file.write_text(json.dumps([task_id for _, task_id in created]))
    package, flags = design
    command = [sys.executable, str(CHILD), "--task-ids", str(ids_file), "--port", str(sandbox.port), *flags]
    # Output to files: a pipe nobody reads while waiting would fill up and block the child.
    with out_file.open("wb") as out, err_file.open("wb") as err:
        started = time.time()
        child = subprocess.Popen(command, env={**env, "PYTHONPATH": str(package)}, stdout=out, stderr=err)
    # Every task now ends --task-seconds after the start, in creation order (clock offset, one call).
    offset = sandbox.advance_clock(HOLD - args.task_seconds - (started - created[0][0]))
    ends = [before + HOLD - offset for before, _ in created]
    try:
        code = child.wait(timeout=args.cap)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
        log = sandbox.requests()
        return {"capped": True, "logins": sum(1 for r in log if r["path"] == TOKEN_PATH), "log": log}
    if code != 0:
        sys.exit(f"the child failed (exit {code}):\n{err_file.read_text(errors='replace')[-3000:]}")
    result = json.loads(out_file.read_text().strip().splitlines()[-1])
    if Counter(result["statuses"]) != {"COMPLETED": size}:
        sys.exit(f"not every wait reported COMPLETED: {Counter(result['statuses'])}")
    return figures(sandbox.requests(), result, started, ends)


def figures(log: list[dict], child: dict, started: float, ends: list[float]) -> dict:
    lateness = [event - end for event, end in zip(child["event_times"], ends, strict=True)]
    # CPU over the STEADY seconds before the first task ends, between the samples around that window
    # (a blocked process may leave fewer samples than asked for; the sampling thread needs the GIL).
    first_end, samples = min(ends), child["samples"]
    t0, cpu0 = max((s for s in samples if s[0] <= first_end - STEADY), default=samples[0])
    t1, cpu1 = min((s for s in samples if s[0] >= first_end), default=samples[-1])
    share = (cpu1 - cpu0) / (t1 - t0) if t1 > t0 else float("nan")
    return {
        "wall_s": max(child["event_times"]) - started,
        "logins": sum(1 for r in log if r["path"] == TOKEN_PATH),
        "task_gets": sum(1 for r in log if r["method"] == "GET" and r["path"].startswith("/api/v1/tasks/")),
        "peak_tcp": child["peak_connections"],
        "cpu_share": 100 * share,
        "cpu_ms_per_wait_min": 1000 * 60 * share / len(ends),
        "rss_mb": child["peak_rss_mb"],
        "late_median": statistics.median(lateness),
        "late_p99": percentile(lateness, 0.99),
        "late_max": max(lateness),
        "package": child["package"],
    }


COLUMNS = (
    ("wall_s", "wall s", "{:.1f}"),
    ("logins", "logins", "{:.0f}"),
    ("task_gets", "task GETs", "{:.0f}"),
    ("peak_tcp", "peak TCP", "{:.0f}"),
    ("cpu_share", "CPU % core", "{:.1f}"),
    ("cpu_ms_per_wait_min", "CPU ms/wait-min", "{:.1f}"),
    ("rss_mb", "peak RSS MB", "{:.0f}"),
    ("late_median", "late med s", "{:.1f}"),
    ("late_p99", "late p99 s", "{:.1f}"),
    ("late_max", "late max s", "{:.1f}"),
)


def table(runs: list[Run]) -> str:
    """A markdown table: one row per run, and a ratio row (baseline / shared) where both ran."""
    head = "| mode | waits | design | " + " | ".join(label for _, label, _ in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 3)]
    by_key = {(r.mode, r.size, r.design): r for r in runs}
    for run in runs:
        cells = [fmt.format(run.figures[key]) for key, _, fmt in COLUMNS] if run.figures else []
        cells = cells or [run.note] + [""] * (len(COLUMNS) - 1)
        lines.append(f"| {run.mode} | {run.size:,} | {run.design} | " + " | ".join(cells) + " |")
        base = by_key.get((run.mode, run.size, "baseline"))
        if run.design == "shared" and base and base.figures and run.figures:
            ratios = [ratio(base.figures[key], run.figures[key]) for key, _, _ in COLUMNS]
            lines.append(f"| {run.mode} | {run.size:,} | **baseline/shared** | " + " | ".join(ratios) + " |")
    return "\n".join(lines)


def ratio(base: float, ours: float) -> str:
    return f"{base / ours:.1f}x" if ours > 0 else ("=" if base == ours else "-")


def mode_env(sandbox: Sandbox, auth: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHON"))}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW_CONN_CAROL_DEFAULT=sandbox.connection_json(auth),
        # For --httpx-alone: the same sandbox with the API key (the floor's auth costs nothing per poll).
        CAROL_RAW=json.dumps(
            {
                "url": f"{sandbox.url}/api",
                "verify": sandbox.ca_bundle or True,
                "headers": {"x-auth-key": sandbox.api_key, "x-auth-connectorid": sandbox.connector_id},
            }
        ),
    )
    return env


def run_mode(
    mode: str, args: argparse.Namespace, designs: dict[str, tuple[Path, list[str]]], work: Path
) -> list[Run]:
    scheme, auth = mode.split("-", 1)
    home = work / mode / "airflow-home"
    home.mkdir(parents=True)
    process, info = start_sandbox(work / mode, tls=scheme == "tls")
    sandbox, runs = Sandbox(info), []
    try:
        for size in args.sizes:
            for design, package in designs.items():  # package: (PYTHONPATH, child flags)
                if design == "baseline" and size > args.baseline_max:
                    note = f"not run (over --baseline-max {args.baseline_max})"
                    runs.append(Run(mode, size, design, None, note))
                    continue
                result = run_once(sandbox, package, mode_env(sandbox, auth, home), size, args, work / mode)
                if result.get("capped"):
                    note = f"stopped after {args.cap:.0f} s, {result['logins']} logins by then"
                    runs.append(Run(mode, size, design, None, note))
                else:
                    runs.append(Run(mode, size, design, result))
                print(f"{mode} {size} {design}: {json.dumps(runs[-1].figures or runs[-1].note)}", flush=True)
    finally:
        sandbox.session.close()
        stop_sandbox(process)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--sizes", default="10,100,1000,5000", type=lambda s: [int(n) for n in s.split(",")])
    parser.add_argument("--modes", default="http-password,tls-password,http-api_key")
    parser.add_argument("--task-seconds", type=float, default=25.0)
    parser.add_argument("--cap", type=float, default=900.0, help="stop a run after this many seconds")
    parser.add_argument("--baseline", default=BASELINE, help="git revision of the earlier design")
    parser.add_argument("--baseline-max", type=int, default=1000, help="largest N the baseline runs")
    args = parser.parse_args()
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="triggerer-scale-") as tmp:
        work = Path(tmp)
        designs = {
            "baseline": (extract(args.baseline, work), []),
            "shared": (ROOT, []),
            "httpx alone": (ROOT, ["--httpx-alone"]),
        }
        for mode in args.modes.split(","):
            runs += run_mode(mode, args, designs, work)
    load = os.getloadavg()
    print(f"\nload average at the end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} (2 cores)\n")
    print(table(runs))


if __name__ == "__main__":
    main()
