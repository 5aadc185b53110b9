"""Masking secrets in text that leaves the provider: log lines shipped to Carol, Carol's own text in errors.

One helper for every such place, so a secret Airflow knows about (connection passwords, tokens, keys
registered with ``mask_secret``) is masked the same way everywhere.
"""

from __future__ import annotations

import json

#: Answer fields whose values are masked whatever Airflow knows (tokens, keys, passwords in any case).
SECRET_FIELD_MARKERS = ("token", "password", "secret", "private_key", "apikey", "api_key", "x-auth-key")
MASK = "***"


def redact_text(text: str) -> str:
    """``text`` with every secret Airflow knows masked (every Airflow line, through common-compat);
    masking never fails the caller."""
    from airflow.providers.common.compat.sdk import redact

    try:
        masked = redact(text)
    except Exception:  # noqa: BLE001 - masking must never stop the caller; fall back to the raw text
        return text
    return masked if isinstance(masked, str) else text


def _mask_fields(value: object) -> object:
    if isinstance(value, dict):
        return {
            key: MASK if any(m in str(key).lower() for m in SECRET_FIELD_MARKERS) else _mask_fields(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_mask_fields(item) for item in value]
    return value


def redact_answer(body: object, limit: int = 2000) -> str:
    """A Carol answer as compact JSON for a log line: secret-looking fields and known secrets masked."""
    try:
        text = json.dumps(_mask_fields(body), sort_keys=True, default=str, separators=(",", ":"))
    except (TypeError, ValueError):
        text = repr(body)
    text = redact_text(text)
    return text if len(text) <= limit else text[:limit] + "..."
