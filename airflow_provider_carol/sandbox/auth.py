"""Users, access/refresh/MFA tokens and the API key: the credential side of the sandbox state."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import CarolError

MFA_CODE = "123456"
DEFAULT_TOKEN_TTL = 3600
BAD_LOGIN_FIELD = "userLogin/password"


def new_id() -> str:
    """A 32-hex identifier, the shape of Carol's mdmId."""
    return secrets.token_hex(16)


@dataclass
class User:
    """A login the password grant accepts; ``mfa`` users get an ``mfa_token`` first."""

    login: str
    password: str
    mfa: bool = False
    user_id: str = field(default_factory=new_id)


@dataclass
class Token:
    """An issued access token, bound to a user and to a tenant- or org-level context."""

    login: str
    org_level: bool
    issued_ms: int
    ttl: int
    refresh_token: str
    expired: bool = False

    def is_expired(self, now_ms: int) -> bool:
        return self.expired or now_ms >= self.issued_ms + self.ttl * 1000


@dataclass(frozen=True)
class Principal:
    """Who sent a request: ``mode`` is ``token`` or ``api_key``."""

    login: str
    org_level: bool
    mode: str
    connector_id: str | None = None


class AuthStore:
    """Credential state. Every method is safe to call from the event loop or a worker thread."""

    def __init__(
        self,
        login: str,
        password: str,
        api_key: str,
        connector_id: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._seed = (login, password, api_key, connector_id)
        self._clock = clock
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget every token and extra user; the seeded user and API key stay valid."""
        login, password, api_key, connector_id = self._seed
        with self._lock:
            self.users: dict[str, User] = {login: User(login, password)}
            self.tokens: dict[str, Token] = {}
            self.refresh: dict[str, tuple[str, bool]] = {}
            self.mfa_pending: dict[str, tuple[str, bool]] = {}
            self.api_keys: dict[str, str] = {api_key: connector_id}
            self.api_key_revoked = False
            self.token_ttl = DEFAULT_TOKEN_TTL

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def add_user(self, login: str, password: str, mfa: bool = False) -> User:
        with self._lock:
            user = User(login, password, mfa)
            self.users[login] = user
            return user

    def issue(self, login: str, org_level: bool) -> dict[str, Any]:
        """Mint an access + refresh token pair and return Carol's token response."""
        if login not in self.users:
            raise CarolError(404, f"User {login} Not found", "userLogin")
        access, refresh = secrets.token_hex(20), secrets.token_hex(20)
        token = Token(login, org_level, self._now_ms(), self.token_ttl, refresh)
        with self._lock:
            self.tokens[access] = token
            self.refresh[refresh] = (login, org_level)
        return self.token_response(access, token)

    @staticmethod
    def token_response(access: str, token: Token) -> dict[str, Any]:
        return {
            "access_token": access,
            "refresh_token": token.refresh_token,
            "token_type": "bearer",
            "timeIssuedInMillis": token.issued_ms,
            "expires_in": token.ttl,
        }

    def password_grant(self, login: str, password: str, org_level: bool) -> dict[str, Any]:
        """The password grant: a token response, or ``{"mfa_token"}`` for an MFA user."""
        user = self.users.get(login)
        if user is None or not secrets.compare_digest(user.password, password):
            raise CarolError(401, "Invalid user login or password", BAD_LOGIN_FIELD)
        if user.mfa:
            mfa_token = secrets.token_hex(20)
            with self._lock:
                self.mfa_pending[mfa_token] = (login, org_level)
            return {"mfa_token": mfa_token}
        return self.issue(login, org_level)

    def mfa_authenticate(self, mfa_token: str | None, code: str | None) -> dict[str, Any]:
        with self._lock:
            pending = self.mfa_pending.get(mfa_token or "")
        if pending is None:
            raise CarolError(401, "Invalid or expired MFA token (send it raw in Authorization)", "mfaToken")
        if code != MFA_CODE:
            raise CarolError(401, "Invalid MFA code", "mfaCode")
        with self._lock:
            self.mfa_pending.pop(mfa_token or "", None)
        return self.issue(*pending)

    def refresh_grant(self, refresh_token: str | None) -> dict[str, Any]:
        """Exchange a refresh token; the old refresh token stops working (rotation)."""
        with self._lock:
            grant = self.refresh.pop(refresh_token or "", None)
        if grant is None:
            raise CarolError(
                401,
                "Invalid refresh token (unknown, or already used: refresh tokens rotate)",
                "refresh_token",
            )
        return self.issue(*grant)

    def lookup(self, access: str) -> Token:
        """The live token for ``access``, or a 401 saying why it is refused."""
        token = self.tokens.get(access)
        if token is None:
            hint = " (send the raw token, without 'Bearer ')" if access.lower().startswith("bearer ") else ""
            raise CarolError(401, f"Invalid access token: unknown token{hint}")
        if token.is_expired(self._now_ms()):
            raise CarolError(401, "Access token expired: refresh it or log in again")
        return token

    def token_info(self, access: str) -> dict[str, Any]:
        """The token validation endpoints' answer: the token response for a live token."""
        return self.token_response(access, self.lookup(access))

    def expire_all(self) -> int:
        with self._lock:
            for token in self.tokens.values():
                token.expired = True
            return len(self.tokens)

    def authenticate(
        self, authorization: str | None, api_key: str | None, connector_header: str | None
    ) -> Principal:
        """Check the credentials of a request: raw token in Authorization, or the API key headers."""
        if api_key is not None:
            connector_id = self.api_keys.get(api_key)
            if connector_id is None or self.api_key_revoked:
                raise CarolError(401, "Invalid or revoked API key", "x-auth-key")
            if connector_header != connector_id:
                raise CarolError(
                    401, "x-auth-connectorid does not match the API key's connector", "x-auth-connectorid"
                )
            return Principal(self._seed[0], False, "api_key", connector_id)
        if not authorization:
            raise CarolError(
                401, "Missing credentials: send Authorization, or x-auth-key and x-auth-connectorid"
            )
        token = self.lookup(authorization)
        return Principal(token.login, token.org_level, "token")
