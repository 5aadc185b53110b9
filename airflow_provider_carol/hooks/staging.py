"""Staging methods of :class:`~airflow_provider_carol.hooks.carol.CarolHook` (mixed into it)."""

from __future__ import annotations


class StagingHookMixin:
    """Staging part of CarolHook; relies on the host class's ``call_api``/``request``/``config``."""
