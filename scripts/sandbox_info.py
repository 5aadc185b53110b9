"""Helpers for scripts/demo.sh: turn the sandbox's start-up line into a connection, or summarise its state."""

from __future__ import annotations

import argparse
import json

from airflow_provider_carol.sandbox.control import Sandbox


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("info", help="the sandbox's first stdout line (JSON)")
    parser.add_argument("--connection", action="store_true", help="print AIRFLOW_CONN_CAROL_DEFAULT's value")
    parser.add_argument("--summary", action="store_true", help="print what the sandbox received")
    args = parser.parse_args()
    sandbox = Sandbox(json.loads(args.info))
    if args.connection:
        print(sandbox.connection_json(auth_type="password"))
    if args.summary:
        calls = sandbox.requests()
        print(f"demo: the sandbox answered {len(calls)} API requests:")
        for call in calls[:20]:
            print(f"  {call['method']:6} {call['path']}  -> {call['status']}")
        for batch in sandbox.batches():
            print(
                f"  batch {batch.get('batch_id')}: {batch.get('records')} records, summary matches: "
                f"{batch.get('summary_matches')}"
            )


if __name__ == "__main__":
    main()
