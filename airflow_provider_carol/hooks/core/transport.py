"""The Carol request pipeline, written once as I/O-free steps; the two hooks only perform the I/O.

A *flow* is a generator that yields actions and receives their results:

* :class:`Send` an :class:`~.wire.HttpRequest` -> an :class:`~.wire.HttpResponse` (a failure is thrown
  in as a :class:`~.wire.TransportFailure`, classified once by :func:`~.wire.classify`);
* :class:`Sleep` some seconds -> None;
* :class:`Authenticate` -> the token to send (the driver renews it under its own lock);
* :class:`Call` a Carol endpoint -> its parsed JSON (the driver runs :meth:`Pipeline.call` for it);
* :class:`Parallel` flows -> their results, in order (concurrent where the driver can).

``CarolHook`` drives flows with ``requests`` and ``time.sleep``, ``CarolAsyncHook`` with ``httpx`` and
``asyncio.sleep``. Body encoding, auth headers, the one re-authentication after a 401, error mapping and
retry logging live here, the retry decision and its waits in :mod:`.retry`, the wire values in
:mod:`.wire`, so the two drivers cannot drift.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypeVar
from urllib.parse import urlsplit

from airflow_provider_carol.exceptions import CarolApiError, CarolAuthError, CarolConfigError
from airflow_provider_carol.hooks.core import endpoints, errors
from airflow_provider_carol.hooks.core.auth import Token, TokenRequest, auth_headers
from airflow_provider_carol.hooks.core.config import CarolConnectionConfig
from airflow_provider_carol.hooks.core.retry import (
    RETRYABLE_STATUSES,
    RetryPolicy,
    is_idempotent,
    should_retry,
)
from airflow_provider_carol.hooks.core.types import Json, LoggerLike
from airflow_provider_carol.hooks.core.wire import (
    HttpRequest,
    HttpResponse,
    TransportFailure,
    join_url,
    params_without_none,
)

T = TypeVar("T")


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
#: A flow: yields actions, receives their results (``object``: each is checked or parsed where it is
#: read), returns a ``T``. :func:`send`, :func:`authenticate` and :func:`parallel` give typed results.
Flow: TypeAlias = Generator[Action, object, T]


def send(request: HttpRequest) -> Flow[HttpResponse]:
    """Perform one exchange; its answer (a failure is thrown in as :class:`TransportFailure`)."""
    answer = yield Send(request)
    if not isinstance(answer, HttpResponse):
        raise TypeError(f"a driver answered Send with {type(answer).__name__}, not an HttpResponse")
    return answer


def authenticate(stale: Token | None = None, *, rejected: bool = False) -> Flow[Token | None]:
    """The token to send now (see :class:`Authenticate`)."""
    token = yield Authenticate(stale, rejected)
    if token is not None and not isinstance(token, Token):
        raise TypeError(f"a driver answered Authenticate with {type(token).__name__}, not a Token")
    return token


def parallel(flows: Sequence[Flow[T]]) -> Flow[list[T]]:
    """Run ``flows`` (concurrently where the driver can); their results, in order."""
    results = yield Parallel(flows)
    if not isinstance(results, list) or len(results) != len(flows):
        raise TypeError("a driver answered Parallel with something else than one result per flow")
    return results


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
                outcome = yield from send(request)
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
        token = (yield from authenticate()) if call.authenticate else None

        def build(with_token: Token | None) -> HttpRequest:
            auth = auth_headers(self.config, with_token) if call.authenticate else {}
            return HttpRequest(method, url, params_without_none(call.params), body, {**headers, **auth})

        statuses = call.retry_statuses
        response = yield from self.exchange(build(token), retryable=retryable, statuses=statuses)
        if (
            response.status == 401
            and call.reauthenticate
            and call.authenticate
            and self.config.auth_type != "api_key"
        ):
            token = yield from authenticate(token, rejected=True)
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
