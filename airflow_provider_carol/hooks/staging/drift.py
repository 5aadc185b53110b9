"""Schema drift: compare the records' schema with the staging's schema in Carol, field by field.

Pure decisions only (no I/O): :func:`compare` lists new fields, missing fields and type changes
(nested object fields as dotted paths), :func:`decide` applies the ``on_schema_drift`` policy, and
:func:`evolved_schema` builds the schema an ``evolve`` send puts to Carol. Type pairs JSON cannot tell
apart (``integer``/``long``, an integer in a ``double`` field, an ISO string in a ``date`` field) are
not drift: the values reach Carol the same way.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from airflow_provider_carol.exceptions import CarolConfigError

DriftPolicy = Literal["fail", "warn", "evolve"]
POLICIES: tuple[str, ...] = ("fail", "warn", "evolve")
#: (type in Carol, type of the records) pairs that send the same JSON, so they are no type change.
COMPATIBLE = frozenset(
    {
        ("long", "integer"),
        ("integer", "long"),
        ("double", "integer"),
        ("double", "long"),
        ("nested", "object"),
        ("object", "nested"),
        ("date", "string"),
        ("string", "date"),
        ("base64", "string"),
        ("geopoint", "object"),
        ("geopoint", "string"),
    }
)


def check_policy(policy: object) -> DriftPolicy | None:
    """``on_schema_drift`` validated: None (the default policy) or one of ``fail``, ``warn``, ``evolve``."""
    if policy is None or policy in POLICIES:
        return policy  # type: ignore[return-value]
    raise CarolConfigError(
        f"on_schema_drift must be None (type changes fail, new fields warn) or one of "
        f"{', '.join(POLICIES)}; got {policy!r}."
    )


@dataclass
class SchemaDrift:
    """How the records differ from Carol's schema: ``{path: type}`` and ``{path: (carol, records)}``."""

    added: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    changed: dict[str, tuple[str, str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.added or self.missing or self.changed)

    def lines(self) -> list[str]:
        """One human line per field, for logs and errors."""
        return (
            [f"new field {name!r} ({kind})" for name, kind in self.added.items()]
            + [f"missing field {name!r} ({kind} in Carol)" for name, kind in self.missing.items()]
            + [
                f"field {name!r} changed type: {old} in Carol, {new} in the records"
                for name, (old, new) in self.changed.items()
            ]
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for XCom."""
        return {
            "added": dict(self.added),
            "missing": dict(self.missing),
            "changed": {name: {"carol": old, "records": new} for name, (old, new) in self.changed.items()},
        }


def _type_of(spec: Mapping[str, Any]) -> str | None:
    kind = spec.get("type") if isinstance(spec, Mapping) else None
    return str(kind) if kind else None


def compare(current: Mapping[str, Any], inferred: Mapping[str, Any], prefix: str = "") -> SchemaDrift:
    """The drift between Carol's ``properties`` and the records' ``properties`` (untyped fields match)."""
    drift = SchemaDrift()
    for name, spec in inferred.items():
        path, kind = f"{prefix}{name}", _type_of(spec)
        if name not in current:
            drift.added[path] = kind or "null"
            continue
        found = current[name] if isinstance(current[name], Mapping) else {}
        stored = _type_of(found)
        if kind is None or stored is None or kind == stored or (stored, kind) in COMPATIBLE:
            inner_now, inner_new = found.get("properties"), spec.get("properties")
            if isinstance(inner_now, Mapping) and isinstance(inner_new, Mapping):
                nested = compare(inner_now, inner_new, f"{path}.")
                drift.added.update(nested.added)
                drift.missing.update(nested.missing)
                drift.changed.update(nested.changed)
            continue
        drift.changed[path] = (stored, kind)
    for name, spec in current.items():
        if name not in inferred:
            drift.missing[f"{prefix}{name}"] = _type_of(spec) or "untyped"
    return drift


@dataclass(frozen=True)
class Decision:
    """What a send does about drift: ``refused`` lines fail it, ``warned`` lines are logged."""

    refused: list[str]
    warned: list[str]
    evolve: bool


def decide(drift: SchemaDrift, policy: DriftPolicy | None) -> Decision:
    """Apply the policy (see ``docs/operators/staging.md``, "Schema drift", for the table)."""
    if policy == "fail":
        return Decision(drift.lines(), [], False)
    if policy in ("warn", "evolve"):
        return Decision([], drift.lines(), policy == "evolve" and bool(drift.added or drift.changed))
    changed = SchemaDrift(changed=drift.changed).lines()
    return Decision(changed, SchemaDrift(added=drift.added, missing=drift.missing).lines(), False)


def evolved_schema(current: Mapping[str, Any], inferred: Mapping[str, Any]) -> dict[str, Any]:
    """Carol's schema with new fields added and changed types replaced; missing fields are kept."""
    schema = copy.deepcopy(dict(current))
    mapping = schema.setdefault("mdmStagingMapping", {})
    mapping["properties"] = _merge(mapping.get("properties") or {}, inferred)
    return schema


def _merge(current: Mapping[str, Any], inferred: Mapping[str, Any]) -> dict[str, Any]:
    merged = {name: dict(spec) for name, spec in current.items()}
    for name, spec in inferred.items():
        kind, old = _type_of(spec), merged.get(name)
        if kind is None:
            if old is None:
                merged[name] = {"type": "string"}  # only nulls seen: Carol needs some type
            continue
        if old is None or (kind != _type_of(old) and (_type_of(old), kind) not in COMPATIBLE):
            merged[name] = dict(spec)
        elif isinstance(old.get("properties"), Mapping) and isinstance(spec.get("properties"), Mapping):
            old["properties"] = _merge(old["properties"], spec["properties"])
    return merged
