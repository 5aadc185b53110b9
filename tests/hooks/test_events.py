"""The event listings of ``CarolAsyncHook`` against the sandbox (paging to the watermark); ``Watermark``."""

from __future__ import annotations

import pytest

from airflow_provider_carol.exceptions import CarolApiError
from airflow_provider_carol.hooks.carol_async import CarolAsyncHook
from airflow_provider_carol.hooks.events import PAGE_SIZE, BatchSummary, Watermark, epoch_ms, task_query


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
    queries = [r for r in carol_sandbox.requests() if r["path"] == "/api/v1/queries/filter"]
    assert len(queries) == 2 + 2  # two pages each: the second page reached the end (or the watermark)


async def test_summaries_after_pages_and_skips_what_the_watermark_has(carol_sandbox):
    batches = [carol_sandbox.complete_batch("paged", 1) for _ in range(PAGE_SIZE + 2)]
    carol_sandbox.complete_batch("other", 1)
    async with CarolAsyncHook() as hook:
        everything = await hook.summaries_after("paged", None, Watermark())
        last = everything[-1]
        nothing = await hook.summaries_after("paged", None, Watermark(last.received_at, (last.event_id,)))
        elsewhere = await hook.summaries_after("paged", "no-such-connector", Watermark())
    order = sorted(batches, key=lambda b: (b["summary"]["receivedAt"], b["batchId"]))  # ties: by id
    assert [s.batch_id for s in everything] == [b["batchId"] for b in order]
    assert {s.staging for s in everything} == {"paged"} and nothing == [] and elsewhere == []


def test_a_summary_without_ids_is_a_clear_api_error():
    with pytest.raises(CarolApiError, match="non-summary"):
        BatchSummary.from_api({"totalRecords": 1})
