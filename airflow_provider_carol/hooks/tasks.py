"""Tasks methods of :class:`~airflow_provider_carol.hooks.carol.CarolHook` (mixed into it)."""

from __future__ import annotations


class TasksHookMixin:
    """Tasks part of CarolHook; relies on the host class's ``call_api``/``request``/``config``."""
