"""When a request is tried again, and after how long: the one retry rule of both hooks and the triggers.

A request that cannot have reached Carol, or that Carol said it did not process, is retried for every
method; other transient failures only when the request is safe to resend; a certificate failure never.
Waits honour ``Retry-After`` (capped), else full-jitter exponential backoff.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass

from airflow_provider_carol.exceptions import CarolConfigError
from airflow_provider_carol.hooks.core.wire import HttpResponse, TransportFailure

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504, 524})
#: What pycarol resends an intake chunk on, with the same URL (so the same batchId and batchIdSequence):
#: staging.py L259-263 (409 since 2.56.3). Safe because a resent (batchId, sequence) replaces the chunk.
INTAKE_RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 520, 524, 598})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
#: Longest backoff between attempts when the server does not say (``Retry-After`` may ask for more).
MAX_BACKOFF = 30.0


@dataclass(frozen=True)
class RetryPolicy:
    """How transient failures are retried; the same settings for both hooks and for triggers.

    :param retry_limit: retries of a retryable failure (0 disables retries).
    :param retry_delay: base of the exponential backoff, seconds (full jitter).
    :param max_retry_wait: cap on any single wait, including a server's ``Retry-After``.
    """

    retry_limit: int = 5
    retry_delay: float = 0.5
    max_retry_wait: float = 60.0

    def __post_init__(self) -> None:
        numbers = (self.retry_limit, self.retry_delay, self.max_retry_wait)
        if any(isinstance(v, bool) or not isinstance(v, int | float) for v in numbers):
            raise CarolConfigError(
                f"retry_limit, retry_delay and max_retry_wait must be numbers, got {numbers}."
            )
        if not isinstance(self.retry_limit, int) or min(numbers) < 0:
            raise CarolConfigError(
                "retry_limit must be an integer and retry_limit, retry_delay and max_retry_wait must not be "
                f"negative, got {numbers}."
            )

    def as_dict(self) -> dict[str, float]:
        """Plain values, e.g. for a trigger's ``serialize()``."""
        return {
            "retry_limit": self.retry_limit,
            "retry_delay": self.retry_delay,
            "max_retry_wait": self.max_retry_wait,
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, object] | None) -> RetryPolicy:
        """Rebuild from :meth:`as_dict` (unknown keys are an error that names them)."""
        values = dict(values or {})
        unknown = sorted(set(values) - {"retry_limit", "retry_delay", "max_retry_wait"})
        if unknown:
            raise CarolConfigError(
                f"Unknown retry settings {unknown}; use retry_limit, retry_delay, max_retry_wait."
            )
        return cls(**values)  # type: ignore[arg-type]  # __post_init__ checks the types

    def wait(self, attempt: int, response: HttpResponse | None) -> float:
        """The server's ``Retry-After`` (capped) for a retryable answer, else full-jitter backoff."""
        if response is not None:
            asked = retry_after_seconds(response.headers, cap=self.max_retry_wait)
            if asked is not None:
                return asked
        return backoff_seconds(attempt, self.retry_delay, min(MAX_BACKOFF, self.max_retry_wait))


def retry_after_seconds(headers: Mapping[str, str], cap: float) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (delta or HTTP date), capped; None when absent/bad."""
    value = headers.get("Retry-After") or headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = parsed.timestamp() - time.time()
    return max(0.0, min(seconds, cap))


def backoff_seconds(attempt: int, base: float, cap: float) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2**(attempt-1))]."""
    return random.uniform(0, min(cap, base * 2 ** max(0, attempt - 1)))


def is_idempotent(method: str, idempotent: bool | None) -> bool:
    """``None`` means: GET/HEAD/PUT/DELETE retry, POST and PATCH do not unless the caller says so."""
    return method.upper() in IDEMPOTENT_METHODS if idempotent is None else idempotent


def was_not_processed(response: HttpResponse) -> bool:
    """Carol said it did not process the request: 429, or 503 with a ``Retry-After`` (overload)."""
    return response.status == 429 or (
        response.status == 503
        and bool(response.headers.get("Retry-After") or response.headers.get("retry-after"))
    )


def should_retry(
    outcome: HttpResponse | TransportFailure,
    retryable: bool,
    statuses: frozenset[int] = RETRYABLE_STATUSES,
) -> bool:
    """The one retry rule of both hooks.

    An unsent request (connection refused, connect timeout) and a request Carol said it did not process
    (:func:`was_not_processed`) are retried for every method, POST included; other transient failures
    (``statuses``) only when the request is safe to resend; a certificate failure never.
    """
    if isinstance(outcome, TransportFailure):
        return not outcome.certificate and (outcome.unsent or retryable)
    if was_not_processed(outcome):
        return True
    return retryable and outcome.status in statuses
