"""The poll scheduler: one timer for many waits, due order, never a pause cut short, cancellations skipped."""

from __future__ import annotations

import asyncio
import math
import random

import pytest

from airflow_provider_carol.hooks.core.scheduler import TICK, PollScheduler


async def test_many_waits_park_on_one_timer_and_none_wakes_early():
    loop = asyncio.get_running_loop()
    scheduler = PollScheduler()

    def live_timers() -> int:  # CPython's heap of timers: what each asyncio.sleep would add one to
        return sum(not handle.cancelled() for handle in loop._scheduled)

    timers_before = live_timers()
    rng = random.Random(24)
    asked = [rng.uniform(0.0, 0.5) for _ in range(1000)]
    woke: list[float] = [0.0] * len(asked)

    async def wait(index: int, seconds: float) -> None:
        started = loop.time()
        await scheduler.sleep(seconds)
        woke[index] = loop.time() - started

    waits = [asyncio.ensure_future(wait(i, s)) for i, s in enumerate(asked)]
    await asyncio.sleep(0)  # every wait has parked
    assert scheduler.pending == 1000 and live_timers() - timers_before == 1
    await asyncio.wait_for(asyncio.gather(*waits), 60)
    assert all(got >= want for got, want in zip(woke, asked, strict=True))  # never shortened
    assert scheduler.pending == 0


async def test_waits_wake_in_due_order_one_tick_at_a_time():
    scheduler = PollScheduler()
    order: list[str] = []

    async def wait(name: str, seconds: float) -> None:
        await scheduler.sleep(seconds)
        order.append(name)

    await asyncio.gather(wait("late", 3 * TICK), wait("early", TICK), wait("middle", 2 * TICK))
    assert order == ["early", "middle", "late"]


async def test_a_cancelled_wait_is_skipped_and_the_others_still_wake():
    scheduler = PollScheduler()
    gone = asyncio.ensure_future(scheduler.sleep(TICK))
    kept = asyncio.ensure_future(scheduler.sleep(2 * TICK))
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.wait_for(kept, 30)
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert scheduler.pending == 0


async def test_close_cancels_what_is_still_parked():
    scheduler = PollScheduler()
    parked = asyncio.ensure_future(scheduler.sleep(3600))
    await asyncio.sleep(0)
    scheduler.close()
    with pytest.raises(asyncio.CancelledError):
        await parked
    assert scheduler.pending == 0


async def test_a_late_timer_does_not_wake_the_next_ticks_waits_early():
    """A busy loop fires the timer late: the waits of that tick wake, the next tick's still wait."""
    loop = asyncio.get_running_loop()
    scheduler = PollScheduler()
    woke: dict[str, float] = {}
    now = loop.time()
    next_tick = math.ceil((now + 2 * TICK) / TICK) * TICK  # "next tick" is due on it, "this tick" one before
    asked = {"next tick": next_tick - now - TICK / 100, "this tick": next_tick - now - TICK - TICK / 100}

    async def wait(name: str) -> None:
        started = loop.time()
        await scheduler.sleep(asked[name])
        woke[name] = loop.time() - started

    waits = [asyncio.ensure_future(wait(name)) for name in asked]

    def busy_until(until: float) -> None:  # the loop is blocked, as on a loaded triggerer
        while loop.time() < until:
            pass

    # Blocked from just before "this tick" is due until 0.7 tick after: its timer fires that late.
    loop.call_at(next_tick - 1.1 * TICK, busy_until, next_tick - 0.3 * TICK)
    await asyncio.wait_for(asyncio.gather(*waits), 60)
    assert all(woke[name] >= asked[name] for name in asked), (woke, asked)
