"""Soak: send 1,000,000 records while 5% of Carol's answers fail at random (seeded); prove exactly once.

    .venv/bin/python benchmarks/soak_staging.py [--records 1000000] [--rate 0.05] [--seed 8]
        [--chunk-size 1000] [--pycarol-records 50000 | --pycarol-records 0] [--http]

One ``carol-sandbox --tls`` (``--http``: plain HTTP, without the pycarol case) serves both sides.
Every request to the staging endpoints (intake chunks and the batch summary) fails with probability
``--rate``, spread evenly over seven faults: 429 (with ``Retry-After: 0``), 500, 502, 503, 504,
connection dropped before processing and dropped after processing (the sandbox's seeded ``rate``
faults, so a run is reproducible). Our hook streams a Parquet file of ``--records`` rows through
``CarolHook.send_to_staging``; then the sandbox's admin API must show every id exactly once, every
(batchId, sequence) once, no gap, no conflicting redelivery and one summary whose totals match, else
the script exits 1. pycarol 2.56.15 (its own venv) then sends ``--pycarol-records`` records under the
same faults, for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks._pycarol_send import write_parquet  # noqa: E402

PYCAROL_PYTHON = ROOT / ".venv-pycarol" / "bin" / "python"
STAGING_GLOB = "/api/v*/staging/*"  # intake (v2/staging/intake/x) and summary (v3/staging/batch/x/summary)
FAULT_KINDS = [
    {"status": 429, "retry_after": 0},
    {"status": 500},
    {"status": 502},
    {"status": 503},
    {"status": 504},
    {"drop": "before"},
    {"drop": "after"},
]


def add_random_faults(sandbox, rate: float, seed: int) -> None:
    """Seven seeded ``rate`` faults whose combined probability of hitting a request is ``rate``."""
    each = 1 - (1 - rate) ** (1 / len(FAULT_KINDS))
    for offset, kind in enumerate(FAULT_KINDS):
        spec = {"path": STAGING_GLOB, "method": "POST", "times": 10**9, "rate": each, "seed": seed + offset}
        sandbox._admin("POST", "faults", json={**spec, **kind})


def fault_counts(sandbox) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entry in sandbox.requests():
        if entry["fault"]:
            key = str(entry["status"]) if entry["fault"] == "status" else entry["fault"]
            counts[key] = counts.get(key, 0) + 1
    return counts


def stored_ids(sandbox, staging: str, total: int, page: int = 200_000) -> list[int]:
    ids: list[int] = []
    for offset in range(0, max(total, 1), page):
        answer = sandbox._admin("GET", f"staging/{staging}", params={"offset": offset, "limit": page})
        ids.extend(row["record"]["id"] for row in answer["records"])
    return ids


def verify(sandbox, staging: str, records: int) -> tuple[list[str], dict]:
    """Problems (empty when exactly once) and the batch's accounting."""
    problems = []
    batches = [b for b in sandbox.batches() if staging in b["stagings"]]
    if len(batches) != 1:
        return [f"expected one batch, got {len(batches)}"], {}
    batch = batches[0]
    if batch["records"] != records:
        problems.append(f"{batch['records']} records stored, expected {records}")
    if batch["missing_sequences"] or batch["conflicts"]:
        missing = batch["missing_sequences"][:10]
        problems.append(f"missing sequences {missing}, conflicts {batch['conflicts']}")
    if batch["totals_match"] is not True or batch["summaries_posted"] < 1:
        problems.append(f"summary {batch['summary']} does not match {batch['records']} records")
    ids = stored_ids(sandbox, staging, records)
    if len(ids) != records or len(set(ids)) != records or min(ids, default=0) != 0:
        problems.append(f"{len(ids)} rows, {len(set(ids))} distinct ids")
    return problems, batch


def run_ours(sandbox, path: Path, records: int, chunk_size: int) -> dict:
    """Send with our hook; a send that fails is reported (and fails verification), not raised."""
    from airflow_provider_carol.exceptions import CarolError
    from airflow_provider_carol.hooks.carol import CarolHook

    os.environ["AIRFLOW_CONN_CAROL_SOAK"] = sandbox.connection_json("api_key")
    hook = CarolHook("carol_soak", retry_limit=8, retry_delay=0.05, max_retry_wait=1.0)
    hook.get_current()
    started = time.perf_counter()
    try:
        summary = hook.send_to_staging("soak", path=str(path), chunk_size=chunk_size, max_in_flight=4)
    except CarolError as exc:
        return {
            "error": " ".join(str(exc).split())[:400],
            "requests": None,
            "seconds": time.perf_counter() - started,
        }
    finally:
        hook.close()
    return {
        "records": summary.records,
        "requests": summary.requests,
        "seconds": time.perf_counter() - started,
    }


