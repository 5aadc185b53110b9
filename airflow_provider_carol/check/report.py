"""The check's report: a table for people, JSON for bug reports; names, statuses and outcomes only."""

from __future__ import annotations

from dataclasses import asdict

from airflow_provider_carol import __version__
from airflow_provider_carol.check.checker import Checker


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
