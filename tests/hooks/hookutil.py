"""Helpers for the hook tests."""

from __future__ import annotations

from airflow_provider_carol.hooks.carol import CarolHook


def fast_retry_hook() -> CarolHook:
    """A new ``CarolHook`` on ``carol_default`` that retries quickly (``retry_limit=3``, 10 ms apart)."""
    return CarolHook(retry_delay=0.01, retry_limit=3)
