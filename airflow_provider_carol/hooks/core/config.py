"""Turn an Airflow ``carol`` Connection into validated settings, before anything is sent.

The extras are read by the names in :data:`~.extras.EXTRAS`, the one list the connection form is
generated from too, so the two cannot disagree. Every problem
is reported with the connection id and the field to fix. Nothing here does I/O except checking that a
CA-bundle path exists.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

from airflow_provider_carol.exceptions import CarolConfigError
from airflow_provider_carol.hooks.core.extras import DEFAULT_TIMEOUT, ENVIRONMENTS, EXTRA_NAMES, SCHEMES

AUTH_TYPES = ("password", "token", "api_key")

_TRUE = {"true", "1", "yes", "y", "on", "t"}
_FALSE = {"false", "0", "no", "n", "off", "f", ""}
_SECRET_NAMES = {
    "password": "the user's password",
    "token": "a Carol access token",
    "api_key": "a Carol API key",
}


class ConnectionLike(Protocol):
    """What the parser reads of a connection: ``airflow.sdk.Connection`` or a view of it."""

    @property
    def conn_id(self) -> str | None: ...
    @property
    def password(self) -> str | None: ...
    @property
    def login(self) -> str | None: ...
    @property
    def host(self) -> str | None: ...
    @property
    def port(self) -> int | None: ...
    @property
    def extra_dejson(self) -> dict[str, object]: ...


@dataclass(frozen=True)
class ConnectionView:
    """A plain :class:`ConnectionLike`, e.g. built from the async connection API's answers."""

    conn_id: str | None
    password: str | None
    login: str | None
    host: str | None
    port: int | None
    extra_dejson: dict[str, object] = field(repr=False)


def _extra(extras: Mapping[str, object], name: str) -> object:
    """Read an extra by its bare name, or by the ``extra__carol__`` form older UIs stored."""
    if name not in EXTRA_NAMES:  # a typo here would silently read nothing
        raise KeyError(f"{name!r} is not a declared Carol connection extra")
    value = extras.get(name, extras.get(f"extra__carol__{name}"))
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _text(extras: Mapping[str, object], name: str) -> str | None:
    value = _extra(extras, name)
    return None if value is None else str(value)


def parse_bool(value: object, *, field_name: str, conn_id: str, default: bool) -> bool:
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


def _parse_verify(value: object, conn_id: str) -> bool | str:
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


def _parse_timeout(value: object, conn_id: str) -> float:
    if value is None:
        return DEFAULT_TIMEOUT
    try:
        timeout = float(value)  # type: ignore[arg-type]  # anything float() refuses is reported below
    except (TypeError, ValueError):
        timeout = -1.0
    if timeout <= 0:
        raise CarolConfigError(
            f"Carol connection {conn_id!r}: extra 'timeout' must be a positive number of seconds, "
            f"got {value!r}."
        )
    return timeout


def _choice(
    value: object, allowed: tuple[str, ...], *, field_name: str, conn_id: str, default: str | None
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


def _bigquery_endpoints(extras: Mapping[str, object], conn_id: str) -> tuple[str | None, str | None]:
    """``bigquery_endpoint`` (an http(s) URL) and ``bigquery_storage_endpoint`` (``host:port``)."""
    rest = _text(extras, "bigquery_endpoint")
    grpc_target = _text(extras, "bigquery_storage_endpoint")
    if rest and urlsplit(rest).scheme not in ("http", "https"):
        raise CarolConfigError(
            f"Carol connection {conn_id!r}: extra 'bigquery_endpoint' must be an http(s) URL, got {rest!r}."
        )
    if grpc_target and ("://" in grpc_target or ":" not in grpc_target):
        raise CarolConfigError(
            f"Carol connection {conn_id!r}: extra 'bigquery_storage_endpoint' must be host:port "
            f"(no scheme), got {grpc_target!r}."
        )
    return rest, grpc_target


@dataclass(frozen=True)
class CarolConnectionConfig:
    """Validated settings of one ``carol`` connection; the secrets are kept out of ``repr``."""

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
    bigquery_endpoint: str | None = None
    bigquery_storage_endpoint: str | None = None

    @property
    def base_url(self) -> str:
        """``scheme://host:port`` with IPv6 hosts bracketed."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @classmethod
    def from_connection(cls, conn: ConnectionLike) -> CarolConnectionConfig:
        """Validate an Airflow Connection (``airflow.sdk.Connection`` or a :class:`ConnectionView`)."""
        conn_id = conn.conn_id or "<unnamed>"
        extras: Mapping[str, object] = conn.extra_dejson or {}
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
        tenant = _text(extras, "tenant")
        organization = _text(extras, "organization")
        connector_id = _text(extras, "connector_id")
        _check_identity(conn_id, auth_type, login, connector_id, tenant, org_level)
        environment = _choice(
            _extra(extras, "environment"),
            ENVIRONMENTS,
            field_name="environment",
            conn_id=conn_id,
            default="carol.ai",
        )
        scheme, host, port = _resolve_address(conn, extras, conn_id, environment, organization or tenant)
        rest, grpc_target = _bigquery_endpoints(extras, conn_id)
        return cls(
            conn_id=conn_id,
            auth_type=auth_type,
            secret=secret,
            login=login,
            tenant=tenant,
            organization=organization,
            environment=environment,
            connector_id=connector_id,
            app_name=_text(extras, "app_name"),
            org_level=org_level,
            timeout=_parse_timeout(_extra(extras, "timeout"), conn_id),
            verify=_parse_verify(_extra(extras, "verify"), conn_id),
            scheme=scheme,
            host=host,
            port=port,
            refresh_token=_text(extras, "refresh_token"),
            bigquery_endpoint=rest,
            bigquery_storage_endpoint=grpc_target,
        )


def _check_identity(
    conn_id: str,
    auth_type: str,
    login: str | None,
    connector_id: str | None,
    tenant: str | None,
    org_level: bool,
) -> None:
    """The fields each auth mode needs, named when missing."""
    if auth_type == "password" and not login:
        raise CarolConfigError(
            f"Carol connection {conn_id!r}: auth_type 'password' needs the user's e-mail in the login field."
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


def _resolve_address(
    conn: ConnectionLike,
    extras: Mapping[str, object],
    conn_id: str,
    environment: str,
    subdomain: str | None,
) -> tuple[str, str, int]:
    """Scheme, host and port: the host/port fields win, else ``{organization or tenant}.{environment}``."""
    scheme = _choice(_extra(extras, "scheme"), SCHEMES, field_name="scheme", conn_id=conn_id, default="https")
    host = (conn.host or "").strip()
    if "://" in host:  # a pasted URL: its scheme wins over the extra
        parts = urlsplit(host)
        scheme = _choice(parts.scheme, SCHEMES, field_name="scheme", conn_id=conn_id, default="https")
        host = parts.hostname or ""
    if not host:
        if not subdomain:
            raise CarolConfigError(
                f"Carol connection {conn_id!r}: set extra 'organization' or 'tenant' (or the host field) "
                "so the API host can be derived."
            )
        host = f"{subdomain}.{environment}"
    raw_port: object = conn.port
    try:
        port = int(raw_port) if raw_port not in (None, "", 0) else (443 if scheme == "https" else 80)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise CarolConfigError(
            f"Carol connection {conn_id!r}: port must be a number, got {raw_port!r}."
        ) from None
    if not 0 < port < 65536:
        raise CarolConfigError(f"Carol connection {conn_id!r}: port {port} is out of range.")
    return scheme, host, port
