"""One HTTP exchange as plain values, for both HTTP libraries: request, response, failure, URL, headers.

A request that got no answer is classified once (:func:`classify`), for ``requests`` and ``httpx``
alike: could it have reached Carol, and was it the certificate?
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from airflow_provider_carol import __version__
from airflow_provider_carol.hooks.core import errors

USER_AGENT = f"airflow-provider-carol/{__version__}"


@dataclass(frozen=True)
class HttpRequest:
    """One HTTP exchange to perform; ``body`` is bytes or a form, ``params`` hold no ``None`` values."""

    method: str
    url: str
    params: Mapping[str, object] | None = None
    body: bytes | Mapping[str, str] | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def path(self) -> str:
        """The URL path, for messages (never the query string)."""
        return urlsplit(self.url).path


@dataclass(frozen=True)
class HttpResponse:
    """What either HTTP library answered, reduced to what the pipeline reads."""

    status: int
    headers: Mapping[str, str] = field(repr=False)
    content: bytes = field(repr=False)
    url: str = ""
    #: The library's own response object (``requests.Response`` or ``httpx.Response``), for callers.
    raw: object = field(default=None, repr=False, compare=False)


class TransportFailure(Exception):
    """A request that got no HTTP answer; ``unsent`` when it cannot have reached Carol."""

    def __init__(self, reason: str, *, unsent: bool, certificate: bool) -> None:
        super().__init__(reason)
        self.reason, self.unsent, self.certificate = reason, unsent, certificate


def _unsent_types() -> tuple[type[BaseException], ...]:
    import httpx
    import requests
    import urllib3.exceptions

    return (
        requests.ConnectTimeout,
        urllib3.exceptions.NewConnectionError,  # incl. NameResolutionError
        urllib3.exceptions.ConnectTimeoutError,
        httpx.ConnectError,
        httpx.ConnectTimeout,
        httpx.PoolTimeout,
        ConnectionRefusedError,
        socket.gaierror,
    )


def classify(exc: BaseException) -> TransportFailure:
    """The one retry classifier for both HTTP libraries: was anything sent, is it the certificate?"""
    chain = errors.exception_chain(exc)
    unsent = _unsent_types()
    reason = " ".join(str(exc).split()) or type(exc).__name__
    return TransportFailure(
        reason,
        unsent=any(isinstance(seen, unsent) for seen in chain),
        certificate=errors.is_certificate_error(exc),
    )


def default_headers() -> dict[str, str]:
    """Headers every Carol request carries (auth headers are added per request)."""
    return {"Accept": "application/json", "User-Agent": USER_AGENT}


def join_url(base_url: str, prefix: str, path: str) -> str:
    """``base_url`` + ``/prefix/`` + ``path``, tolerant of leading and trailing slashes."""
    prefix = prefix.strip("/")
    return f"{base_url}/{prefix}/{path.lstrip('/')}" if prefix else f"{base_url}/{path.lstrip('/')}"


def params_without_none(params: Mapping[str, object] | None) -> dict[str, object] | None:
    """Drop ``None`` values, so both HTTP libraries send the same query string."""
    return None if params is None else {key: value for key, value in params.items() if value is not None}
