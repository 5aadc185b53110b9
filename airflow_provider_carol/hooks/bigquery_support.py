"""Pure helpers of the BigQuery hook: the temporary key's lifetime, label rules, error mapping.

Kept apart from :mod:`airflow_provider_carol.hooks.bigquery` so the mixin module stays about its I/O.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow.sdk.log import mask_secret

from airflow_provider_carol.exceptions import CarolBigQueryError, CarolConfigError

BIGQUERY_SCOPES = ("https://www.googleapis.com/auth/bigquery",)
LABEL_SOURCE = "airflow-provider-carol"
_EXPIRY_FORMATS = ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ")
_LABEL_VALUE_BAD = re.compile(r"[^\w-]", re.UNICODE)
_MAX_LABELS = 64
_ORDER_BY = re.compile(r"\bORDER\s+BY\b", re.IGNORECASE)


# ---------------------------------------------------------------------------------------------- key cache
@dataclass
class _TemporaryKey:
    """One minted service-account key; ``info`` holds the private key and is never shown or stored."""

    info: dict[str, Any] = field(repr=False)
    expires_at: dt.datetime
    minted_at: dt.datetime
    credentials: Any = field(repr=False, default=None)

    def needs_renewal(self, now: dt.datetime | None = None) -> bool:
        """True within the renewal margin: a quarter of the key's life, at most 5 minutes."""
        now = now or dt.datetime.now(dt.timezone.utc)
        margin = min(300.0, (self.expires_at - self.minted_at).total_seconds() / 4)
        return now >= self.expires_at - dt.timedelta(seconds=margin)


_KEYS: dict[tuple[str, str, str], _TemporaryKey] = {}
_KEYS_LOCK = threading.Lock()


def parse_key_expiry(value: Any, minted_at: dt.datetime, hours: float) -> dt.datetime:
    """The key's ``expiration_time`` (UTC); a missing or unreadable one means ``minted_at + hours``."""
    if isinstance(value, str):
        for fmt in _EXPIRY_FORMATS:
            try:
                return dt.datetime.strptime(value, fmt).replace(tzinfo=dt.timezone.utc)
            except ValueError:
                continue
    return minted_at + dt.timedelta(hours=hours)


def _mask_private_key(info: Mapping[str, Any]) -> None:
    """Register the PEM, its base64 body and each of its lines with Airflow's secret masker."""
    pem = str(info.get("private_key") or "")
    if not pem:
        return
    mask_secret(pem)
    body = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    mask_secret("".join(body))
    for line in body:
        if len(line) >= 16:  # the short last line alone is not worth a mask (and not a secret)
            mask_secret(line)


# ---------------------------------------------------------------------------------------------- labels
def sanitize_label_key(key: str) -> str:
    """A BigQuery label key: lowercase letters, digits, ``_``/``-``, starts with a letter, <= 63 chars."""
    text = _LABEL_VALUE_BAD.sub("_", str(key).strip().lower())
    if not text or not text[0].isalpha():
        text = f"l_{text}"
    return text[:63]


def sanitize_label_value(value: Any) -> str:
    """A BigQuery label value: lowercase letters, digits, ``_``/``-``, at most 63 chars (may be empty)."""
    return _LABEL_VALUE_BAD.sub("_", str(value).strip().lower())[:63]


def build_labels(*sources: Mapping[str, Any] | None) -> dict[str, str]:
    """Merge label mappings (later wins), sanitised; empty values are dropped, more than 64 is an error."""
    labels: dict[str, str] = {}
    for source in sources:
        for key, value in (source or {}).items():
            if value is None:
                continue
            clean = sanitize_label_value(value)
            if clean:
                labels[sanitize_label_key(key)] = clean
    if len(labels) > _MAX_LABELS:
        raise CarolConfigError(f"BigQuery allows at most {_MAX_LABELS} job labels; got {len(labels)}.")
    return labels


def airflow_labels() -> dict[str, str]:
    """``dag``/``task``/``run`` of the running Airflow task; empty outside a task."""
    try:
        from airflow.sdk import get_current_context

        context = get_current_context()
    except (ImportError, RuntimeError, KeyError, AttributeError):
        return {}
    ti = context.get("ti")
    return {
        "dag": getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", None),
        "task": getattr(ti, "task_id", None),
        "run": context.get("run_id"),
    }


# ---------------------------------------------------------------------------------------------- errors
def bigquery_error(exc: Exception, what: str, job_id: str | None = None) -> CarolBigQueryError:
    """Turn a Google API error into a :class:`CarolBigQueryError` with BigQuery's text and the job id."""
    job_id = job_id or getattr(exc, "job_id", None)
    message = getattr(exc, "message", None) or str(exc)
    errors = getattr(exc, "errors", None) or []
    reason = next((e.get("reason") for e in errors if isinstance(e, dict) and e.get("reason")), None)
    status = getattr(exc, "code", None)
    status = status if isinstance(status, int) else None
    where = f" (job {job_id})" if job_id else ""
    text = f"BigQuery {what} failed{where}: {message}"
    if reason:
        text += f" [reason: {reason}]"
    return CarolBigQueryError(text, job_id=job_id, reason=reason, status_code=status)


def _is_key_rejection(exc: BaseException) -> bool:
    """Errors that mean Google did not accept the key (expired, revoked, deleted), not a bad query."""
    from google.api_core import exceptions as api_exceptions
    from google.auth import exceptions as auth_exceptions

    return isinstance(exc, (auth_exceptions.RefreshError, api_exceptions.Unauthenticated))


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# ---------------------------------------------------------------------------------------------- the mixin
