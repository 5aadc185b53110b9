"""Start and stop a real Airflow api-server on 127.0.0.1 for the browser tests.

One throw-away AIRFLOW_HOME (SQLite, ``airflow db migrate``), the simple auth manager with one admin
user whose password we write ourselves, the Test button enabled. Only the api-server runs: the form's
Test button posts to ``/api/v2/connections/test``, which runs the hook inside the api-server, so no
scheduler is needed. Every process runs in its own process group and is killed with it.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.dagutil import free_port

ADMIN = "admin"
# conftest.py points these at the pytest session's Airflow home; the api-server gets its own.
_DROPPED_PREFIXES = ("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_")
_DROPPED = {"AIRFLOW_HOME", "PYTHONDONTWRITEBYTECODE"}


def airflow_env(home: Path, port: int, password_file: Path) -> dict[str, str]:
    """The environment of every Airflow process of the UI test: nothing inherited from the test session."""
    env = {key: value for key, value in os.environ.items()
           if key not in _DROPPED and not key.startswith(_DROPPED_PREFIXES)}
    (home / "dags").mkdir(parents=True, exist_ok=True)
    base_url = f"http://127.0.0.1:{port}"
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__AUTH_MANAGER":
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(password_file),
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": base_url,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
    })
    return env


def stop_group(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM the process group of ``process`` (it is its leader), then SIGKILL whatever is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; children (uvicorn workers) may still be in the group.
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
    process.wait(timeout=timeout)


@dataclass
class ApiServer:
    """A running ``airflow api-server``: where it listens, how to log in, and its log file."""

    url: str
    home: Path
    username: str
    password: str
    log_path: Path
    process: subprocess.Popen[bytes]

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        stop_group(self.process)


def _airflow(*args: str) -> list[str]:
    return [sys.executable, "-m", "airflow", *args]


def start_api_server(home: Path, timeout: float = 240.0) -> ApiServer:
    """Migrate a fresh metadata DB in ``home`` and start the api-server; return once it is healthy."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    password = secrets.token_urlsafe(12)
    password_file = home / "passwords.json"
    password_file.write_text(json.dumps({ADMIN: password}))
    password_file.chmod(0o600)
    env = airflow_env(home, port, password_file)
    migrate_log = home / "db-migrate.log"
    with migrate_log.open("wb") as out:
        migrate = subprocess.run(_airflow("db", "migrate"), env=env, stdout=out, stderr=subprocess.STDOUT,
                                 timeout=timeout, check=False, start_new_session=True)
    if migrate.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed ({migrate.returncode}):\n"
                           f"{migrate_log.read_text(errors='replace')[-4000:]}")

    log_path = home / "api-server.log"
    with log_path.open("wb") as out:
        process = subprocess.Popen(_airflow("api-server", "-H", "127.0.0.1", "-p", str(port)), env=env,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = ApiServer(f"http://127.0.0.1:{port}", home, ADMIN, password, log_path, process)
    try:
        _wait_healthy(server, time.monotonic() + timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_healthy(server: ApiServer, deadline: float) -> None:
    """Poll ``/api/v2/monitor/health`` until the metadata DB reports healthy."""
    last = "no answer"
    with requests.Session() as session:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"the api-server exited with {server.process.returncode}:\n"
                                   f"{server.log_tail()}")
            try:
                answer = session.get(f"{server.url}/api/v2/monitor/health", timeout=5)
                if answer.ok and answer.json().get("metadatabase", {}).get("status") == "healthy":
                    return
                last = f"HTTP {answer.status_code}: {answer.text[:200]}"
            except requests.RequestException as exc:
                last = type(exc).__name__
            time.sleep(1.0)
    raise TimeoutError(f"the api-server was not healthy in time (last: {last}):\n{server.log_tail()}")
