"""Staging schemas: build Carol's schema payload from an explicit field map or infer it from a sample.

pycarol typed a staging from its *first* record and crashed on mixed lists; here every record of the
sample contributes (integer + double widen to double, nested objects merge, nulls are ignored) and
a real conflict is an error naming the field and the rows. Type names follow pycarol's generator.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from airflow_provider_carol.exceptions import CarolConfigError

TYPES = ("string", "integer", "long", "double", "boolean", "date", "object", "nested", "geopoint", "base64")
_NUMERIC = {"integer", "double"}


def _value_type(value: Any) -> str | None:
    """The Carol type of one value; None for null (it says nothing about the type)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, (float, decimal.Decimal)):
        return None if value != value else "double"  # NaN is sent as null
    if isinstance(value, (str, bytes)):
        return "string"
    if isinstance(value, (dt.datetime, dt.date)):
        return "date"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, (list, tuple)):
        return "list"
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item) and type(value).__module__ == "numpy":
        return _value_type(item())
    if type(value).__name__ in ("NaTType", "NAType"):
        return None
    if type(value).__name__ == "Timestamp":
        return "date"
    raise CarolConfigError(f"Cannot infer a staging type for values of type {type(value).__name__}.")


class _Field:
    """What the sample says about one field: its type, first row seen, nested fields."""

    def __init__(self) -> None:
        self.type: str | None = None
        self.row = -1
        self.children: dict[str, _Field] = {}

    def add(self, value: Any, row: int, name: str) -> None:
        try:
            kind = _value_type(value)
        except CarolConfigError as exc:
            raise CarolConfigError(f"Row {row}, field {name!r}: {exc}") from None
        if kind == "list":
            for item in value:
                self.add(item, row, name)
            return
        if kind is None:
            return
        if self.type is None:
            self.type, self.row = kind, row
        elif kind != self.type:
            if {kind, self.type} == _NUMERIC:
                self.type = "double"
            else:
                raise CarolConfigError(
                    f"Field {name!r} holds {self.type} values (row {self.row}) and {kind} values "
                    f"(row {row}); "
                    "give the schema explicitly or clean the data."
                )
        if kind == "object":
            for key, item in value.items():
                self.children.setdefault(str(key), _Field()).add(item, row, f"{name}.{key}")

    def to_json(self, untyped: str | None = "string") -> dict[str, Any]:
        if self.type == "object" and self.children:
            children = {k: f.to_json(untyped) for k, f in self.children.items()}
            return {"type": "object", "properties": children}
        kind = self.type or untyped
        return {"type": kind} if kind else {}


def infer_properties(
    records: Iterable[Mapping[str, Any]], *, untyped: str | None = "string"
) -> dict[str, dict[str, Any]]:
    """``mdmStagingMapping.properties`` from every record of a sample.

    A field holding only nulls gets type ``untyped`` (``string``); None leaves it without a type, as
    the drift check wants (nulls say nothing about a type).
    """
    fields: dict[str, _Field] = {}
    for row, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise CarolConfigError(
                f"Row {row} of the sample is a {type(record).__name__}, not a JSON object."
            )
        for key, value in record.items():
            fields.setdefault(str(key), _Field()).add(value, row, str(key))
    if not fields:
        raise CarolConfigError("The sample has no records to infer a staging schema from.")
    return {name: found.to_json(untyped) for name, found in fields.items()}


def arrow_properties(schema: Any) -> dict[str, dict[str, Any]]:
    """Schema properties from a pyarrow schema (Parquet/Arrow files know every column's type upfront)."""
    return {str(item.name): _arrow_type(item.type) for item in schema}


def _arrow_type(kind: Any) -> dict[str, Any]:
    import pyarrow.types as pat

    if pat.is_list(kind) or pat.is_large_list(kind) or pat.is_fixed_size_list(kind):
        return _arrow_type(kind.value_type)  # a list is typed by its items, as in infer_properties
    if pat.is_struct(kind):
        children = {str(kind.field(i).name): _arrow_type(kind.field(i).type) for i in range(kind.num_fields)}
        return {"type": "object", "properties": children} if children else {"type": "object"}
    if pat.is_dictionary(kind):
        return _arrow_type(kind.value_type)
    checks = (
        (pat.is_boolean, "boolean"),
        (pat.is_integer, "integer"),
        (lambda k: pat.is_floating(k) or pat.is_decimal(k), "double"),
        (lambda k: pat.is_timestamp(k) or pat.is_date(k), "date"),
        (lambda k: pat.is_string(k) or pat.is_large_string(k) or pat.is_binary(k), "string"),
        (pat.is_map, "object"),
    )
    for check, name in checks:
        if check(kind):
            return {"type": name}
    return {}  # null, time, duration...: no Carol type to compare


def properties_from_fields(fields: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Explicit ``{field: type}`` (or ``{field: {"type": ..., ...}}``) as schema properties, validated."""
    properties = {}
    for name, spec in fields.items():
        spec = {"type": spec} if isinstance(spec, str) else dict(spec)
        if spec.get("type") not in TYPES:
            raise CarolConfigError(
                f"Field {name!r}: type {spec.get('type')!r} is not one of {', '.join(TYPES)}."
            )
        properties[str(name)] = spec
    return properties


def check_crosswalk(
    crosswalk: Sequence[str], properties: Mapping[str, Any], records: Sequence[Any] = ()
) -> list[str]:
    """The crosswalk as a list; every key must be a scalar field present (non-null) in every record."""
    if isinstance(crosswalk, str):
        crosswalk = [crosswalk]
    keys = list(crosswalk or [])
    if not keys or not all(isinstance(key, str) and key for key in keys):
        raise CarolConfigError(
            "crosswalk must be a non-empty list of field names (the staging's unique key)."
        )
    for key in keys:
        if key not in properties:
            raise CarolConfigError(
                f"Crosswalk key {key!r} is not a field of the data; fields are {sorted(properties)}."
            )
        if properties[key].get("type") in ("object", "nested"):
            raise CarolConfigError(
                f"Crosswalk key {key!r} is an object; a crosswalk key must be a scalar field."
            )
    for row, record in enumerate(records):
        missing = [key for key in keys if record.get(key) is None]
        if missing:
            raise CarolConfigError(f"Row {row} has no value for crosswalk key(s) {missing}.")
    return keys


def schema_payload(
    staging_name: str,
    properties: Mapping[str, Any],
    crosswalk: Sequence[str],
    *,
    flexible: bool = False,
    export_data: bool = False,
) -> dict[str, Any]:
    """Carol's staging schema body (the crosswalk is named after the staging, as Carol expects)."""
    return {
        "mdmStagingType": staging_name,
        "mdmCrosswalkTemplate": {"mdmCrossreference": {staging_name: list(crosswalk)}},
        "mdmStagingMapping": {"properties": dict(properties)},
        "mdmFlexible": flexible,
        "mdmExportData": export_data,
    }


def schema_differs(current: Mapping[str, Any] | None, wanted: Mapping[str, Any]) -> bool:
    """True when the stored schema's mapping, crosswalk or flags differ from ``wanted``."""
    if current is None:
        return True
    return any(
        current.get(key) != wanted[key]
        for key in ("mdmCrosswalkTemplate", "mdmStagingMapping", "mdmFlexible", "mdmExportData")
    )
