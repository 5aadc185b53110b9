"""Carol's temporary BigQuery service-account keys: minted by Carol, kept in process memory only.

A key is cached per (connection, API host, tenant), renewed shortly before it expires, registered with
Airflow's secret masker, never written to disk, never logged. Unlike pycarol, a new key is minted once
per renewal, never once per retry.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from airflow.providers.common.compat.sdk import mask_secret

from airflow_provider_carol.hooks.core.types import Json

_EXPIRY_FORMATS = ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ")
KeyId = tuple[str, str, str]


@dataclass
class TemporaryKey:
    """One minted service-account key; ``info`` holds the private key and is never shown or stored."""

    info: dict[str, Json] = field(repr=False)
    expires_at: dt.datetime
    minted_at: dt.datetime
    #: ``google.oauth2.service_account.Credentials`` built from ``info`` on first use.
    credentials: object = field(repr=False, default=None)

    def needs_renewal(self, now: dt.datetime | None = None) -> bool:
        """True within the renewal margin: a quarter of the key's life, at most 5 minutes."""
        now = now or dt.datetime.now(dt.timezone.utc)
        margin = min(300.0, (self.expires_at - self.minted_at).total_seconds() / 4)
        return now >= self.expires_at - dt.timedelta(seconds=margin)


class KeyCache:
    """Keys by (connection id, API host, tenant id), shared by every hook of the process (thread-safe)."""

    def __init__(self) -> None:
        self._keys: dict[KeyId, TemporaryKey] = {}
        self._lock = threading.Lock()

    def get(self, key_id: KeyId) -> TemporaryKey | None:
        """The cached key, whatever its age (for the rejected-key path)."""
        return self._keys.get(key_id)

    def valid(
        self, key_id: KeyId, mint: Callable[[], TemporaryKey], *, stale: TemporaryKey | None = None
    ) -> TemporaryKey:
        """The cached key, minting a new one when absent, near expiry, or equal to ``stale`` (rejected)."""
        with self._lock:
            key = self._keys.get(key_id)
            if key is not None and key is not stale and not key.needs_renewal():
                return key
            key = mint()
            self._keys[key_id] = key
            return key

    def keys(self) -> list[TemporaryKey]:
        """Every cached key (tests check their masking and renewal)."""
        return list(self._keys.values())

    def clear(self) -> None:
        """Forget every key (the next use mints a new one)."""
        with self._lock:
            self._keys.clear()


#: The process's key cache.
TEMPORARY_KEYS = KeyCache()


def parse_key_expiry(value: object, minted_at: dt.datetime, hours: float) -> dt.datetime:
    """The key's ``expiration_time`` (UTC); a missing or unreadable one means ``minted_at + hours``."""
    if isinstance(value, str):
        for fmt in _EXPIRY_FORMATS:
            try:
                return dt.datetime.strptime(value, fmt).replace(tzinfo=dt.timezone.utc)
            except ValueError:
                continue
    return minted_at + dt.timedelta(hours=hours)


def mask_private_key(info: Mapping[str, Json]) -> None:
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
