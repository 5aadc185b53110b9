"""pytest fixtures for the local BigQuery emulator (local-bigquery 0.3.2 in .venv-bq-emulator).

``bigquery_emulator`` starts one emulator per test session on free loopback ports and fails (never
skips) with a clear message when its venv is missing: ``scripts/bootstrap-bigquery.sh`` builds it.
``carol_bigquery`` resets the Carol sandbox, points ``AIRFLOW_CONN_CAROL_DEFAULT`` at it with the
``bigquery_endpoint``/``bigquery_storage_endpoint`` extras, and makes sure the tenant's dataset exists.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.dagutil import free_port

REPO = Path(__file__).resolve().parent.parent
EMULATOR_VENV = Path(os.environ.get("CAROL_BQ_EMULATOR_VENV", REPO / ".venv-bq-emulator"))
START_TIMEOUT = 60.0


@dataclass
class BigQueryEmulator:
    """A running emulator: REST on ``rest`` (a URL), Storage Read gRPC on ``grpc`` (``host:port``)."""

    rest: str
    grpc: str
    data_dir: Path
    log_path: Path

    def client(self, project: str) -> Any:
        """An anonymous admin client (seeding and checks only; the code under test uses real keys)."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import bigquery

        return bigquery.Client(project=project, credentials=AnonymousCredentials(),
                               client_options={"api_endpoint": self.rest})

    def load_table(self, project: str, dataset: str, table: str, data: Any) -> None:
        """Replace ``project.dataset.table`` with a pyarrow Table, through a Parquet load job."""
        import pyarrow.parquet as pq
        from google.cloud import bigquery

        client = self.client(project)
        client.create_dataset(f"{project}.{dataset}", exists_ok=True)
        buffer = io.BytesIO()
        pq.write_table(data, buffer)
        buffer.seek(0)
        config = bigquery.LoadJobConfig(source_format=bigquery.SourceFormat.PARQUET,
                                        write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE)
        client.load_table_from_file(buffer, f"{project}.{dataset}.{table}", job_config=config,
                                    size=None).result()

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


def emulator_command() -> Path:
    """The emulator's executable, or a failure that says how to build it."""
    exe = EMULATOR_VENV / "bin" / "local-bigquery"
    if not exe.exists():
        pytest.fail(
            f"The BigQuery emulator is not installed ({exe} is missing). Run scripts/bootstrap-bigquery.sh "
            "(make test does it) to build .venv-bq-emulator with local-bigquery 0.3.2 on Python 3.13.",
            pytrace=False,
        )
    return exe


def start_emulator(
    exe: Path, work: Path, project: str = "carol-sandbox"
) -> tuple[subprocess.Popen, BigQueryEmulator]:
    """Start ``local-bigquery serve`` on free loopback ports; ready when the datasets URL answers 200."""
    for _attempt in range(3):
        rest_port, grpc_port = free_port(), free_port()
        data_dir = Path(tempfile.mkdtemp(prefix="bq-data-", dir=work))
        log_path = work / f"emulator-{rest_port}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [str(exe), "serve", "--host", "127.0.0.1", "--port", str(rest_port), "--grpc-port",
                 str(grpc_port), "--project", project, "--data-dir", str(data_dir)],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        emulator = BigQueryEmulator(
            f"http://127.0.0.1:{rest_port}", f"127.0.0.1:{grpc_port}", data_dir, log_path
        )
        outcome = _wait_ready(process, emulator, project)
        if outcome == "ready":
            return process, emulator
        stop_emulator(process)
        if outcome != "port-in-use":
            pytest.fail(f"The BigQuery emulator did not start ({outcome}).\n--- log tail ---\n"
                        f"{emulator.log_tail()}", pytrace=False)
    pytest.fail("The BigQuery emulator found no free port in 3 attempts.", pytrace=False)


def _wait_ready(process: subprocess.Popen, emulator: BigQueryEmulator, project: str) -> str:
    url = f"{emulator.rest}/bigquery/v2/projects/{project}/datasets"
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return "port-in-use" if "address already in use" in emulator.log_tail().lower() else (
                f"exited with code {process.returncode}")
        try:
            status = requests.get(url, timeout=2).status_code
        except requests.RequestException:
            time.sleep(0.1)
            continue
        if status == 200:
            host, port = emulator.grpc.rsplit(":", 1)
            try:
                socket.create_connection((host, int(port)), timeout=2).close()
                return "ready"
            except OSError:
                time.sleep(0.1)
                continue
        return f"the datasets URL answered HTTP {status}"
    return f"not ready within {START_TIMEOUT:.0f} s"


def stop_emulator(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def bigquery_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BigQueryEmulator]:
    """One local-bigquery process for the whole session (tests isolate themselves by table name)."""
    exe = emulator_command()
    work = tmp_path_factory.mktemp("bigquery-emulator")
    process, emulator = start_emulator(exe, work)
    try:
        yield emulator
    finally:
        stop_emulator(process)
        shutil.rmtree(emulator.data_dir, ignore_errors=True)


