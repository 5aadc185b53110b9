"""Carol's answers and transport failures as typed errors: one mapping for both hooks.

Messages name the method, the URL path (never the query string, which may carry ids a user did not
choose to log), the HTTP status and Carol's own error text; headers and bodies we sent never enter them.
"""

from __future__ import annotations

import json
from typing import Any

from airflow_provider_carol.exceptions import (
    CarolApiError,
    CarolAuthError,
    CarolConnectionError,
    CarolInvalidRequest,
    CarolNotFound,
)

#: Answers that say the request itself is wrong: another try of the same request cannot succeed.
INVALID_REQUEST_STATUSES = frozenset({400, 413, 422})

_SSO_MARKER = "Single Sign On enabled"
_EXCERPT = 300
_CERTIFICATE_MARKERS = (
    "certificate",
    "hostname mismatch",
    "self signed",
    "self-signed",
    "unable to get local issuer",
)


def excerpt(content: bytes | str) -> str:
    """A one-line, bounded excerpt of a body for an error message."""
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
    application_code = fields.get("applicationErrorCode")
    detail = str(error_message) if error_message else excerpt(content) or "(empty body)"
    message = f"Carol {method} {url_path} failed with HTTP {status}: {detail}"
    if error_code not in (None, "", status):
        message += f" (errorCode {error_code})"
    if responsible:
        message += f" (field: {responsible})"
    if application_code not in (None, ""):
        message += f" (applicationErrorCode {application_code})"
    cls: type[CarolApiError] = CarolApiError
    if status in (401, 403) or _SSO_MARKER in detail:
        cls = CarolAuthError
        if _SSO_MARKER in detail:
            message += ". This user signs in through SSO; use auth_type 'api_key' or 'token' instead."
    elif status == 404:
        cls = CarolNotFound
    elif status in INVALID_REQUEST_STATUSES:
        cls = CarolInvalidRequest
    return cls(
        message,
        status_code=status,
        error_code=error_code,
        error_message=str(error_message) if error_message else None,
        possible_responsible_field=responsible,
        endpoint=f"{method} {url_path}",
        application_error_code=application_code,
    )


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
            f"Carol {method} {url_path} answered with a body that is not JSON: {excerpt(content)!r}",
            endpoint=f"{method} {url_path}",
        ) from None


def is_certificate_error(exc: BaseException) -> bool:
    """True when TLS refused the server's certificate (retrying cannot help; ``verify`` must change).

    A TLS error that is not about the certificate (e.g. ``SSLEOFError`` when a connection is dropped
    mid-request) is a transport failure like any other, retried under the same rules.
    """
    for seen in exception_chain(exc):
        if type(seen).__name__ == "SSLCertVerificationError":
            return True
        text = str(seen).lower()
        if any(marker in text for marker in _CERTIFICATE_MARKERS):
            return True
    return False


def exception_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and what caused it: ``__cause__``/``__context__`` and urllib3's ``reason``."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in chain:
        chain.append(seen)
        following = seen.__cause__ or seen.__context__ or getattr(seen, "reason", None)
        seen = following if isinstance(following, BaseException) else None
    return chain


def connection_error(
    reason: str, method: str, url: str, *, certificate: bool, verify: bool | str
) -> CarolConnectionError:
    """A transport failure as a :class:`CarolConnectionError`; certificate failures say what to change.

    ``url`` is the request URL without its query string.
    """
    if certificate:
        return CarolConnectionError(
            f"Carol {method} {url}: TLS verification failed for {url} (verify={verify!r}): {reason}. Point "
            "the connection extra 'verify' at the CA bundle that signed the server's certificate."
        )
    return CarolConnectionError(f"Carol {method} {url} could not be completed: {reason}")


def refused_grant(exc: CarolApiError, purpose: str) -> CarolApiError:
    """A token endpoint's 4xx is an auth failure: re-type it; transport-ish errors stay as they are."""
    if isinstance(exc, CarolAuthError) or exc.status_code is None or exc.status_code >= 500:
        return exc
    return CarolAuthError(f"Carol {purpose} was refused: {exc}", **exc.api_fields())
