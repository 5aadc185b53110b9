"""Helpers for scripts/demo.sh: turn the sandbox's start-up line into connections, or summarise its state.

``--connection`` prints ``AIRFLOW_CONN_CAROL_DEFAULT``'s value (with the BigQuery emulator's endpoints when
the sandbox runs with ``--bigquery``); ``--summary`` prints what the sandbox received: requests, each
batch (records, sequences, whether its summary matched), the records per staging table and, with
``--bigquery``, the rows per table in the BigQuery emulator.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from typing import Any

from airflow_provider_carol.sandbox.control import Sandbox


def summarise(sandbox: Sandbox, out: Any = sys.stdout) -> None:
    """Write a human summary of the sandbox's state to ``out``."""
    calls = sandbox.requests()
    by_route = Counter(f"{call['method']} {call['path']} -> {call['status']}" for call in calls)
    out.write(f"demo: the sandbox answered {len(calls)} API requests:\n")
    for route, times in sorted(by_route.items(), key=lambda item: (-item[1], item[0]))[:15]:
        out.write(f"  {times:4d} x {route}\n")
    if len(by_route) > 15:
        out.write(f"  ... and {len(by_route) - 15} other routes\n")
    batches = sandbox.batches()
    out.write(f"demo: {len(batches)} staging batch(es):\n")
    stagings: set[tuple[str, str]] = set()
    for batch in batches:
        sequences = batch["sequences"]
        span = f"{sequences[0]}..{sequences[-1]}" if sequences else "none"
        summary = batch["summary"]
        matched = {True: "yes", False: "NO", None: "no summary sent"}[batch["totals_match"]]
        out.write(
            f"  batch {batch['batchId']}\n"
            f"    stagings {', '.join(batch['stagings'])}; {batch['records']} records in {batch['requests']} "
            f"requests (sequences {span}, missing {batch['missing_sequences'] or 'none'}); "
            f"redeliveries {batch['redeliveries']}, conflicts {batch['conflicts']}\n"
            f"    summary: {summary and {k: summary.get(k) for k in ('totalRecords', 'totalRequests')}}; "
            f"matches what arrived: {matched}\n"
        )
        stagings.update((connector, name) for connector in batch["connectors"] for name in batch["stagings"])
    if stagings:
        out.write("demo: records stored per staging (connector / staging: count):\n")
        for connector, name in sorted(stagings):
            out.write(f"  {connector} / {name}: {sandbox.staging_count(name, connector)}\n")
    bigquery_counts(sandbox, out)


def bigquery_counts(sandbox: Sandbox, out: Any) -> None:
    """Rows per table of the tenant's dataset in the BigQuery emulator, if one is attached."""
    response = sandbox.session.get(f"{sandbox.url}/__sandbox/bigquery", timeout=30)
    response.raise_for_status()
    described = response.json()
    if not described:
        return
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    client = bigquery.Client(
        project=described["project"],
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": described["bigquery_endpoint"]},
    )
    dataset = f"{described['project']}.{described['dataset']}"
    tables = sorted(table.table_id for table in client.list_tables(dataset))
    out.write(f"demo: BigQuery emulator ({described['bigquery_endpoint']}), dataset {dataset}:\n")
    for table in tables:
        (row,) = client.query(f"SELECT COUNT(*) AS n FROM `{dataset}.{table}`").result()
        out.write(f"  {table}: {row['n']} rows\n")
    if not tables:
        out.write("  no tables\n")


def task_outcomes(log_path: str, out: Any = sys.stdout) -> str | None:
    """Each task's final state (and short return value) from an ``airflow dags test`` log; the run's state."""
    state = returned = run_state = None
    pattern = re.compile(r"\[DAG TEST\] end task task_id=(\S+) map_index=(-?\d+)")
    with open(log_path, errors="replace") as lines:
        for line in lines:
            if found := re.search(r"new_state=(\w+)", line):
                state = found.group(1)
            elif "Returned value was:" in line:
                returned = line.split("Returned value was:", 1)[1].split(" [airflow.", 1)[0].strip()
            elif found := pattern.search(line):
                task = found.group(1) + (f"[{found.group(2)}]" if found.group(2) != "-1" else "")
                shown = f" -> {returned[:150]}" if returned else ""
                out.write(f"  {task:20} {state or '?'}{shown}\n")
                state = returned = None
            elif "DagRun Finished" in line and (found := re.search(r"state=(\w+)", line)):
                run_state = found.group(1)
    out.write(f"  dag run: {run_state or 'did not finish'}\n")
    return run_state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("info", nargs="?", help="the sandbox's first stdout line (JSON)")
    parser.add_argument("--connection", action="store_true", help="print AIRFLOW_CONN_CAROL_DEFAULT's value")
    parser.add_argument("--url", action="store_true", help="print the sandbox's URL")
    parser.add_argument("--summary", action="store_true", help="print what the sandbox received")
    parser.add_argument("--tasks", metavar="LOG", help="print task outcomes of an `airflow dags test` log")
    args = parser.parse_args()
    if args.tasks:
        sys.exit(0 if task_outcomes(args.tasks) == "success" else 1)
    if not args.info:
        parser.error("info (the sandbox's first stdout line) is required with --connection/--url/--summary")
    sandbox = Sandbox(json.loads(args.info))
    if args.connection:
        print(sandbox.connection_json(auth_type="password"))
    if args.url:
        print(sandbox.url)
    if args.summary:
        summarise(sandbox)


if __name__ == "__main__":
    main()
