"""Google API errors as :class:`CarolBigQueryError` (BigQuery's text, reason and job id)."""

from __future__ import annotations

import ipaddress

from airflow_provider_carol.exceptions import CarolBigQueryError


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


def key_failure(exc: BaseException) -> str | None:
    """How Google failed the temporary key, if it did: ``"rejected"`` or ``"transport"``, else None.

    ``rejected``: BigQuery answered 401 (``Unauthorized`` over REST, ``Unauthenticated`` over gRPC) or the
    token exchange was refused (``RefreshError``: the key expired, was revoked or deleted); ``transport``:
    the token exchange could not reach Google (``TransportError``), so the request was not sent. Anything
    else (a bad query, a missing table) is not about the key and is never retried here.
    """
    from google.api_core import exceptions as api_exceptions
    from google.auth import exceptions as auth_exceptions

    if isinstance(exc, auth_exceptions.RefreshError | api_exceptions.Unauthorized):
        return "rejected"
    if isinstance(exc, auth_exceptions.TransportError):
        return "transport"
    return None


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine (a local emulator is reached in plaintext gRPC)."""
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
