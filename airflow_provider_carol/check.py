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
import fnmatch
import json
import logging
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from airflow_provider_carol import __version__
from airflow_provider_carol.exceptions import CarolApiError, CarolAuthError, CarolConfigError, CarolError
from airflow_provider_carol.hooks.core import endpoints
from airflow_provider_carol.hooks.core.answers import text_at
from airflow_provider_carol.hooks.core.contract import Field, contract_for
from airflow_provider_carol.hooks.core.endpoints import Endpoint
from airflow_provider_carol.hooks.core.transport import Call
from airflow_provider_carol.hooks.tasks.models import ACTIVE_STATUSES, TERMINAL_STATUSES

if TYPE_CHECKING:
    from airflow_provider_carol.hooks.carol import CarolHook

#: What a tenant-level connection reads after the identity.
TENANT_ENDPOINTS = (
    endpoints.CONNECTOR_BY_ID,
    endpoints.CONNECTOR_STATS,
    endpoints.STAGING_SCHEMA_GET,
    endpoints.APP_BY_NAME,
    endpoints.APP_SETTINGS,
    endpoints.APP_PROCESSES,
    endpoints.TASK_GET,
    endpoints.BIGQUERY_TEMPORARY_KEY,
)
#: How many levels of an answer are listed as "fields seen".
NAME_DEPTH = 6


@dataclass
class FieldResult:
    """One contract field in one answer."""

    field: str
    evidence: str
    required: bool
    seen: bool
    match: bool
    note: str = ""


@dataclass
class EndpointResult:
    """One endpoint's answer: its HTTP status and field names, and each contract field's outcome."""

    endpoint: str
    outcome: str  # "ok", "mismatch", "error", "skipped"
    status: int | None = None
    fields_seen: list[str] = field(default_factory=list)
    fields: list[FieldResult] = field(default_factory=list)
    note: str = ""


# ---------------------------------------------------------------------------------------------- reading
def names_seen(body: object, data_keys: Sequence[str], prefix: str = "", depth: int = NAME_DEPTH) -> set[str]:
    """The answer's field names as dotted paths; ``[]`` marks list items, and the keys of objects whose
    keys are data (``data_keys`` patterns: connector ids, staging or field names) are listed as ``*``."""
    if depth == 0:
        return set()
    if isinstance(body, list):
        return set().union(*(names_seen(item, data_keys, f"{prefix}[]", depth) for item in body))
    if not isinstance(body, dict):
        return set()
    data = any(fnmatch.fnmatchcase(prefix, pattern) for pattern in data_keys)
    names: set[str] = set()
    for key, value in body.items():
        path = f"{prefix}.{'*' if data else key}" if prefix else ("*" if data else str(key))
        names.add(path)
        names |= names_seen(value, data_keys, path, depth - 1)
    return names


def values_at(body: object, path: str) -> list[object]:
    """Every value at ``path`` (``*``: any key, ``[]``: any list item; a leading ``[]``: the list itself)."""
    found = [body]
    for part in path.replace("[]", ".[]").strip(".").split("."):
        step: list[object] = []
        for value in found:
            if part == "[]" and isinstance(value, list):
                step.extend(value)
            elif part == "*" and isinstance(value, dict):
                step.extend(value.values())
            elif isinstance(value, dict) and part in value:
                step.append(value[part])
        found = step
    return found


def _check_field(body: object, f: Field) -> FieldResult:
    seen = any(values_at(body, path) for path in f.paths)
    evidence = "assumed" if f.assumed else "evidence"
    note = "" if seen or not f.alternatives else f"none of {', '.join(f.paths)}"
    return FieldResult(f.path, evidence, f.required, seen, seen or not f.required, note)


def compare(endpoint: Endpoint, body: object, status: int = 200) -> EndpointResult:
    """An answer against its contract row (field names only)."""
    contract = contract_for(endpoint)
    fields = [_check_field(body, f) for f in contract.fields]
    seen = sorted(names_seen(body, contract.data_key_patterns()))
    outcome = "ok" if all(r.match for r in fields) else "mismatch"
    return EndpointResult(str(endpoint), outcome, status, seen, fields)


def stats_shape(body: object) -> tuple[str, bool]:
    """What the tenant's ``stagingEntityStats`` values hold (names only), and whether a count is readable."""
    from airflow_provider_carol.hooks.events import stat_count

    values = values_at(body, "aggs.*.stagingEntityStats.*")
    if not values:
        return "no staging listed", True
    shapes = set()
    readable = True
    for value in values:
        shapes.add(
            "a number"
            if isinstance(value, int | float) and not isinstance(value, bool)
            else f"an object with {', '.join(sorted(map(str, value)))}"
            if isinstance(value, dict)
            else f"a JSON {type(value).__name__}"
        )
        try:
            stat_count(value, "stagingEntityStats")
        except CarolApiError:
            readable = False
    return "; ".join(sorted(shapes)), readable


