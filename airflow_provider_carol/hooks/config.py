"""Turn an Airflow ``carol`` Connection into validated settings, before anything is sent.

Every problem is reported with the connection id and the field to fix. Nothing here does I/O except
checking that a CA-bundle path exists.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_carol.exceptions import CarolConfigError

AUTH_TYPES = ("password", "token", "api_key")
ENVIRONMENTS = ("carol.ai", "karol.ai", "qarol.ai")
SCHEMES = ("https", "http")
DEFAULT_TIMEOUT = 60.0

_TRUE = {"true", "1", "yes", "y", "on", "t"}
_FALSE = {"false", "0", "no", "n", "off", "f", ""}
_SECRET_NAMES = {
    "password": "the user's password",
    "token": "a Carol access token",
    "api_key": "a Carol API key",
}


def _extra(extras: dict[str, Any], name: str) -> Any:
    """Read an extra by its bare name, or by the ``extra__carol__`` form older UIs stored."""
    value = extras.get(name, extras.get(f"extra__carol__{name}"))
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def parse_bool(value: Any, *, field_name: str, conn_id: str, default: bool) -> bool:
    """Accept real booleans and the strings a URI connection carries (``"false"`` is False)."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise CarolConfigError(
        f"Carol connection {conn_id!r}: extra {field_name!r} must be true or false, got {value!r}."
    )


def _parse_verify(value: Any, conn_id: str) -> bool | str:
    """``verify`` is a boolean or the path of a CA bundle that must exist."""
    if value is None or isinstance(value, bool):
        return True if value is None else value
    text = str(value).strip()
    if text.lower() in _TRUE | _FALSE:
        return parse_bool(text, field_name="verify", conn_id=conn_id, default=True)
    if not os.path.isfile(text):
        raise CarolConfigError(
            f"Carol connection {conn_id!r}: extra 'verify' names a CA bundle {text!r} that does not exist; "
            "give true, false or the path of a PEM file."
        )
    return text


def _parse_timeout(value: Any, conn_id: str) -> float:
    if value is None:
        return DEFAULT_TIMEOUT
    try:
        timeout = float(value)
    except (TypeError, ValueError):
        timeout = -1.0
    if timeout <= 0:
        raise CarolConfigError(
            f"Carol connection {conn_id!r}: extra 'timeout' must be a positive number of seconds, "
            f"got {value!r}."
        )
    return timeout


def _choice(
    value: Any, allowed: tuple[str, ...], *, field_name: str, conn_id: str, default: str | None
) -> str:
    if value is None:
        if default is None:
            raise CarolConfigError(
                f"Carol connection {conn_id!r}: extra {field_name!r} is required; "
                f"set it to one of: {', '.join(allowed)}."
            )
        return default
    text = str(value).strip().lower()
    if text not in allowed:
        raise CarolConfigError(
            f"Carol connection {conn_id!r}: extra {field_name!r} is {value!r}; "
            f"expected one of: {', '.join(allowed)}."
        )
    return text


@dataclass(frozen=True)
class CarolConnectionConfig:
    """Validated settings of one ``carol`` connection; the secret is kept out of ``repr``."""

    conn_id: str
    auth_type: str
    secret: str = field(repr=False)
    login: str | None
    tenant: str | None
    organization: str | None
    environment: str
    connector_id: str | None
    app_name: str | None
    org_level: bool
    timeout: float
    verify: bool | str
    scheme: str
    host: str
    port: int
    refresh_token: str | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        """``scheme://host:port`` with IPv6 hosts bracketed."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @classmethod
    def from_connection(cls, conn: Any) -> CarolConnectionConfig:
        """Validate an Airflow Connection (``airflow.sdk.Connection`` or anything with its attributes)."""
        conn_id = conn.conn_id or "<unnamed>"
        extras = conn.extra_dejson or {}
        auth_type = _choice(
            _extra(extras, "auth_type"), AUTH_TYPES, field_name="auth_type", conn_id=conn_id, default=None
        )
        secret = conn.password or ""
        if not secret:
            raise CarolConfigError(
                f"Carol connection {conn_id!r}: the password field must hold {_SECRET_NAMES[auth_type]} "
                f"for auth_type {auth_type!r}."
            )
        login = (conn.login or "").strip() or None
        org_level = parse_bool(
            _extra(extras, "org_level"), field_name="org_level", conn_id=conn_id, default=False
        )
        tenant = _extra(extras, "tenant")
        organization = _extra(extras, "organization")
        connector_id = _extra(extras, "connector_id")
        if auth_type == "password" and not login:
            raise CarolConfigError(
                f"Carol connection {conn_id!r}: auth_type 'password' needs the user's e-mail "
                "in the login field."
            )
        if auth_type == "api_key" and not connector_id:
            raise CarolConfigError(
                f"Carol connection {conn_id!r}: auth_type 'api_key' needs extra 'connector_id' "
                "(the connector the API key was issued for)."
            )
        if not org_level and not tenant:
            raise CarolConfigError(
                f"Carol connection {conn_id!r}: extra 'tenant' (the Carol environment name) is required "
                "unless org_level is true."
            )
        scheme, host, port = _resolve_address(conn, extras, conn_id, tenant=tenant, organization=organization)
        return cls(
            conn_id=conn_id,
            auth_type=auth_type,
            secret=secret,
            login=login,
            tenant=tenant,
            organization=organization,
            environment=_choice(
                _extra(extras, "environment"),
                ENVIRONMENTS,
                field_name="environment",
                conn_id=conn_id,
                default="carol.ai",
            ),
            connector_id=connector_id,
            app_name=_extra(extras, "app_name"),
            org_level=org_level,
            timeout=_parse_timeout(_extra(extras, "timeout"), conn_id),
            verify=_parse_verify(_extra(extras, "verify"), conn_id),
            scheme=scheme,
            host=host,
            port=port,
            refresh_token=_extra(extras, "refresh_token"),
        )


def _resolve_address(
    conn: Any, extras: dict[str, Any], conn_id: str, *, tenant: str | None, organization: str | None
) -> tuple[str, str, int]:
    """Scheme, host and port: the host/port fields win, else ``{organization or tenant}.{environment}``."""
    scheme = _choice(_extra(extras, "scheme"), SCHEMES, field_name="scheme", conn_id=conn_id, default="https")
    environment = _choice(
        _extra(extras, "environment"),
        ENVIRONMENTS,
        field_name="environment",
        conn_id=conn_id,
        default="carol.ai",
    )
    host = (conn.host or "").strip()
    if "://" in host:  # a pasted URL: its scheme wins over the extra
        parts = urlsplit(host)
        scheme = _choice(parts.scheme, SCHEMES, field_name="scheme", conn_id=conn_id, default="https")
        host = parts.hostname or ""
    if not host:
        subdomain = organization or tenant
        if not subdomain:
            raise CarolConfigError(
                f"Carol connection {conn_id!r}: set extra 'organization' or 'tenant' (or the host field) "
                "so the API host can be derived."
            )
        host = f"{subdomain}.{environment}"
    port = conn.port
    try:
        port = int(port) if port not in (None, "", 0) else (443 if scheme == "https" else 80)
    except (TypeError, ValueError):
        raise CarolConfigError(
            f"Carol connection {conn_id!r}: port must be a number, got {port!r}."
        ) from None
    if not 0 < port < 65536:
        raise CarolConfigError(f"Carol connection {conn_id!r}: port {port} is out of range.")
    return scheme, host, port
