"""Carol authentication without I/O: which token request to make, and what its answer means.

``obtain_token`` is a generator that yields :class:`TokenRequest` objects and receives the parsed JSON
answer (or the error, through ``throw``). The sync hook drives it with ``requests``, the async hook with
``httpx``, so the rules (refresh before login, fail fast on MFA, one re-authentication per 401) live once.
Tokens stay in memory only.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_carol.exceptions import CarolAuthError
from airflow_provider_carol.hooks.core import endpoints
from airflow_provider_carol.hooks.core.config import CarolConnectionConfig

#: Refresh this long before expiry, or a quarter of the lifetime for short-lived tokens.
REFRESH_LEAD_SECONDS = 60.0
#: pycarol's connector (``__CONNECTOR_PYCAROL__``, pycarol 2.56.15 ``__init__.py`` L10): what its password
#: grant sends when no connector is given. Carol's auth docs list ``connectorId`` as required.
DEFAULT_CONNECTOR_ID = "f9953f6645f449baaccd16ab462f9b64"


@dataclass(frozen=True)
class Token:
    """An access token and when to renew it (local monotonic clock, so server clock skew is harmless)."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    renew_at: float | None = None  # None: no known expiry (token mode, or expires_in == 0)

    def needs_renewal(self, now: float | None = None) -> bool:
        """True when the token is within its refresh lead time of expiry."""
        return self.renew_at is not None and (time.monotonic() if now is None else now) >= self.renew_at


@dataclass(frozen=True)
class TokenRequest:
    """A form POST to a token endpoint; ``headers`` carries the MFA token when there is one."""

    endpoint: endpoints.Endpoint
    form: dict[str, str] = field(repr=False)
    purpose: str
    headers: dict[str, str] = field(default_factory=dict, repr=False)


def parse_token_response(body: Any, *, config: CarolConnectionConfig, purpose: str) -> Token:
    """Read ``access_token``/``refresh_token``/``expires_in``; an MFA challenge is a clear, final error."""
    if not isinstance(body, dict):
        raise CarolAuthError(f"Carol {purpose} returned {type(body).__name__}, not a token object.")
    if body.get("mfa_token") and not body.get("access_token"):
        raise CarolAuthError(
            f"Carol asked for a one-time MFA code for user {config.login!r} (connection {config.conn_id!r}). "
            "An unattended Airflow task cannot answer it: use auth_type 'api_key' (with connector_id) or "
            "auth_type 'token' for this connection."
        )
    access = body.get("access_token")
    if not access:
        raise CarolAuthError(f"Carol {purpose} answered without an access_token (keys: {sorted(body)}).")
    try:
        expires_in = float(body.get("expires_in") or 0)
    except (TypeError, ValueError):
        expires_in = 0.0
    renew_at = None
    if expires_in > 0:
        renew_at = time.monotonic() + expires_in - min(REFRESH_LEAD_SECONDS, expires_in / 4)
    return Token(access_token=str(access), refresh_token=body.get("refresh_token") or None, renew_at=renew_at)


def password_grant(config: CarolConnectionConfig) -> TokenRequest:
    """The password grant as pycarol sends it (``auth/PwdAuth.py`` L84-142): ``connectorId`` always
    (pycarol's default connector when the connection names none), ``subdomain`` only at tenant level."""
    form = {
        "username": config.login or "",
        "password": config.secret,
        "grant_type": "password",
        "connectorId": config.connector_id or DEFAULT_CONNECTOR_ID,
    }
    if not config.org_level and config.tenant:
        form["subdomain"] = config.tenant
    if config.organization:
        form["orgSubdomain"] = config.organization
    return TokenRequest(endpoints.TOKEN, form, "password login")


def explain_refused_login(exc: CarolAuthError, config: CarolConnectionConfig) -> CarolAuthError:
    """A refused password login that blames ``connectorId``, with the setting to change named.

    Carol refuses an organization-level login with pycarol's default connector (pyCarol PR #362:
    400 "Login to organization cannot be with this connectorId ..."); the cure is the extra ``connector_id``.
    """
    if exc.possible_responsible_field != "connectorId":
        return exc
    if config.connector_id:
        hint = f"Carol refused the connector in extra 'connector_id' of connection {config.conn_id!r}"
    else:
        hint = (
            f"connection {config.conn_id!r} names no connector, so pycarol's default connector "
            f"{DEFAULT_CONNECTOR_ID} was sent"
        )
    where = "an organization-level" if config.org_level else "this"
    return CarolAuthError(
        f"{exc} ({hint}; set extra 'connector_id' to a connector that may log in to {where} context)",
        **exc.api_fields(),
    )


def refresh_grant(refresh_token: str) -> TokenRequest:
    """The refresh-token grant."""
    return TokenRequest(
        endpoints.TOKEN, {"grant_type": "refresh_token", "refresh_token": refresh_token}, "token refresh"
    )


def initial_token(config: CarolConnectionConfig) -> Token | None:
    """Token mode starts from the configured access token; password mode has none until it logs in."""
    if config.auth_type == "token":
        return Token(access_token=config.secret, refresh_token=config.refresh_token)
    return None


def obtain_token(config: CarolConnectionConfig, current: Token | None) -> Generator[TokenRequest, Any, Token]:
    """Renew ``current`` (refresh grant when possible, else password login) and return the new token.

    Raises :class:`CarolAuthError` when no way to a valid token is left (e.g. a rejected access token
    without a refresh token). A failed refresh falls back to one password login, never to a loop.
    """
    if current is not None and current.refresh_token:
        try:
            body = yield refresh_grant(current.refresh_token)
            return parse_token_response(body, config=config, purpose="token refresh")
        except CarolAuthError:
            if config.auth_type != "password":
                raise
    if config.auth_type == "password":
        try:
            body = yield password_grant(config)
        except CarolAuthError as exc:
            raise explain_refused_login(exc, config) from None
        return parse_token_response(body, config=config, purpose="password login")
    raise CarolAuthError(
        f"Carol rejected the access token of connection {config.conn_id!r} and no refresh token is "
        "configured (extra 'refresh_token'); put a fresh token in the password field or use an API key."
    )


def auth_headers(config: CarolConnectionConfig, token: Token | None) -> dict[str, str]:
    """Headers that authenticate a request: the raw token (no ``Bearer``) or the API-key pair."""
    if config.auth_type == "api_key":
        return {"x-auth-key": config.secret, "x-auth-connectorid": config.connector_id or ""}
    if token is None:
        return {}
    return {"Authorization": token.access_token}


class TokenKeeper:
    """The hook's current token and when to renew it; no I/O and no lock (each driver holds its own).

    :meth:`renewal` returns the token flow to run, or None when the current token can be used; the
    driver runs the flow and stores its result in :attr:`token`.
    """

    def __init__(self, config: CarolConnectionConfig) -> None:
        self.config = config
        self.token: Token | None = None

    def renewal(self, stale: Token | None, *, rejected: bool) -> Generator[TokenRequest, Any, Token] | None:
        """The flow that yields a fresh token; ``rejected`` means Carol just answered 401 to ``stale``."""
        if self.config.auth_type == "api_key":
            return None
        if rejected:
            if self.token is not None and self.token is not stale:
                return None  # another caller renewed it meanwhile
            return obtain_token(self.config, stale)
        if self.token is None:
            self.token = initial_token(self.config)
            return obtain_token(self.config, None) if self.token is None else None
        return obtain_token(self.config, self.token) if self.token.needs_renewal() else None
