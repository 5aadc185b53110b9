"""Build the FastAPI application around one :class:`SandboxState`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from .errors import install_error_handlers
from .faults import SandboxMiddleware, Scope
from .routes import admin, apps, auth, bigquery, connectors, identity, queries, staging, tasks
from .state import SandboxState


class ConnectionKiller:
    """Aborts the TCP/TLS connection a request arrived on, found through the running uvicorn server.

    ASGI gives no handle on the transport, so the server keeps one on ``uvicorn.Server`` and matches
    ``scope["client"]`` against each protocol's ``client`` in ``server.server_state.connections``.
    """

    def __init__(self) -> None:
        self.server: Any = None

    def __call__(self, scope: Scope) -> None:
        if self.server is None:
            return
        for protocol in list(self.server.server_state.connections):
            if getattr(protocol, "client", None) == scope.get("client"):
                protocol.transport.abort()
                return


def create_app(
    state: SandboxState, info: dict[str, Any] | None = None, killer: ConnectionKiller | None = None
) -> FastAPI:
    """The emulator app: Carol routes, the admin API and the fault/request-log middleware."""
    app = FastAPI(title="carol-sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    install_error_handlers(app)
    for module in (auth, identity, connectors, staging, tasks, apps, bigquery, queries, admin):
        app.include_router(module.router)
    app.state.sandbox = state
    app.state.info = info or {}
    app.state.killer = killer or ConnectionKiller()
    app.add_middleware(SandboxMiddleware, faults=state.faults, log=state.requests, abort=app.state.killer)
    return app
