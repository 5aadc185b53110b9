"""Strict JSON encoding and byte-bounded chunking (pure: no network)."""

from __future__ import annotations

import datetime as dt
import decimal
import json

import numpy as np
import pandas as pd
import pytest

from airflow_provider_carol.exceptions import CarolConfigError
from airflow_provider_carol.hooks.staging.codec import Chunker, RecordEncoder


def decode(body: bytes):
    return json.loads(body)  # the stdlib refuses NaN only with parse_constant; check literals below


def test_non_finite_missing_and_numpy_values_become_strict_json():
    records = [
        {
            "nan": float("nan"),
            "inf": float("inf"),
            "ninf": -np.inf,
            "nat": pd.NaT,
            "na": pd.NA,
            "i64": np.int64(7),
            "f32": np.float32(1.5),
            "b": np.bool_(True),
            "arr": np.array([1, 2]),
            "npnat": np.datetime64("NaT"),
            "nested": {"x": float("nan"), "y": [np.int32(3), pd.NA]},
        }
    ]
    body = RecordEncoder().encode(records)
    assert b"NaN" not in body and b"Infinity" not in body
    assert decode(body) == [
        {
            "nan": None,
            "inf": None,
            "ninf": None,
            "nat": None,
            "na": None,
            "i64": 7,
            "f32": 1.5,
            "b": True,
            "arr": [1, 2],
            "npnat": None,
            "nested": {"x": None, "y": [3, None]},
        }
    ]


def test_datetimes_are_iso_and_aware_ones_utc():
    minus3 = dt.timezone(dt.timedelta(hours=-3))
    records = [
        {
            "aware": dt.datetime(2024, 1, 1, 21, 30, tzinfo=minus3),
            "naive": dt.datetime(2024, 1, 2, 3, 4, 5),
            "date": dt.date(2024, 5, 6),
            "pd_aware": pd.Timestamp("2024-01-01 10:00", tz="America/Sao_Paulo"),
            "np_dt": np.datetime64("2024-03-04T05:06:07"),
            "deep": [{"when": dt.datetime(2024, 1, 1, 0, 0, tzinfo=minus3)}],
            "half": dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=45))),
            "text": 'looks like an offset -12:34"',
        }
    ]
    assert decode(RecordEncoder().encode(records)) == [
        {
            "aware": "2024-01-02T00:30:00Z",
            "naive": "2024-01-02T03:04:05",
            "date": "2024-05-06",
            "pd_aware": "2024-01-01T13:00:00Z",
            "np_dt": "2024-03-04T05:06:07",
            "deep": [{"when": "2024-01-01T03:00:00Z"}],
            "half": "2023-12-31T18:15:00Z",
            "text": 'looks like an offset -12:34"',
        }
    ]


def test_the_deferred_utc_pass_writes_what_the_encoder_writes():
    """``defer_utc`` leaves the UTC pass to the sender; the JSON it finally sends is the same."""
    minus3 = dt.timezone(dt.timedelta(hours=-3))
    blocks = [[{"i": i, "at": dt.datetime(2024, 1, 1, i % 24, tzinfo=minus3)} for i in range(30)]]
    blocks.append([{"i": 30, "text": "no datetime here", "naive": dt.datetime(2024, 1, 1)}])
    direct = list(Chunker(10).chunks(blocks))
    deferred = list(Chunker(10, defer_utc=True).chunks(blocks))
    assert [c.body for c in direct] == [c.final_body() for c in deferred]
    assert b"-03:00" in deferred[0].body and b"-03:00" not in deferred[0].final_body()
    assert deferred[-1].final_body() is deferred[-1].body  # nothing to move: no re-encode
    assert all(c.without_body().utc_records is None for c in deferred)


def test_an_instant_past_utcs_range_keeps_its_offset():
    edge = {
        "first": dt.datetime(1, 1, 1, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))),
        "last": dt.datetime(9999, 12, 31, 23, 0, tzinfo=dt.timezone(dt.timedelta(hours=-3))),
    }
    expected = [{"first": "0001-01-01T00:30:00+01:00", "last": "9999-12-31T23:00:00-03:00"}]
    assert decode(RecordEncoder().encode([edge])) == expected
    (chunk,) = Chunker(10, defer_utc=True).chunks([[edge]])
    assert decode(chunk.final_body()) == expected


def test_decimal_is_exact_and_bytes_base64():
    body = RecordEncoder().encode(
        [{"d": decimal.Decimal("12345678901234567890.123456789"), "b": b"\x00\xff"}]
    )
    assert body == b'[{"d":12345678901234567890.123456789,"b":"AP8="}]'


def test_unsupported_value_names_row_and_field():
    records = [{"id": 1}, {"id": 2, "bad": object()}]
    with pytest.raises(CarolConfigError, match=r"Row 11, field 'bad'.*object"):
        RecordEncoder().encode(records, first_row=10)


def test_non_object_record_is_refused_with_its_row():
    with pytest.raises(CarolConfigError, match=r"Row 1: a staging record must be a JSON object"):
        list(Chunker(10).chunks([[{"a": 1}, [1, 2]]]))


def test_chunks_are_bounded_by_records_and_numbered_in_order():
    blocks = [[{"i": i} for i in range(0, 7)], [{"i": i} for i in range(7, 25)]]
    chunks = list(Chunker(10).chunks(blocks))
    assert [(c.sequence, c.first_row, c.records) for c in chunks] == [(1, 0, 10), (2, 10, 10), (3, 20, 5)]
    assert [r["i"] for c in chunks for r in decode(c.body)] == list(range(25))


def test_chunks_are_split_to_stay_under_max_bytes():
    records = [{"i": i, "pad": "x" * 500} for i in range(40)]
    chunks = list(Chunker(40, max_bytes=4096).chunks([records]))
    assert all(len(c.body) <= 4096 for c in chunks)
    assert [c.sequence for c in chunks] == list(range(1, len(chunks) + 1))
    assert [r["i"] for c in chunks for r in decode(c.body)] == list(range(40))


def test_a_record_larger_than_any_request_is_an_error():
    records = [{"i": 0}, {"i": 1, "blob": "x" * 5000}]
    with pytest.raises(CarolConfigError, match=r"Row 1 encodes to .* bytes"):
        list(Chunker(1, max_bytes=4096).chunks([records]))


def test_planned_chunks_are_never_split():
    records = [{"i": i, "pad": "x" * 500} for i in range(40)]
    with pytest.raises(CarolConfigError, match="planned up front"):
        list(Chunker(40, max_bytes=4096, fixed=True).chunks([records]))


@pytest.mark.parametrize("chunk_size, max_bytes", [(0, 4096), (10, 100), (10, 11 * 1024 * 1024)])
def test_bad_chunk_settings_are_refused(chunk_size, max_bytes):
    with pytest.raises(CarolConfigError, match=r"chunk_size|max_chunk_bytes"):
        Chunker(chunk_size, max_bytes)
