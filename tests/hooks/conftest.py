"""Fixtures for the hook tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_carol.hooks.carol import CarolHook


@pytest.fixture
def hook(carol_sandbox: Any) -> Iterator[CarolHook]:
    """A default ``CarolHook`` on the sandbox's ``carol_default`` connection, closed after the test."""
    with CarolHook() as carol_hook:
        yield carol_hook
