"""Batch ids, sequence planning and the end-of-batch check (pure)."""

from __future__ import annotations

import pytest

from airflow_provider_carol.exceptions import CarolError
from airflow_provider_carol.hooks.staging.batches import (
    BatchPlan,
    check_results,
    derive_batch_id,
    slice_partitions,
)


def test_batch_ids_are_stable_per_key_and_distinct_across_keys():
    key = ("dag", "manual__2024-01-01", "send", 3)
    assert derive_batch_id("t1", *key) == derive_batch_id("t1", *key)
    assert derive_batch_id("t1", *key) != derive_batch_id("t1", "dag", "manual__2024-01-01", "send", 4)
    assert derive_batch_id("t1") != derive_batch_id("t1")  # no key: random
    assert derive_batch_id("t1", *key).startswith("t1-airflow-")


def plan_for(counts: list[int], chunk_size: int = 10) -> BatchPlan:
    slices = slice_partitions(counts, chunk_size, batch_id="b", connector_id="c")
    return BatchPlan(
        "b", "c", chunk_size, [{"path": f"p{i}", "batch": s.as_dict()} for i, s in enumerate(slices)]
    )


def result(first: int, requests: int, records: int, batch_id: str = "b") -> dict:
    return {"batch_id": batch_id, "first_sequence": first, "requests": requests, "records": records}


def test_sequence_ranges_are_contiguous_and_gap_free_even_with_empty_partitions():
    plan = plan_for([25, 0, 10, 1])
    ranges = [(p["batch"]["first_sequence"], p["batch"]["chunks"]) for p in plan.partitions]
    assert ranges == [(1, 3), (4, 0), (4, 1), (5, 1)]
    assert (plan.total_records, plan.total_chunks) == (36, 5)
    results = [result(1, 3, 25), result(4, 0, 0), result(4, 1, 10), result(5, 1, 1)]
    assert check_results(plan, list(reversed(results))) == (36, 5)


@pytest.mark.parametrize(
    "results, problem",
    [
        ([result(1, 3, 25)], r"partition 1 \(sequences from 4\) reported nothing"),
        ([result(1, 3, 25), result(4, 1, 9)], r"partition 1 sent 9 records in 1 requests, planned 10 in 1"),
        ([result(1, 3, 25), result(4, 1, 10), result(9, 1, 1)], r"unplanned results from sequences \[9\]"),
    ],
)
def test_incomplete_or_unplanned_results_refuse_the_summary(results, problem):
    with pytest.raises(CarolError, match=problem):
        check_results(plan_for([25, 10]), results)


def test_results_of_another_batch_are_refused():
    with pytest.raises(CarolError, match="does not belong to batch b"):
        check_results(plan_for([5]), [result(1, 1, 5, batch_id="other")])
