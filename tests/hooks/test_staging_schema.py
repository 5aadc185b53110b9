"""Staging schema inference from a whole sample, explicit fields and crosswalk checks (pure)."""

from __future__ import annotations

import datetime as dt
import decimal

import numpy as np
import pytest

from airflow_provider_carol.exceptions import CarolConfigError
from airflow_provider_carol.hooks.staging.schema import (
    check_crosswalk,
    infer_properties,
    properties_from_fields,
    schema_payload,
)


def test_types_come_from_every_record_not_the_first():
    sample = [
        {"id": 1, "amount": None, "when": None, "meta": {"a": 1}},
        {"id": 2, "amount": 3, "when": dt.datetime(2024, 1, 1), "meta": {"b": "x"}},
        {
            "id": np.int64(3),
            "amount": 2.5,
            "when": dt.date(2024, 1, 2),
            "meta": {"a": decimal.Decimal("1.5")},
            "tags": ["a", "b"],
            "flag": True,
            "only_nulls": None,
        },
    ]
    assert infer_properties(sample) == {
        "id": {"type": "integer"},
        "amount": {"type": "double"},
        "when": {"type": "date"},
        "meta": {"type": "object", "properties": {"a": {"type": "double"}, "b": {"type": "string"}}},
        "tags": {"type": "string"},
        "flag": {"type": "boolean"},
        "only_nulls": {"type": "string"},
    }


def test_conflicting_types_name_the_field_and_rows():
    with pytest.raises(
        CarolConfigError, match=r"Field 'code' holds integer values \(row 0\) and string values \(row 2\)"
    ):
        infer_properties([{"code": 1}, {"code": None}, {"code": "A1"}])


def test_crosswalk_keys_must_exist_be_scalar_and_be_filled():
    properties = infer_properties([{"id": 1, "meta": {"a": 1}}, {"id": 2, "meta": {"a": 2}}])
    assert check_crosswalk(["id"], properties, [{"id": 1}, {"id": 2}]) == ["id"]
    with pytest.raises(CarolConfigError, match=r"Crosswalk key 'code' is not a field of the data"):
        check_crosswalk(["code"], properties)
    with pytest.raises(CarolConfigError, match=r"'meta' is an object"):
        check_crosswalk(["meta"], properties)
    with pytest.raises(CarolConfigError, match=r"Row 1 has no value for crosswalk key\(s\) \['id'\]"):
        check_crosswalk(["id"], properties, [{"id": 1}, {"id": None}])
    with pytest.raises(CarolConfigError, match="non-empty list"):
        check_crosswalk([], properties)


def test_explicit_fields_are_validated_and_the_payload_has_carols_shape():
    properties = properties_from_fields({"id": "integer", "name": {"type": "string"}})
    assert schema_payload("stg", properties, ["id"]) == {
        "mdmStagingType": "stg",
        "mdmCrosswalkTemplate": {"mdmCrossreference": {"stg": ["id"]}},
        "mdmStagingMapping": {"properties": {"id": {"type": "integer"}, "name": {"type": "string"}}},
        "mdmFlexible": False,
        "mdmExportData": False,
    }
    with pytest.raises(CarolConfigError, match=r"Field 'x': type 'int' is not one of"):
        properties_from_fields({"x": "int"})
