"""What the event triggers poll, against the sandbox: task listings (paging to the watermark) and
staging record counts (connector stats, through both hooks); ``Watermark``, ``RecordCounts`` and the
tolerant reading of Carol's per-staging stats values."""

from __future__ import annotations

import pytest

from airflow_provider_carol.exceptions import CarolApiError, CarolConfigError, CarolUnexpectedAnswer
from airflow_provider_carol.hooks.carol import CarolHook
from airflow_provider_carol.hooks.carol_async import CarolAsyncHook
from airflow_provider_carol.hooks.listings import (
    PAGE_SIZE,
    RecordCounts,
    Watermark,
    epoch_ms,
    staging_counts,
    staging_counts_in,
    stat_count,
    task_query,
)


def test_watermark_admits_later_items_and_ties_with_other_ids():
    mark = Watermark().after(10, "a").after(10, "b")
    assert mark == Watermark(10, ("a", "b"))
    assert (
        not mark.admits(9, "z") and not mark.admits(10, "a") and mark.admits(10, "c") and mark.admits(11, "a")
    )
    assert mark.after(9, "old") == mark and mark.after(12, "n") == Watermark(12, ("n",))
    assert Watermark.from_json(mark.to_json()) == mark
    assert Watermark.from_json(None) is None and Watermark.from_json({"at": "x"}) is None


def test_epoch_ms_reads_carol_timestamps():
    assert epoch_ms("1970-01-01T00:00:01.500Z") == 1500
    assert epoch_ms(1500) == 1500
    with pytest.raises(ValueError):
        epoch_ms(None)


async def test_tasks_after_pages_newest_first_down_to_the_watermark(carol_sandbox):
    ids = [
        carol_sandbox.create_task([{"status": "RUNNING", "after": 0}], name="paged")
        for _ in range(PAGE_SIZE + 5)
    ]
    ended = [carol_sandbox.finish_task(task_id) for task_id in ids]
    query = task_query(["COMPLETED"], [], ["paged"], [])
    async with CarolAsyncHook() as hook:
        everything = await hook.tasks_after(query, Watermark())
        first = ended[0]
        after_first = await hook.tasks_after(
            query, Watermark(epoch_ms(first["mdmLastUpdated"]), (first["mdmId"],))
        )
    order = sorted(ended, key=lambda t: (t["mdmLastUpdated"], t["mdmId"]))
    assert [t.task_id for t in everything] == [t["mdmId"] for t in order]
    assert {t.task_id for t in after_first} == set(ids) - {first["mdmId"]}
    queries = carol_sandbox.requests(path="/api/v1/queries/filter")
    assert len(queries) == 2 + 2  # two pages each: the second page reached the end (or the watermark)


async def test_staging_counts_read_connector_stats_through_both_hooks(carol_sandbox):
    other = CarolHook().get_or_create_connector("counted_elsewhere")
    carol_sandbox.complete_batch("counted", 3)
    carol_sandbox.complete_batch("counted", 2)
    carol_sandbox.complete_batch("counted", 4, connector_id=other)
    carol_sandbox.complete_batch("not_counted", 9)
    ours = carol_sandbox.connector_id
    async with CarolAsyncHook() as hook:
        everywhere = await hook.staging_counts("counted")
        one = await hook.staging_counts("counted", ours)
        absent = await hook.staging_counts("never_sent", ours)
    assert everywhere == {ours: 5, other: 4} and one == {ours: 5} and absent == {}
    assert CarolHook().run(staging_counts("counted", other)) == {other: 4}
    paths = [r["path"] for r in carol_sandbox.requests() if r["path"].endswith(("/stats", "/stats/all"))]
    assert paths == [
        "/api/v1/connectors/stats/all",
        f"/api/v1/connectors/{ours}/stats",
        f"/api/v1/connectors/{ours}/stats",
        f"/api/v1/connectors/{other}/stats",
    ]


@pytest.mark.parametrize(
    ("value", "count"),
    [(7, 7), (0, 0), (7.0, 7), ({"count": 7}, 7), ({"total": 7}, 7), ({"totalRecords": 7, "x": 1}, 7)],
)
def test_a_stats_value_may_be_a_bare_count_or_an_object_with_one(value, count):
    assert stat_count(value, "here") == count


@pytest.mark.parametrize("value", [None, True, -1, 1.5, "7", {"size": 7}, {"count": "7"}, [7]])
def test_a_stats_value_without_a_count_is_a_clear_api_error_naming_where(value):
    with pytest.raises(CarolApiError, match=r"aggs\.c1\.stagingEntityStats\.orders"):
        staging_counts_in({"aggs": {"c1": {"stagingEntityStats": {"orders": value}}}}, "orders")


@pytest.mark.parametrize("shape", ["count", "number", "total", "doc_count"])
def test_staging_counts_read_every_stats_value_shape_the_sandbox_serves(carol_sandbox, shape):
    """What a stagingEntityStats value holds is not known (carol-evidence.md): each candidate is read."""
    carol_sandbox.set_shapes(stats_value=shape)
    carol_sandbox.complete_batch("counted", 3)
    assert CarolHook().run(staging_counts("counted", carol_sandbox.connector_id)) == {
        carol_sandbox.connector_id: 3
    }


def test_an_unreadable_stats_value_names_its_fields_never_its_value(carol_sandbox):
    carol_sandbox.set_shapes(stats_value="unreadable")
    carol_sandbox.complete_batch("counted", 31337)
    with pytest.raises(CarolUnexpectedAnswer, match="fields size") as failure:
        CarolHook().run(staging_counts("counted", carol_sandbox.connector_id))
    assert "31337" not in str(failure.value) and "carol-check" in str(failure.value)


def test_stats_without_aggs_are_an_api_error_and_connectors_without_the_staging_are_left_out():
    with pytest.raises(CarolApiError, match="aggs"):
        staging_counts_in({"hits": []}, "orders")
    body = {"aggs": {"c1": {"stagingEntityStats": {"orders": 2}}, "c2": {"stagingEntityStats": {}}, "c3": {}}}
    assert staging_counts_in(body, "orders") == {"c1": 2}


def test_record_counts_round_trip_as_json_and_bad_input_names_the_field():
    counts = RecordCounts().with_count("b", 2).with_count("a", 1)
    assert counts.get("a") == 1 and counts.get("missing") == 0
    assert RecordCounts.from_json(counts.to_json()) == counts and counts.to_json() == {
        "counts": {"a": 1, "b": 2}
    }
    assert RecordCounts.from_json(None) is None and RecordCounts.from_json({"at": 1, "ids": []}) is None
    with pytest.raises(CarolConfigError, match="staging"):
        next(staging_counts(""))
    with pytest.raises(CarolConfigError, match="connector_id"):
        next(staging_counts("orders", ""))