@dataclass
class CarolBigQuery:
    """The sandbox plus the emulator, as a test sees them."""

    sandbox: Any
    emulator: BigQueryEmulator
    project: str
    dataset: str

    def load_table(self, table: str, data: Any) -> None:
        self.emulator.load_table(self.project, self.dataset, table, data)

    def connection_json(self, **extra: Any) -> str:
        return self.sandbox.connection_json(
            "password", bigquery_endpoint=self.emulator.rest,
            bigquery_storage_endpoint=self.emulator.grpc, **extra)

    def key_requests(self) -> int:
        """How many temporary keys the sandbox handed out since the last reset."""
        return len(self.sandbox.requests(path="*/create_temporary_key", status=200))


@pytest.fixture
def carol_bigquery(carol_sandbox: Any, bigquery_emulator: BigQueryEmulator,
                   monkeypatch: pytest.MonkeyPatch) -> CarolBigQuery:
    """A reset sandbox whose connection reaches the emulator (keys cached by earlier tests stay valid)."""
    project = f"carol-{carol_sandbox.tenant_id[:20]}"
    setup = CarolBigQuery(carol_sandbox, bigquery_emulator, project, carol_sandbox.tenant_id)
    bigquery_emulator.client(project).create_dataset(f"{project}.{setup.dataset}", exists_ok=True)
    monkeypatch.setenv("AIRFLOW_CONN_CAROL_DEFAULT", setup.connection_json())
    return setup


@pytest.fixture
def fresh_bigquery_keys(carol_bigquery: CarolBigQuery) -> CarolBigQuery:
    """``carol_bigquery`` with the in-process key cache emptied, for tests that count minted keys."""
    from airflow_provider_carol.hooks.bigquery.keys import TEMPORARY_KEYS

    TEMPORARY_KEYS.clear()
    return carol_bigquery


@pytest.fixture
def carol_bigquery_mirror(carol_bigquery: CarolBigQuery) -> Iterator[CarolBigQuery]:
    """``carol_bigquery`` with staging intake mirrored into the emulator (``stg_<connector>_<staging>``)."""
    carol_bigquery.sandbox.attach_bigquery(carol_bigquery.emulator.rest, carol_bigquery.emulator.grpc)
    try:
        yield carol_bigquery
    finally:
        carol_bigquery.sandbox.attach_bigquery(None)


class BigQueryFaultProxy:
    """A real HTTP proxy in front of the emulator's REST API that answers Google's 401 a set number of times.

    The emulator accepts any credentials, so BigQuery's own ``401 UNAUTHENTICATED`` (an expired or revoked
    key) can only be produced in front of it. google-auth's ``AuthorizedSession`` refreshes the OAuth token
    and resends a request answered 401 up to ``DEFAULT_MAX_REFRESH_ATTEMPTS`` times by itself, so a 401
    reaches the caller only when every one of those sends was refused: ``reject_*`` counts whole calls.
    """

    def __init__(self, target: str, *, reject_job_inserts: int = 0, reject_job_reads: int = 0) -> None:
        import http.server
        import re
        import threading

        from google.auth import transport as google_transport

        sends = 1 + google_transport.DEFAULT_MAX_REFRESH_ATTEMPTS
        self.target = target.rstrip("/")
        self.left = {"inserts": reject_job_inserts * sends, "reads": reject_job_reads * sends}
        self.answered = {"rejected_inserts": 0, "forwarded_inserts": 0}
        if reject_job_reads:
            self.answered["rejected_reads"] = 0
        self._sends = sends
        self._seen = {"inserts": 0, "reads": 0}
        self._lock = threading.Lock()
        insert = re.compile(r"^/bigquery/v2/projects/[^/]+/jobs$")
        read = re.compile(r"^/bigquery/v2/projects/[^/]+/(queries|jobs)/[^/]+$")
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                path = self.path.split("?", 1)[0]
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                kind = ("inserts" if self.command == "POST" and insert.match(path)
                        else "reads" if self.command == "GET" and read.match(path) else None)
                if kind is not None and proxy._reject(kind):
                    payload = json.dumps({"error": {
                        "code": 401, "status": "UNAUTHENTICATED",
                        "message": "Request had invalid authentication credentials.",
                        "errors": [{"message": "Invalid Credentials", "domain": "global",
                                    "reason": "authError"}]}}).encode()
                    self.send_response(401)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                skip = ("host", "content-length")
                headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
                answer = requests.request(self.command, proxy.target + self.path, headers=headers,
                                          data=body or None, timeout=60)
                if kind == "inserts":
                    with proxy._lock:
                        proxy.answered["forwarded_inserts"] += 1
                self.send_response(answer.status_code)
                for key, value in answer.headers.items():
                    if key.lower() not in ("content-length", "transfer-encoding", "connection",
                                           "content-encoding"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _reject(self, kind: str) -> bool:
        with self._lock:
            if self.left[kind] <= 0:
                return False
            self.left[kind] -= 1
            self._seen[kind] += 1
            if self._seen[kind] % self._sends == 0:  # a whole call refused: the caller sees this 401
                self.answered[f"rejected_{kind}"] += 1
            return True

    def __enter__(self) -> BigQueryFaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
