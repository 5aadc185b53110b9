"""Durable long work: what one try of an Airflow task leaves for the next, in the task state store.

Airflow 3.3 keeps a small key-value store per task instance (``context["task_state_store"]``, scoped to
dag, run, task and map index, so it survives retries and worker crashes). The operators keep there what
a retry needs to resume instead of redoing: the Carol task an app process started, the chunks Carol
acknowledged, the tracker's bookkeeping. Where the store is unavailable (outside a task, older Airflow)
everything works as before and one log line says that a retry starts over.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Protocol

from airflow_provider_carol import compat
from airflow_provider_carol.hooks.core.types import Json

log = logging.getLogger("airflow_provider_carol.task_state")


class TaskStateStore(Protocol):
    """The part of Airflow's ``TaskStateStoreAccessor`` we use (JSON values, ``None`` is not storable)."""

    def get(self, key: str, default: Json = None) -> Json: ...

    def set(self, key: str, value: Json) -> None: ...

    def delete(self, key: str) -> None: ...


def state_store(context: Mapping[str, object] | None = None, *, purpose: str) -> TaskStateStore | None:
    """The running task's state store, or None (outside a task, or an Airflow without one; logged once).

    ``context`` is the task context when the caller has it; otherwise the current one is looked up.
    """
    if context is None:
        try:
            from airflow.providers.common.compat.sdk import get_current_context

            context = get_current_context()
        except Exception:  # noqa: BLE001 - not inside an Airflow task (plain scripts, tests)
            return None
    store = context.get("task_state_store")
    if store is None or not all(hasattr(store, name) for name in ("get", "set", "delete")):
        compat.log_degraded(
            f"task_state_store:{purpose}",
            f"no task state store (Airflow 3.3+): {purpose} is not kept across tries, "
            "so a retry starts over.",
        )
        return None
    return store  # type: ignore[return-value]  # Airflow's accessor matches TaskStateStore


def forget(store: TaskStateStore | None, key: str) -> None:
    """Delete ``key``; a failure to delete is logged, never raised (the work itself succeeded)."""
    if store is None:
        return
    try:
        store.delete(key)
    except Exception as exc:  # noqa: BLE001 - best effort: a stale key only costs a resume check
        log.warning("Could not delete %r from the task state store: %s", key, exc)
