"""``carol-sandbox``: run the Carol emulator; the first stdout line is a JSON object describing it."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

import uvicorn

from .app import ConnectionKiller, create_app
from .state import Identity, SandboxState
from .tls import make_tls_files

# Fixed credentials for a long-lived sandbox (docker-compose.yaml); random ones for any variable unset.
IDENTITY_ENV = {
    "user": "CAROL_SANDBOX_USER",
    "password": "CAROL_SANDBOX_PASSWORD",
    "api_key": "CAROL_SANDBOX_API_KEY",
    "connector_id": "CAROL_SANDBOX_CONNECTOR_ID",
}


def identity_from_env(environment: str, env: dict[str, str] | None = None) -> Identity:
    """The sandbox identity, with the credentials set in ``CAROL_SANDBOX_*`` variables kept as given."""
    env = dict(os.environ) if env is None else env
    fixed = {name: env[var] for name, var in IDENTITY_ENV.items() if env.get(var)}
    return Identity(environment=environment, **fixed)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="carol-sandbox", description="Local emulator of the Carol REST API."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    parser.add_argument("--tls", action="store_true", help="serve HTTPS with a throw-away CA")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where the CA/certificate/key files go (default: a temp dir removed on exit)",
    )
    parser.add_argument("--environment", default="carol.ai", help="environment reported in the info line")
    parser.add_argument(
        "--bigquery",
        action="store_true",
        help="start a local BigQuery emulator and mirror staging intake into it",
    )
    parser.add_argument(
        "--bigquery-emulator",
        default=None,
        help="path of the local-bigquery executable (default: .venv-bq-emulator)",
    )
    return parser.parse_args(argv)


def bind(host: str, port: int) -> socket.socket:
    """Bind and listen ourselves so ``--port 0`` can report the port the kernel picked."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def build_info(identity: Identity, host: str, port: int, ca_bundle: Path | None) -> dict[str, Any]:
    url_host = f"[{host}]" if ":" in host else host
    scheme = "https" if ca_bundle else "http"
    return {
        "url": f"{scheme}://{url_host}:{port}",
        "port": port,
        "ca_bundle": str(ca_bundle) if ca_bundle else None,
        **identity.public(),
    }


async def _serve(server: uvicorn.Server, sock: socket.socket, info: dict[str, Any]) -> None:
    async def announce() -> None:
        while not server.started and not server.should_exit:
            await asyncio.sleep(0.005)
        if server.started:
            sys.stdout.write(json.dumps(info) + "\n")
            sys.stdout.flush()

    announcer = asyncio.ensure_future(announce())
    try:
        await server.serve(sockets=[sock])
    finally:
        announcer.cancel()


def main(argv: list[str] | None = None) -> None:
    """Start the sandbox and block until SIGTERM/SIGINT, then exit 0."""
    args = parse_args(argv)
    temp_dir = None if args.state_dir else Path(tempfile.mkdtemp(prefix="carol-sandbox-"))
    state_dir: Path = args.state_dir or temp_dir  # type: ignore[assignment]
    emulator = None
    try:
        ssl_certfile: str | None = None
        ssl_keyfile: str | None = None
        ca_bundle = None
        if args.tls:
            ca_bundle, cert, key = make_tls_files(state_dir)
            ssl_certfile, ssl_keyfile = str(cert), str(key)
        sock = bind(args.host, args.port)
        state = SandboxState(identity_from_env(args.environment))
        info = build_info(state.identity, args.host, sock.getsockname()[1], ca_bundle)
        if args.bigquery:
            from .bigquery import EmulatorProcess, StagingMirror, find_emulator

            emulator = EmulatorProcess(
                find_emulator(args.bigquery_emulator), f"carol-{state.identity.tenant_id[:20]}"
            ).start()
            state.bigquery = StagingMirror(emulator.rest, emulator.grpc, state.identity.tenant_id)
            info.update(bigquery_endpoint=emulator.rest, bigquery_storage_endpoint=emulator.grpc)
        killer = ConnectionKiller()
        app = create_app(state, info, killer)
        config = uvicorn.Config(
            app,
            loop="uvloop" if _has("uvloop") else "asyncio",
            http="httptools" if _has("httptools") else "h11",
            access_log=False,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=3,
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
        )
        server = uvicorn.Server(config)
        killer.server = server
        # uvicorn re-raises the captured signal after shutdown; a no-op handler turns that into exit 0.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: None)
        run(server, sock, info)
    finally:
        if emulator is not None:
            emulator.stop()
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def run(server: uvicorn.Server, sock: socket.socket, info: dict[str, Any]) -> None:
    """Run on uvloop when installed (it is with Airflow on Linux); plain asyncio otherwise."""
    if _has("uvloop"):
        import uvloop

        uvloop.run(_serve(server, sock, info))
    else:
        asyncio.run(_serve(server, sock, info))


if __name__ == "__main__":
    main()
