"""Request building, retry decisions and error mapping shared by the sync and async Carol hooks.

Both hooks call these functions, so ``requests`` and ``httpx`` paths cannot drift: the same statuses
are retried, the same ``Retry-After`` cap applies, and the same error types carry the same text.
"""

from __future__ import annotations

import email.utils
import json
import random
import time
from collections.abc import Mapping
from typing import Any

from airflow_provider_carol import __version__
from airflow_provider_carol.exceptions import (
    CarolApiError,
    CarolAuthError,
    CarolConfigError,
    CarolConnectionError,
    CarolNotFound,
)

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504, 524})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
USER_AGENT = f"airflow-provider-carol/{__version__}"
_SSO_MARKER = "Single Sign On enabled"
_EXCERPT = 300


def default_method(json_body: Any, data: Any) -> str:
    """GET without a body, POST with one (Carol's own convention)."""
    return "GET" if json_body is None and data is None else "POST"


def join_url(base_url: str, prefix: str, path: str) -> str:
    """``base_url`` + ``/prefix/`` + ``path``, tolerant of leading and trailing slashes."""
    return (
        f"{base_url}/{prefix.strip('/')}/{path.lstrip('/')}"
        if prefix.strip("/")
        else f"{base_url}/{path.lstrip('/')}"
    )


def check_retry_settings(retry_limit: int, retry_delay: float, max_retry_wait: float) -> None:
    """Both hooks take the same retry settings; none may be negative."""
    if retry_limit < 0 or retry_delay < 0 or max_retry_wait < 0:
        raise CarolConfigError("retry_limit, retry_delay and max_retry_wait must not be negative.")


def is_idempotent(method: str, idempotent: bool | None) -> bool:
    """``None`` means: GET/HEAD/PUT/DELETE retry, POST and PATCH do not unless the caller says so."""
    return method.upper() in IDEMPOTENT_METHODS if idempotent is None else idempotent


def retry_after_seconds(headers: Mapping[str, str], cap: float) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (delta or HTTP date), capped; None when absent/bad."""
    value = headers.get("Retry-After") or headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        if parsed is None:
            return None
        seconds = parsed.timestamp() - time.time()
    return max(0.0, min(seconds, cap))


def backoff_seconds(attempt: int, base: float, cap: float) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2**(attempt-1))]."""
    return random.uniform(0, min(cap, base * 2 ** max(0, attempt - 1)))


def error_in_body(status: int, content: bytes, method: str, url_path: str) -> CarolApiError | None:
    """A 2xx answer whose body is Carol's error object (``errorCode`` + ``errorMessage``) is a failure.

    Carol sometimes answers 200 with an error body; taking it as data would, e.g., count an intake chunk
    Carol never stored. The check is cheap: only small bodies that mention ``errorCode`` are parsed.
    """
    if not content or b'"errorCode"' not in content[:4096] or not content.lstrip().startswith(b"{"):
        return None
    fields = _error_fields(content)
    if fields.get("errorCode") in (None, "", 0) or not fields.get("errorMessage"):
        return None
    error = error_for_response(status, content, method, url_path)
    error.args = (f"{error} (Carol answered HTTP {status} with an error body)",)
    return error


def parse_json_body(content: bytes, method: str, url_path: str) -> Any:
    """Decode a 2xx body: ``{}`` when empty, a clear error when it is not JSON."""
    if not content or not content.strip():
        return {}
    try:
        return json.loads(content)
    except ValueError:
        raise CarolApiError(
            f"Carol {method} {url_path} answered with a body that is not JSON: {_excerpt(content)!r}",
            endpoint=f"{method} {url_path}",
        ) from None


def _excerpt(content: bytes | str) -> str:
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
    text = " ".join(text.split())
    return text if len(text) <= _EXCERPT else text[:_EXCERPT] + "..."