def run_pycarol(sandbox, info: dict, records: int, env: dict) -> dict:
    command = [
        str(PYCAROL_PYTHON),
        str(ROOT / "benchmarks" / "_pycarol_send.py"),
        "--info",
        json.dumps(info),
        "--records",
        str(records),
        "--mode",
        "default",
        "--staging",
        "soak_pycarol",
    ]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False, timeout=1800)
    seconds = time.perf_counter() - started
    error = (done.stderr.strip().splitlines() or [""])[-1][:200]
    batches = [b for b in sandbox.batches() if "soak_pycarol" in b["stagings"]]
    return {
        "exit": done.returncode,
        "error": error,
        "seconds": seconds,
        "stored": sandbox.staging_count("soak_pycarol"),
        "summaries": sum(1 for b in batches if b["summary"] is not None),
        "redeliveries": sum(b["redeliveries"] for b in batches),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--chunk-size", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--pycarol-records", type=int, default=50_000, help="0 skips pycarol")
    parser.add_argument("--http", action="store_true", help="plain HTTP instead of TLS")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    args = parser.parse_args()

    from airflow_provider_carol.sandbox.control import Sandbox
    from airflow_provider_carol.sandbox.pytest_plugin import start_sandbox, stop_sandbox

    work = Path(tempfile.mkdtemp(prefix="carol-soak-"))
    os.environ.setdefault("AIRFLOW_HOME", str(work / "airflow"))
    process, info = start_sandbox(work, tls=not args.http)
    sandbox = Sandbox(info)
    try:
        path = work / "soak.parquet"
        write_parquet(path, args.records)
        add_random_faults(sandbox, args.rate, args.seed)
        ours = run_ours(sandbox, path, args.records, args.chunk_size)
        time.sleep(0.5)  # requests dropped "after" finish processing server-side
        faults = fault_counts(sandbox)
        staging_requests = sum(1 for e in sandbox.requests() if "/staging/" in e["path"])
        problems, batch = verify(sandbox, "soak", args.records)
        if "error" in ours:
            problems.insert(0, f"the send failed: {ours['error']}")
        figures = {
            "records": args.records,
            "chunks": ours["requests"]
            if ours["requests"] is not None
            else -(-args.records // args.chunk_size),
            "staging_requests": staging_requests,
            "faults_injected": sum(faults.values()),
            "faults": faults,
            "redeliveries": batch.get("redeliveries"),
            "exactly_once": not problems,
            "summary_exact": batch.get("totals_match") is True,
            "seconds": round(ours["seconds"], 2),
            "records_per_s": None if "error" in ours else round(args.records / ours["seconds"]),
        }
        pycarol = None
        if args.pycarol_records and PYCAROL_PYTHON.exists() and not args.http:  # pycarol speaks https only
            env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
            env.update(REQUESTS_CA_BUNDLE=info["ca_bundle"], SSL_CERT_FILE=info["ca_bundle"])
            before = sum(fault_counts(sandbox).values())
            pycarol = run_pycarol(sandbox, info, args.pycarol_records, env)
            pycarol["faults_injected"] = sum(fault_counts(sandbox).values()) - before
    finally:
        stop_sandbox(process)
        shutil.rmtree(work, ignore_errors=True)
    report(args, figures, problems, pycarol)
    if problems:
        sys.exit("VERIFICATION FAILED: " + "; ".join(problems))


def report(args: argparse.Namespace, figures: dict, problems: list[str], pycarol: dict | None) -> None:
    faults = ", ".join(f"{kind} x{count}" for kind, count in sorted(figures["faults"].items()))
    print(
        f"\nSoak: {figures['records']:,} records in {figures['chunks']:,} chunks of {args.chunk_size}, "
        f"{100 * args.rate:.0f}% of staging requests failing at random (seed {args.seed}), "
        f"carol-sandbox {'(plain HTTP)' if args.http else '--tls'}, {os.cpu_count()} cores"
    )
    print(f"  staging requests sent : {figures['staging_requests']:,}")
    print(f"  faults injected       : {figures['faults_injected']:,} ({faults})")
    redelivered = figures["redeliveries"]
    print(f"  chunks re-delivered   : {redelivered} (replaced by (batchId, sequence), not doubled)")
    print(f"  exactly once          : {'yes' if figures['exactly_once'] else 'NO: ' + '; '.join(problems)}")
    print(f"  summary exact         : {'yes' if figures['summary_exact'] else 'NO'}")
    rate = figures["records_per_s"]
    speed = f"{rate:,} records/s" if rate is not None else "the send failed"
    print(f"  time                  : {figures['seconds']:.1f} s ({speed})")
    if pycarol is not None:
        outcome = "finished" if pycarol["exit"] == 0 else f"failed ({pycarol['error']})"
        print(
            f"\npycarol 2.56.15, {args.pycarol_records:,} records under the same faults: {outcome} after "
            f"{pycarol['seconds']:.1f} s; {pycarol['faults_injected']} faults hit it; "
            f"{pycarol['stored']:,} records stored, {pycarol['redeliveries']} chunks re-sent, "
            f"{pycarol['summaries']} batch summaries"
        )
    if args.json:
        print(json.dumps({**figures, "pycarol": pycarol}))


if __name__ == "__main__":
    main()
