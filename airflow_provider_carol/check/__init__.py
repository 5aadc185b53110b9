"""``carol-check``: compare your tenant's answers with the provider's wire contract, read-only.

It logs in with an Airflow connection, then makes only GETs: the identity, the connector, its stats, one
staging schema, an app with its settings and AI-process listing, and one task (``--task-id``). With
``--bigquery`` it also asks Carol for a temporary BigQuery key (the one call that creates something).
For every answer field in the contract (:mod:`airflow_provider_carol.hooks.core.contract`) it prints a
row: the endpoint, the field, whether the answer carried it, and whether that matches. It prints field
names only: never a value, an id or a secret. Exit status: 0 when every answer matches, 1 on a mismatch,
2 when the check could not run (no such connection, Carol unreachable, refused credentials).

Run it as ``carol-check --conn-id carol_default`` or ``python -m airflow_provider_carol.check``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Callable, Iterator, Sequence

from airflow_provider_carol.check.checker import Checker
from airflow_provider_carol.check.report import render, report
from airflow_provider_carol.exceptions import CarolApiError, CarolAuthError, CarolConfigError, CarolError


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="carol-check",
        description="Compare a Carol tenant's answers with the provider's wire contract (read-only; "
        "field names only, never values).",
    )
    parser.add_argument("--conn-id", default="carol_default", help="the Airflow connection (conn_type carol)")
    parser.add_argument("--connector-id", help="the connector to read (default: extra 'connector_id')")
    parser.add_argument("--staging", help="a staging to read the schema of (default: the first in the stats)")
    parser.add_argument("--app", help="an app to read (default: extra 'app_name')")
    parser.add_argument("--task-id", help="a long task to read")
    parser.add_argument("--bigquery", action="store_true", help="also ask for a temporary BigQuery key")
    parser.add_argument("--json", action="store_true", help="print the report as JSON (to attach to a bug)")
    return parser.parse_args(argv)


#: Where the hook's own log lines go during a check: nowhere.
QUIET = logging.getLogger("airflow_provider_carol.check.quiet")
QUIET.setLevel(logging.CRITICAL + 1)
QUIET.propagate = False


@contextlib.contextmanager
def _quiet_logs() -> Iterator[None]:
    """Retry warnings name URL paths, which hold ids: while it runs, the check shows its own rows only."""
    loggers = [logging.getLogger(name) for name in ("airflow", "airflow.task", "airflow_provider_carol")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def main(argv: Sequence[str] | None = None, out: Callable[[str], object] = sys.stdout.write) -> int:
    """Run the check; returns the exit status (0 match, 1 mismatch, 2 could not run)."""
    args = parse_args(argv)
    from airflow_provider_carol.hooks.carol import CarolHook

    hook = CarolHook(args.conn_id, retry_limit=2)
    # The hook logs through Airflow's structlog logger, which writes to stdout whatever the stdlib levels;
    # its own logger (LoggingMixin._log) is swapped for a silent one, so --json output stays JSON.
    hook._log = QUIET  # type: ignore[assignment]  # a stdlib logger serves the hook as well
    checker = Checker(hook, args)
    try:
        with _quiet_logs():
            checker.run()
    except (CarolAuthError, CarolConfigError) as exc:
        out(
            f"carol-check: connection {args.conn_id!r}: {type(exc).__name__}: the check could not run "
            f"({_reason(exc)}).\n"
        )
        return 2
    except CarolError as exc:
        out(f"carol-check: connection {args.conn_id!r}: {type(exc).__name__}: Carol could not be read.\n")
        return 2
    out(
        json.dumps(report(args.conn_id, checker), indent=2) + "\n"
        if args.json
        else render(args.conn_id, checker)
    )
    return 0 if checker.matches() else 1


def _reason(exc: CarolError) -> str:
    """Why, without Carol's text or the connection's values: a status and a responsible field at most."""
    if isinstance(exc, CarolApiError) and exc.status_code:
        field_name = f", field {exc.possible_responsible_field}" if exc.possible_responsible_field else ""
        return f"HTTP {exc.status_code}{field_name}"
    return "see the connection's extras and credentials"
