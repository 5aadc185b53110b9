"""What both event triggers share: the polling loop, the watermark in the asset state store, serialisation.

The concrete triggers (:mod:`~airflow_provider_carol.triggers.events`) say which Carol events they fire
for (:meth:`CarolEventTriggerBase.identity`), what their watermark is and how one poll finds new events.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Generic, Protocol, TypeVar

from airflow.providers.common.compat.triggers import BaseEventTrigger
from airflow.triggers.base import TriggerEvent

from airflow_provider_carol import compat
from airflow_provider_carol.exceptions import CarolConfigError, CarolError
from airflow_provider_carol.hooks.carol_async import CarolAsyncHook
from airflow_provider_carol.hooks.core.retry import RetryPolicy
from airflow_provider_carol.hooks.core.validate import required_string
from airflow_provider_carol.hooks.listings import RecordCounts, Watermark
from airflow_provider_carol.hooks.tasks.polling import is_transient, next_pause

#: Where a new trigger (no watermark stored yet) starts: after what Carol already has, or before it.
START_FROM = ("now", "beginning")
TASK_EVENT = "carol_task"
STAGING_EVENT = "carol_staging_records"


#: A trigger's watermark (what it already fired), plain JSON for the asset state store.
M = TypeVar("M", Watermark, RecordCounts)
#: What one poll found: per new Carol event, the watermark once it fired and its payload. A None
#: payload moves the watermark without firing (a staging whose count went down).
Found = list[tuple[M, dict[str, Any] | None]]


class AssetStateStore(Protocol):
    """What the triggers use of Airflow's asset state store accessor (``self.asset_state_store``)."""

    async def aget(self, key: str, default: Any = None) -> Any: ...

    async def aset(self, key: str, value: Any) -> None: ...


def filter_strings(name: str, values: Sequence[str] | str | None) -> list[str]:
    """A filter list: strings only, order kept, duplicates dropped; a bad value names the field."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    if not all(isinstance(v, str) and v.strip() for v in values):
        raise CarolConfigError(f"{name} must be a list of non-empty strings, got {values!r}.")
    return list(dict.fromkeys(v.strip() for v in values))


class CarolEventTriggerBase(BaseEventTrigger, Generic[M]):
    """Polling loop, watermark storage and serialisation shared by both event triggers."""

    def __init__(
        self,
        carol_conn_id: str,
        *,
        poll_interval: float,
        max_poll_interval: float,
        start_from: str,
        hook_params: Mapping[str, object] | None,
    ) -> None:
        super().__init__()
        compat.warn_event_triggers_unsupported(type(self).__name__)
        required_string("carol_conn_id", carol_conn_id)
        if not float(poll_interval) > 0 or float(max_poll_interval) < float(poll_interval):
            raise CarolConfigError(
                f"poll_interval must be positive and max_poll_interval at least as long, got "
                f"{poll_interval!r} and {max_poll_interval!r}."
            )
        if start_from not in START_FROM:
            raise CarolConfigError(f"start_from must be one of {START_FROM}, got {start_from!r}.")
        self.carol_conn_id = carol_conn_id
        self.poll_interval = float(poll_interval)
        self.max_poll_interval = float(max_poll_interval)
        self.start_from = start_from
        # Validated now, at DAG parse time, so a bad value fails before the watcher is registered.
        self.hook_params = RetryPolicy.from_dict(hook_params).as_dict()
        self._memory: dict[str, Any] = {}

    # -- what the subclasses define ---------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        """The fields that decide which Carol events this trigger fires for (they key its watermark)."""
        raise NotImplementedError

    def empty_mark(self) -> M:
        """The watermark before anything fired."""
        raise NotImplementedError

    def read_mark(self, raw: object) -> M | None:
        """A stored watermark (None when there is none, or it is not this trigger's kind)."""
        raise NotImplementedError

    async def poll(self, hook: CarolAsyncHook, mark: M) -> Found[M]:
        """Carol's events after ``mark``, oldest first (see :data:`Found`)."""
        raise NotImplementedError

    # -- serialisation ----------------------------------------------------------------------------
    def _common(self) -> dict[str, Any]:
        return {
            "carol_conn_id": self.carol_conn_id,
            "poll_interval": self.poll_interval,
            "max_poll_interval": self.max_poll_interval,
            "start_from": self.start_from,
            "hook_params": self.hook_params,
        }

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The class path and plain kwargs (they identify the watcher's trigger, so keep them stable)."""
        kwargs = {k: v for k, v in self.identity().items() if k != "carol_conn_id"}
        return f"{type(self).__module__}.{type(self).__qualname__}", {**kwargs, **self._common()}

    @property
    def watermark_key(self) -> str:
        """The asset-state-store key of this trigger's watermark (two watchers of one asset differ)."""
        digest = hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:16]
        return f"airflow_provider_carol.{type(self).__name__}.{digest}"

    # -- the watermark ----------------------------------------------------------------------------
    def _store(self) -> AssetStateStore | None:
        return getattr(self, "asset_state_store", None)

    async def load_watermark(self) -> M | None:
        """The stored watermark (None before the first poll); memory when there is no state store."""
        store = self._store()
        if store is None:
            return self.read_mark(self._memory.get(self.watermark_key))
        try:
            return self.read_mark(await store.aget(self.watermark_key, None))
        except ValueError as exc:  # the accessor serves exactly one asset
            raise CarolConfigError(
                f"{type(self).__name__} must watch exactly one asset (one AssetWatcher per trigger): {exc}"
            ) from exc

    async def save_watermark(self, watermark: M) -> None:
        store = self._store()
        if store is None:
            self._memory[self.watermark_key] = watermark.to_json()
        else:
            await store.aset(self.watermark_key, watermark.to_json())

    # -- the loop ---------------------------------------------------------------------------------
    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll Carol forever; yield one event per new Carol event, after storing the new watermark."""
        if self._store() is None:
            self.log.warning(
                "No asset state store (Airflow < 3.3, or not run by an AssetWatcher): the watermark is kept "
                "in memory, so after a restart this trigger starts again from start_from=%r.",
                self.start_from,
            )
        async with CarolAsyncHook(self.carol_conn_id, **self.hook_params) as hook:  # type: ignore[arg-type]
            watermark = await self._start(hook)
            pause = self.poll_interval
            while True:
                try:
                    found = await self.poll(hook, watermark)
                except CarolError as exc:
                    if not is_transient(exc):
                        raise
                    pause = next_pause(pause, self.poll_interval, self.max_poll_interval)
                    self.log.warning("Polling Carol failed (%s); polling again in %.0f s.", exc, pause)
                else:
                    pause = self.poll_interval
                    for watermark, payload in found:
                        await self.save_watermark(watermark)  # first: never fired twice
                        if payload is not None:
                            self.log.info("Carol event %s: %s.", payload["event"], self.describe(payload))
                            yield TriggerEvent(payload)
                await asyncio.sleep(pause)

    def describe(self, payload: dict[str, Any]) -> str:
        """The event in a log line (ids and counts only)."""
        raise NotImplementedError

    async def _start(self, hook: CarolAsyncHook) -> M:
        """The stored watermark, or (first start) one past what Carol has now or before everything."""
        stored = await self.load_watermark()
        if stored is not None:
            self.log.info("Resuming after the stored watermark %s.", stored.to_json())
            return stored
        watermark = self.empty_mark()
        if self.start_from == "now":
            found = await self.poll(hook, watermark)
            watermark = found[-1][0] if found else watermark
        await self.save_watermark(watermark)
        self.log.info("First start (start_from=%r): watermark %s.", self.start_from, watermark.to_json())
        return watermark
