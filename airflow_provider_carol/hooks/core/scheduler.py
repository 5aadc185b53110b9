"""One timer for every wait that shares a Carol client: the pauses between polls, in due order.

Each wait keeps its own pace (the one waiting policy: interval, backoff, deadline); what it no longer
keeps is a timer of its own. A pause is an entry in the scheduler's heap, and one timer, armed for the
earliest entry, wakes every wait that is due. Due times are rounded up to the next :data:`TICK`, so
waits that fall due within the same tick wake in one pass of the event loop instead of one loop wake-up
each (1,000 waits polling every 5 s wake the loop at most 1/TICK times a second, not 200). A pause is
never shortened and is lengthened by less than one tick, so an event still arrives within one poll
interval (plus a tick) of the task's end. What a wait sends once awake goes through its session's gate
(:mod:`~airflow_provider_carol.hooks.core.sessions`): at most ``MAX_IN_FLIGHT`` requests at once.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math

#: Granularity of the scheduler's clock, seconds: waits due within one tick wake together.
TICK = 0.1


class PollScheduler:
    """Wakes waits at their due times with one timer; the entries of cancelled waits are skipped."""

    def __init__(self, tick: float = TICK) -> None:
        self.tick = tick
        self._due: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._armed_for: float | None = None

    @property
    def pending(self) -> int:
        """Waits currently parked here (cancelled ones included until their due time)."""
        return len(self._due)

    async def sleep(self, seconds: float) -> None:
        """Pause the calling wait for at least ``seconds`` (less than one tick more)."""
        loop = asyncio.get_running_loop()
        target = loop.time() + max(0.0, seconds)
        due = math.ceil(target / self.tick) * self.tick
        if due < target:  # the float product can land one ulp short of the grid point
            due += self.tick
        waiter: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._due, (due, next(self._order), waiter))
        self._arm(loop)
        await waiter

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        """Make sure the one timer fires at the earliest due time."""
        earliest = self._due[0][0]
        if self._timer is not None and self._armed_for is not None and self._armed_for <= earliest:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._armed_for, self._timer = earliest, loop.call_at(earliest, self._wake, loop)

    def _wake(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wake every wait that is due now (all of one tick at once), then re-arm for the next."""
        # The tick the timer was armed for is due (asyncio may fire it a clock resolution early); so is
        # anything already past. A late timer must not wake the next tick's waits before their time.
        now = max(self._armed_for or 0.0, loop.time())
        self._timer = self._armed_for = None
        while self._due and self._due[0][0] <= now:
            _, _, waiter = heapq.heappop(self._due)
            if not waiter.done():
                waiter.set_result(None)
        if self._due:
            self._arm(loop)

    def close(self) -> None:
        """Stop the timer and wake nobody (called when the last user of the session has left)."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._armed_for = None
        for _, _, waiter in self._due:
            waiter.cancel()
        self._due.clear()
