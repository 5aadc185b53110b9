"""A Carol answer against its contract row: field names seen, each contract field present or not."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field

from airflow_provider_carol.exceptions import CarolApiError
from airflow_provider_carol.hooks.core.contract import Field, contract_for
from airflow_provider_carol.hooks.core.endpoints import Endpoint

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
    from airflow_provider_carol.hooks.listings import stat_count

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
