"""The Carol request pipeline, written once as I/O-free steps; the two hooks only perform the I/O.

A *flow* is a generator that yields actions and receives their results:

* :class:`Send` an :class:`HttpRequest` -> an :class:`HttpResponse` (a failure is thrown in as a
  :class:`TransportFailure`, classified once by :func:`classify` for ``requests`` and ``httpx`` alike);
* :class:`Sleep` some seconds -> None;
* :class:`Authenticate` -> the token to send (the driver renews it under its own lock);
* :class:`Call` a Carol endpoint -> its parsed JSON (the driver runs :func:`call_flow` for it);
* :class:`Parallel` flows -> their results, in order (concurrent where the driver can).

``CarolHook`` drives flows with ``requests`` and ``time.sleep``, ``CarolAsyncHook`` with ``httpx`` and
``asyncio.sleep``. URL joining, body encoding, auth headers, the one re-authentication after a 401,
the retry decision, ``Retry-After``, error mapping and retry logging all live here, so they cannot drift.
"""

from __future__ import annotations

import email.utils
import json
import random
import socket
import time
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypeVar
from urllib.parse import urlsplit

from airflow_provider_carol import __version__
from airflow_provider_carol.exceptions import CarolApiError, CarolAuthError, CarolConfigError
from airflow_provider_carol.hooks.core import endpoints, errors
from airflow_provider_carol.hooks.core.auth import Token, TokenRequest, auth_headers
from airflow_provider_carol.hooks.core.config import CarolConnectionConfig
from airflow_provider_carol.hooks.core.protocols import LoggerLike

T = TypeVar("T")
#: Parsed JSON from Carol: whatever ``json.loads`` returns.
Json: TypeAlias = Any

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504, 524})
#: What pycarol resends an intake chunk on, with the same URL (so the same batchId and batchIdSequence):
#: staging.py L259-263 (409 since 2.56.3). Safe because a resent (batchId, sequence) replaces the chunk.
INTAKE_RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 520, 524, 598})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
USER_AGENT = f"airflow-provider-carol/{__version__}"
#: Longest backoff between attempts when the server does not say (``Retry-After`` may ask for more).
MAX_BACKOFF = 30.0


# ---------------------------------------------------------------------------------------------- wire values
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


# ---------------------------------------------------------------------------------------------- actions
@dataclass(frozen=True)
class Send:
    """Perform one HTTP exchange."""

    request: HttpRequest


@dataclass(frozen=True)
class Sleep:
    """Pause (``time.sleep`` or ``asyncio.sleep``)."""

    seconds: float


@dataclass(frozen=True)
class Authenticate:
    """The token to send now; ``rejected`` means Carol answered 401 to ``stale``."""

    stale: Token | None = None
    rejected: bool = False


@dataclass(frozen=True)
class Call:
    """One logical Carol API call (retries and re-authentication included); its result is the JSON."""

    path: str
    method: str | None = None
    params: Mapping[str, object] | None = None
    json: Json = None
    data: bytes | str | Mapping[str, str] | None = None
    headers: Mapping[str, str] | None = field(default=None, repr=False)
    prefix: str = endpoints.API_PREFIX
    idempotent: bool | None = None
    authenticate: bool = True
    #: Statuses a resendable request is retried on (default :data:`RETRYABLE_STATUSES`).
    retry_statuses: frozenset[int] = RETRYABLE_STATUSES
    #: Whether a 401 renews the token and resends once (False where a 401 is an expected answer).
    reauthenticate: bool = True

    @classmethod
    def to(cls, endpoint: endpoints.Endpoint, /, **kwargs: Any) -> Call:
        """A call of ``endpoint`` (its method and prefix); ``path_params`` fill the template."""
        path_params = kwargs.pop("path_params", {})
        return cls(endpoint.path(**path_params), endpoint.method, prefix=endpoint.prefix, **kwargs)

    @property
    def verb(self) -> str:
        """The HTTP method: as given, else GET without a body and POST with one (Carol's convention)."""
        if self.method:
            return self.method.upper()
        return "GET" if self.json is None and self.data is None else "POST"


@dataclass(frozen=True)
class Parallel:
    """Run independent flows (concurrently where the driver can); the result lists theirs, in order."""

    flows: Sequence[Generator[Action, Any, Any]]


Action: TypeAlias = Send | Sleep | Authenticate | Call | Parallel
#: A flow: yields actions, receives their results, returns a ``T``.
Flow: TypeAlias = Generator[Action, Any, T]


# ---------------------------------------------------------------------------------------------- retry policy
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


# ---------------------------------------------------------------------------------------------- building
def default_headers() -> dict[str, str]:
    """Headers every Carol request carries (auth headers are added per request)."""
    return {"Accept": "application/json", "User-Agent": USER_AGENT}


def join_url(base_url: str, prefix: str, path: str) -> str:
    """``base_url`` + ``/prefix/`` + ``path``, tolerant of leading and trailing slashes."""
    prefix = prefix.strip("/")
    return f"{base_url}/{prefix}/{path.lstrip('/')}" if prefix else f"{base_url}/{path.lstrip('/')}"