# ---------------------------------------------------------------------------------------------- the checks
class Checker:
    """Runs the GETs of one connection and collects one :class:`EndpointResult` per endpoint."""

    def __init__(self, hook: CarolHook, args: argparse.Namespace) -> None:
        self.hook, self.args = hook, args
        self.results: list[EndpointResult] = []
        self.stats_value_shape: str | None = None

    def get(self, endpoint: Endpoint, *, params: Mapping[str, object] | None = None, **path: str) -> object:
        """One GET of ``endpoint``, compared; None when it failed (the failure is a result row)."""
        try:
            body = self.hook.call_api(endpoint.path(**path), "GET", params=params, prefix=endpoint.prefix)
        except CarolAuthError:
            if not self.results:  # the first call: the login itself was refused
                raise
            self.results.append(EndpointResult(str(endpoint), "error", 401, note="CarolAuthError"))
            return None
        except CarolApiError as exc:
            self.results.append(
                EndpointResult(str(endpoint), "error", exc.status_code, note=type(exc).__name__)
            )
            return None
        self.results.append(compare(endpoint, body))
        return body

    def skip(self, endpoint: Endpoint, why: str) -> None:
        self.results.append(EndpointResult(str(endpoint), "skipped", note=why))

    def identity(self) -> None:
        """The tenant and the organization; at organization level the organization first, so a refused
        login fails there, and any 4xx of ``tenants/current`` is the contract's "no tenant"."""
        if not self.hook.config.org_level:
            self.get(endpoints.TENANT_CURRENT)
            self.get(endpoints.ORGANIZATION_CURRENT)
            return
        self.get(endpoints.ORGANIZATION_CURRENT)
        endpoint = endpoints.TENANT_CURRENT
        try:  # a 401 here is an answer, not a stale token: no re-login (hooks/core/identity.py)
            body = self.hook.run(self.hook.pipeline.call(Call.to(endpoint, reauthenticate=False)))
        except CarolApiError as exc:
            if exc.status_code is None or not 400 <= exc.status_code < 500:
                raise
            note = f"HTTP {exc.status_code}: no current tenant at organization level"
            self.results.append(EndpointResult(str(endpoint), "ok", exc.status_code, note=note))
            return
        result = compare(endpoint, body)
        if not text_at(body, "mdmName"):  # pycarol: no mdmName means organization level (carol.py L580)
            result.fields = [f for f in result.fields if f.field != "mdmName"]
            result.outcome, result.note = "ok", "no mdmName: organization level, as pycarol reads it"
        self.results.append(result)

    def connector(self) -> str | None:
        """The connector and its stats; returns a staging to read the schema of (never printed)."""
        connector_id = self.args.connector_id or self.hook.config.connector_id
        if not connector_id:
            for endpoint in (
                endpoints.CONNECTOR_BY_ID,
                endpoints.CONNECTOR_STATS,
                endpoints.STAGING_SCHEMA_GET,
            ):
                self.skip(endpoint, "no connector: pass --connector-id or set extra 'connector_id'")
            return None
        self.get(endpoints.CONNECTOR_BY_ID, connector_id=connector_id)
        stats = self.get(endpoints.CONNECTOR_STATS, connector_id=connector_id)
        if stats is not None:
            self.stats_value_shape, readable = stats_shape(stats)
            row = self.results[-1]
            row.note = f"stagingEntityStats values: {self.stats_value_shape}"
            if not readable:
                row.outcome = "mismatch"
                row.note += " (no record count the provider can read)"
        return self.args.staging or next(iter(_staging_names(stats)), None)

    def schema(self, staging: str | None) -> None:
        connector_id = self.args.connector_id or self.hook.config.connector_id
        if not connector_id:
            return
        if not staging:
            self.skip(endpoints.STAGING_SCHEMA_GET, "no staging: pass --staging (the connector lists none)")
            return
        body = self.get(endpoints.STAGING_SCHEMA_GET, params={"connectorId": connector_id}, staging=staging)
        last = self.results[-1]
        if body is None and last.status == 404:
            last.outcome, last.note = "ok", "HTTP 404: the staging has no schema (the contract's 'no schema')"

    def app(self) -> None:
        name = self.args.app or self.hook.config.app_name
        app_endpoints = (endpoints.APP_BY_NAME, endpoints.APP_SETTINGS, endpoints.APP_PROCESSES)
        if not name:
            for endpoint in app_endpoints:
                self.skip(endpoint, "no app: pass --app or set extra 'app_name'")
            return
        app = self.get(endpoints.APP_BY_NAME, params={"entitySpace": "PRODUCTION"}, app_name=name)
        app_id = app.get("mdmId") if isinstance(app, dict) else None
        if not isinstance(app_id, str) or not app_id:
            for endpoint in app_endpoints[1:]:
                self.skip(endpoint, "the app answer named no mdmId")
            return
        space = {"entitySpace": "PRODUCTION", "checkAllSpaces": "false"}
        self.get(endpoints.APP_SETTINGS, params=space, app_id=app_id)
        listing = self.get(
            endpoints.APP_PROCESSES,
            params={"entitySpace": "WORKING", "checkAllSpaces": "true"},
            app_id=app_id,
        )
        if listing == {}:
            row = self.results[-1]
            row.outcome, row.fields, row.note = (
                "ok",
                [],
                "{}: the app has no AI process (as Carol answers it)",
            )

    def task(self) -> None:
        if not self.args.task_id:
            self.skip(endpoints.TASK_GET, "no task: pass --task-id")
            return
        body = self.get(endpoints.TASK_GET, task_id=self.args.task_id)
        status = body.get("mdmTaskStatus") if isinstance(body, dict) else None
        if body is not None and status not in TERMINAL_STATUSES | ACTIVE_STATUSES:
            row = self.results[-1]
            row.outcome = "mismatch"
            row.note = "mdmTaskStatus is none of READY, RUNNING, COMPLETED, FAILED, CANCELED"

    def bigquery(self) -> None:
        if not self.args.bigquery:
            self.skip(endpoints.BIGQUERY_TEMPORARY_KEY, "creates a temporary key: pass --bigquery")
            return
        try:
            key = self.hook._mint_key()
        except CarolApiError as exc:
            self.results.append(
                EndpointResult(
                    str(endpoints.BIGQUERY_TEMPORARY_KEY),
                    "mismatch",
                    exc.status_code,
                    note=type(exc).__name__,
                )
            )
            return
        self.results.append(compare(endpoints.BIGQUERY_TEMPORARY_KEY, key.info))

    def matches(self) -> bool:
        """Whether every answer read matched the contract (skipped endpoints do not count)."""
        return all(r.outcome in ("ok", "skipped") for r in self.results)

    def run(self) -> None:
        self.identity()
        if self.hook.config.org_level:  # an organization-level session reads no tenant data
            why = "organization-level connection: no tenant data to read"
            for endpoint in TENANT_ENDPOINTS:
                self.skip(endpoint, why)
            return
        self.schema(self.connector())
        self.app()
        self.task()
        self.bigquery()


