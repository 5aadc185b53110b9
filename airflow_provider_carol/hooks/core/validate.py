"""The one check for a required string argument (ids, names): before any request, naming the argument."""

from __future__ import annotations

from airflow_provider_carol.exceptions import CarolConfigError


def required_string(name: str, value: object, *, or_none: bool = False) -> str:
    """``value`` stripped; anything but a non-blank string is a :class:`CarolConfigError` naming ``name``."""
    if not isinstance(value, str) or not value.strip():
        allowed = "a non-empty string or None" if or_none else "a non-empty string"
        raise CarolConfigError(f"{name} must be {allowed}, got {value!r}.")
    return value.strip()


def optional_string(name: str, value: object) -> str | None:
    """Like :func:`required_string`, but ``None`` is allowed (and returned)."""
    return None if value is None else required_string(name, value, or_none=True)
