"""pytest plugin (registered as ``pytest11``): fixtures that run a real ``carol-sandbox`` over HTTP(S).

``carol_sandbox_server`` / ``carol_sandbox_tls_server`` start one sandbox subprocess per session;
``carol_sandbox`` / ``carol_sandbox_tls`` reset it before each test and point
``AIRFLOW_CONN_CAROL_DEFAULT`` at it.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from .control import Sandbox

START_TIMEOUT = 30.0
CONN_ENV = "AIRFLOW_CONN_CAROL_DEFAULT"


def _read_first_line(stream: IO[bytes], timeout: float) -> bytes:
    """Read one line from the child's stdout without blocking past ``timeout``."""
    deadline, buffer = time.monotonic() + timeout, b""
    fd = stream.fileno()
    while b"\n" not in buffer:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            raise TimeoutError(f"no start-up line within {timeout:.0f} s")
        chunk = os.read(fd, 65536)
        if not chunk:
            raise EOFError("the sandbox exited before printing its start-up line")
        buffer += chunk
    return buffer.split(b"\n", 1)[0]


def start_sandbox(
    tmp_dir: Path, tls: bool = False, timeout: float = START_TIMEOUT
) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """Start ``python -m airflow_provider_carol.sandbox --port 0`` and return it with its info line."""
    stderr_path = tmp_dir / "sandbox-stderr.log"
    command = [
        sys.executable,
        "-m",
        "airflow_provider_carol.sandbox",
        "--port",
        "0",
        "--state-dir",
        str(tmp_dir),
    ]
    if tls:
        command.append("--tls")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, env=env)
    try:
        if process.stdout is None:  # Popen(stdout=PIPE) always sets it; this narrows the type
            raise EOFError("no stdout pipe")
        info = json.loads(_read_first_line(process.stdout, timeout))
    except (TimeoutError, EOFError, ValueError) as exc:
        stop_sandbox(process)
        tail = stderr_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"carol-sandbox did not start: {exc}\n--- stderr tail ---\n{tail}") from exc
    return process, info


def stop_sandbox(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM, then SIGKILL after 10 s; return the exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    if process.stdout is not None:
        process.stdout.close()
    return process.returncode


def _server(tmp_path_factory: pytest.TempPathFactory, tls: bool) -> Iterator[Sandbox]:
    process, info = start_sandbox(
        tmp_path_factory.mktemp("carol-sandbox-tls" if tls else "carol-sandbox"), tls
    )
    sandbox = Sandbox(info)
    try:
        yield sandbox
    finally:
        sandbox.session.close()
        stop_sandbox(process)


@pytest.fixture(scope="session")
def carol_sandbox_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """One plain-HTTP sandbox for the whole session (state is not reset; use ``carol_sandbox``)."""
    yield from _server(tmp_path_factory, tls=False)


@pytest.fixture(scope="session")
def carol_sandbox_tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """One HTTPS sandbox with a throw-away CA (``ca_bundle``) for the whole session."""
    yield from _server(tmp_path_factory, tls=True)


@pytest.fixture
def carol_sandbox(carol_sandbox_server: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """A freshly reset sandbox, with ``AIRFLOW_CONN_CAROL_DEFAULT`` (password auth) pointing at it."""
    carol_sandbox_server.reset()
    monkeypatch.setenv(CONN_ENV, carol_sandbox_server.connection_json("password"))
    return carol_sandbox_server


@pytest.fixture
def carol_sandbox_tls(carol_sandbox_tls_server: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """Like ``carol_sandbox`` but over HTTPS; the connection's ``verify`` is the sandbox CA bundle."""
    carol_sandbox_tls_server.reset()
    monkeypatch.setenv(CONN_ENV, carol_sandbox_tls_server.connection_json("password"))
    return carol_sandbox_tls_server