def _error_fields(content: bytes) -> dict[str, Any]:
    try:
        body = json.loads(content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def error_for_response(status: int, content: bytes, method: str, url_path: str) -> CarolApiError:
    """Map an error response to the narrowest :class:`CarolApiError` (endpoint, status, Carol's text)."""
    fields = _error_fields(content)
    error_message = fields.get("errorMessage") or fields.get("message") or fields.get("error_description")
    error_code = fields.get("errorCode")
    responsible = fields.get("possibleResponsibleField")
    detail = str(error_message) if error_message else _excerpt(content) or "(empty body)"
    message = f"Carol {method} {url_path} failed with HTTP {status}: {detail}"
    if error_code not in (None, "", status):
        message += f" (errorCode {error_code})"
    if responsible:
        message += f" (field: {responsible})"
    cls: type[CarolApiError] = CarolApiError
    if status in (401, 403) or _SSO_MARKER in detail:
        cls = CarolAuthError
        if _SSO_MARKER in detail:
            message += ". This user signs in through SSO; use auth_type 'api_key' or 'token' instead."
    elif status == 404:
        cls = CarolNotFound
    return cls(
        message,
        status_code=status,
        error_code=error_code,
        error_message=str(error_message) if error_message else None,
        possible_responsible_field=responsible,
        endpoint=f"{method} {url_path}",
    )


_CERTIFICATE_MARKERS = (
    "certificate",
    "hostname mismatch",
    "self signed",
    "self-signed",
    "unable to get local issuer",
)


def is_certificate_error(exc: BaseException) -> bool:
    """True when TLS refused the server's certificate (retrying cannot help; ``verify`` must change).

    A TLS error that is not about the certificate (e.g. ``SSLEOFError`` when a connection is dropped
    mid-request) is a transport failure like any other, retried under the same rules.
    """
    seen: BaseException | None = exc
    while seen is not None:
        if type(seen).__name__ == "SSLCertVerificationError":
            return True
        text = str(seen).lower()
        if any(marker in text for marker in _CERTIFICATE_MARKERS):
            return True
        nxt = seen.__cause__ or seen.__context__ or getattr(seen, "reason", None)
        seen = nxt if isinstance(nxt, BaseException) and nxt is not seen else None
    return False


def connection_error(
    exc: BaseException, method: str, url: str, *, verify: bool | str
) -> CarolConnectionError:
    """A transport failure as a :class:`CarolConnectionError`; certificate failures say what to change."""
    reason = " ".join(str(exc).split()) or type(exc).__name__
    if is_certificate_error(exc):
        hint = (
            f"TLS verification failed for {url} (verify={verify!r}): {reason}. Point the connection extra "
            "'verify' at the CA bundle that signed the server's certificate."
        )
        return CarolConnectionError(f"Carol {method} {url}: {hint}")
    return CarolConnectionError(f"Carol {method} {url} could not be completed: {reason}")


def default_headers() -> dict[str, str]:
    """Headers every Carol request carries (auth headers are added per request)."""
    return {"Accept": "application/json", "User-Agent": USER_AGENT}


def encode_body(json_body: Any, data: Any, method: str, path: str) -> tuple[Any, dict[str, str]]:
    """Strict JSON for ``json=`` (NaN/Infinity are an error, not invalid JSON on the wire); ``data`` as is."""
    if json_body is None:
        return data, {}
    if data is not None:
        raise CarolConfigError(f"Carol {method} {path}: pass either json or data, not both.")
    try:
        encoded = json.dumps(json_body, allow_nan=False, separators=(",", ":")).encode()
    except (TypeError, ValueError) as exc:
        raise CarolConfigError(f"Carol {method} {path}: the JSON body cannot be sent: {exc}") from None
    return encoded, {"Content-Type": "application/json"}


class RetryableResponse(Exception):
    """Raised inside a hook's retry loop for a 429/5xx answer to an idempotent request."""

    def __init__(self, response: Any) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def retry_wait(exc: BaseException | None, attempt: int, *, base: float, max_wait: float) -> float:
    """How long to wait before the next attempt: the server's ``Retry-After`` (capped), else backoff."""
    if isinstance(exc, RetryableResponse):
        asked = retry_after_seconds(exc.response.headers, cap=max_wait)
        if asked is not None:
            return asked
    return backoff_seconds(attempt, base, min(30.0, max_wait))


def refused_grant(exc: CarolApiError, purpose: str) -> CarolApiError:
    """A token endpoint's 4xx is an auth failure: re-type it; transport-ish errors stay as they are."""
    if isinstance(exc, CarolAuthError) or exc.status_code is None or exc.status_code >= 500:
        return exc
    return CarolAuthError(
        f"Carol {purpose} was refused: {exc}",
        status_code=exc.status_code,
        error_code=exc.error_code,
        error_message=exc.error_message,
        possible_responsible_field=exc.possible_responsible_field,
        endpoint=exc.endpoint,
    )