def encode_body(call: Call) -> tuple[bytes | Mapping[str, str] | None, dict[str, str]]:
    """Strict JSON for ``json=`` (NaN/Infinity are an error, not invalid JSON on the wire); ``data`` as is."""
    if call.json is None:
        data = call.data.encode() if isinstance(call.data, str) else call.data
        return data, {}
    if call.data is not None:
        raise CarolConfigError(f"Carol {call.verb} {call.path}: pass either json or data, not both.")
    try:
        encoded = json.dumps(call.json, allow_nan=False, separators=(",", ":")).encode()
    except (TypeError, ValueError) as exc:
        raise CarolConfigError(
            f"Carol {call.verb} {call.path}: the JSON body cannot be sent: {exc}"
        ) from None
    return encoded, {"Content-Type": "application/json"}


def _params(params: Mapping[str, object] | None) -> dict[str, object] | None:
    """Drop ``None`` values, so both HTTP libraries send the same query string."""
    return None if params is None else {key: value for key, value in params.items() if value is not None}


# ---------------------------------------------------------------------------------------------- flows
@dataclass(frozen=True)
class Pipeline:
    """The flows of one connection: its settings, its retry policy and the logger retries go to."""

    config: CarolConnectionConfig
    policy: RetryPolicy
    log: LoggerLike

    def exchange(
        self, request: HttpRequest, *, retryable: bool, statuses: frozenset[int] = RETRYABLE_STATUSES
    ) -> Flow[HttpResponse]:
        """Send ``request`` under the policy; return the last answer, raise when no answer ever came."""
        attempt = 1
        while True:
            outcome: HttpResponse | TransportFailure
            try:
                outcome = yield Send(request)
            except TransportFailure as failure:
                outcome = failure
            if attempt > self.policy.retry_limit or not should_retry(outcome, retryable, statuses):
                if isinstance(outcome, TransportFailure):
                    raise errors.connection_error(
                        outcome.reason,
                        request.method,
                        request.url.split("?")[0],
                        certificate=outcome.certificate,
                        verify=self.config.verify,
                    ) from outcome
                return outcome
            wait = self.policy.wait(attempt, outcome if isinstance(outcome, HttpResponse) else None)
            self.log.warning(
                "Carol %s %s: %s; retry %d of %d in %.1f s",
                request.method,
                request.path,
                f"HTTP {outcome.status}"
                if isinstance(outcome, HttpResponse)
                else f"no answer ({outcome.reason})",
                attempt,
                self.policy.retry_limit,
                wait,
            )
            yield Sleep(wait)
            attempt += 1

    def request(self, call: Call) -> Flow[HttpResponse]:
        """One logical request: auth headers, retries, one re-authentication after a 401, error mapping."""
        method = call.verb
        url = join_url(self.config.base_url, call.prefix, call.path)
        body, content_headers = encode_body(call)
        headers = {**content_headers, **(call.headers or {})}
        retryable = is_idempotent(method, call.idempotent)
        token = (yield Authenticate()) if call.authenticate else None

        def build(with_token: Token | None) -> HttpRequest:
            auth = auth_headers(self.config, with_token) if call.authenticate else {}
            return HttpRequest(method, url, _params(call.params), body, {**headers, **auth})

        statuses = call.retry_statuses
        response = yield from self.exchange(build(token), retryable=retryable, statuses=statuses)
        if (
            response.status == 401
            and call.reauthenticate
            and call.authenticate
            and self.config.auth_type != "api_key"
        ):
            token = yield Authenticate(token, rejected=True)
            response = yield from self.exchange(build(token), retryable=retryable, statuses=statuses)
        path = urlsplit(url).path
        if response.status >= 400:
            raise errors.error_for_response(response.status, response.content, method, path)
        error = errors.error_in_body(response.status, response.content, method, path)
        if error is not None:
            raise error
        return response

    def call(self, call: Call) -> Flow[Json]:
        """:meth:`request`, then the body parsed as JSON (``{}`` when empty)."""
        response = yield from self.request(call)
        return errors.parse_json_body(response.content, call.verb, urlsplit(response.url or call.path).path)

    def token(self, steps: Generator[TokenRequest, Json, Token]) -> Flow[Token]:
        """Run an auth flow (:func:`~.auth.obtain_token`): each token request as an unauthenticated call.

        A token endpoint's 4xx is thrown into the auth flow as :class:`CarolAuthError` (so it can fall
        back from a refresh to a login); anything else propagates.
        """
        request = next(steps)
        while True:
            try:
                answer = yield from self.call(
                    Call.to(
                        request.endpoint,
                        data=request.form,
                        headers=request.headers,
                        idempotent=True,
                        authenticate=False,
                    )
                )
            except CarolApiError as exc:
                refused = errors.refused_grant(exc, request.purpose)
                if not isinstance(refused, CarolAuthError):
                    raise
                try:
                    request = steps.throw(refused)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    request = steps.send(answer)
                except StopIteration as stop:
                    return stop.value