def _staging_names(stats: object) -> list[str]:
    names: list[str] = []
    for entities in values_at(stats, "aggs.*.stagingEntityStats"):
        if isinstance(entities, dict):
            names.extend(str(name) for name in entities)
    return names


# ---------------------------------------------------------------------------------------------- output
def report(conn_id: str, checker: Checker) -> dict[str, object]:
    """The JSON report (what ``--json`` prints): names, statuses and outcomes only."""
    config = checker.hook.config
    return {
        "carol_check": __version__,
        "connection": conn_id,
        "auth_type": config.auth_type,
        "org_level": config.org_level,
        "result": "match" if checker.matches() else "mismatch",
        "stats_value_shape": checker.stats_value_shape,
        "endpoints": [asdict(r) for r in checker.results],
    }


def render(conn_id: str, checker: Checker) -> str:
    """The report as a table: a row per endpoint, then one per contract field and the names seen."""
    config = checker.hook.config
    level = "organization" if config.org_level else "tenant"
    rows = [("endpoint", "field", "seen", "result", "note")]
    for result in checker.results:
        status = f" (HTTP {result.status})" if result.outcome == "error" else ""
        rows.append((result.endpoint, "", "", result.outcome + status, result.note))
        for f in result.fields:
            name = f.field + (" (assumed)" if f.evidence == "assumed" else "")
            rows.append(("", name, "yes" if f.seen else "no", "ok" if f.match else "MISMATCH", f.note))
        if result.fields_seen:
            rows.append(("", "answered: " + ", ".join(result.fields_seen), "", "", ""))
    widths = [min(48, max(len(row[i]) for row in rows if len(row[i]) <= 48)) for i in range(4)]
    lines = [
        f"carol-check {__version__}: connection {conn_id!r} (auth_type {config.auth_type}, {level} level)"
    ]
    lines += [
        "  ".join([*(v.ljust(w) for v, w in zip(row[:4], widths, strict=True)), row[4]]).rstrip()
        for row in rows
    ]
    lines.append(f"result: {'match' if checker.matches() else 'mismatch'}")
    return "\n".join(lines) + "\n"


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


if __name__ == "__main__":
    sys.exit(main())
