"""The sandbox's BigQuery: a local-bigquery emulator subprocess, and staging records mirrored into it.

``carol-sandbox --bigquery`` starts the emulator (``.venv-bq-emulator``, built by
``scripts/bootstrap-bigquery.sh``) on free loopback ports; a test can instead attach an emulator it runs
itself through ``POST /__sandbox/bigquery``. While attached, every intake chunk also lands in
``carol-<tenantId[:20]>.<tenantId>.stg_<connector name>_<staging>`` with two extra columns,
``_batch_id`` and ``_batch_sequence``; a redelivered chunk replaces its rows, as in the staging store.
Mirroring is best effort: a failure is logged and never fails the intake.
"""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

log = logging.getLogger(__name__)
START_TIMEOUT = 60.0
_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


def find_emulator(explicit: str | None = None) -> Path:
    """The ``local-bigquery`` executable: explicit, ``$CAROL_BQ_EMULATOR`` or ``.venv-bq-emulator``."""
    candidates = [explicit, os.environ.get("CAROL_BQ_EMULATOR")]
    for root in (Path.cwd(), Path(__file__).resolve().parents[2]):
        candidates.append(str(root / ".venv-bq-emulator" / "bin" / "local-bigquery"))
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise FileNotFoundError(
        "local-bigquery not found; run scripts/bootstrap-bigquery.sh or pass --bigquery-emulator PATH"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmulatorProcess:
    """``local-bigquery serve`` on loopback; ``rest`` is a URL, ``grpc`` is ``host:port``."""

    def __init__(self, executable: Path, project: str) -> None:
        self.executable, self.project = executable, project
        self.data_dir = Path(tempfile.mkdtemp(prefix="carol-sandbox-bq-"))
        self.log_path = self.data_dir / "emulator.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.rest = self.grpc = ""

    def start(self) -> EmulatorProcess:
        rest_port, grpc_port = _free_port(), _free_port()
        self.rest, self.grpc = f"http://127.0.0.1:{rest_port}", f"127.0.0.1:{grpc_port}"
        with self.log_path.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    str(self.executable),
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(rest_port),
                    "--grpc-port",
                    str(grpc_port),
                    "--project",
                    self.project,
                    "--data-dir",
                    str(self.data_dir / "data"),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        url = f"{self.rest}/bigquery/v2/projects/{self.project}/datasets"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if requests.get(url, timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        tail = self.log_path.read_text(errors="replace")[-2000:]
        self.stop()
        raise RuntimeError(f"the BigQuery emulator did not start\n--- log tail ---\n{tail}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.data_dir, ignore_errors=True)


def table_name(connector_name: str, staging: str) -> str:
    """``stg_<connector>_<staging>`` with anything but letters, digits and ``_`` replaced by ``_``."""
    return _UNSAFE.sub("_", f"stg_{connector_name}_{staging}")


class StagingMirror:
    """Writes intake chunks into the emulator's tenant dataset, one Parquet load job per chunk."""

    def __init__(self, rest: str, grpc: str, tenant_id: str) -> None:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import bigquery

        self.rest, self.grpc = rest, grpc
        self.project, self.dataset = f"carol-{tenant_id[:20]}", tenant_id
        self.client = bigquery.Client(
            project=self.project, credentials=AnonymousCredentials(), client_options={"api_endpoint": rest}
        )
        self.client.create_dataset(f"{self.project}.{self.dataset}", exists_ok=True)
        self._lock = threading.Lock()

    def describe(self) -> dict[str, Any]:
        return {
            "bigquery_endpoint": self.rest,
            "bigquery_storage_endpoint": self.grpc,
            "project": self.project,
            "dataset": self.dataset,
        }

    def mirror(
        self,
        connector_name: str,
        staging: str,
        records: list[dict[str, Any]],
        batch_id: str | None,
        sequence: int | None,
        redelivery: bool,
    ) -> None:
        """Append one chunk (replacing an earlier delivery of it); log, never raise."""
        try:
            with self._lock:
                self._mirror(table_name(connector_name, staging), records, batch_id, sequence, redelivery)
        except Exception:  # mirroring must never fail an intake
            log.warning("BigQuery mirror of %s/%s failed", connector_name, staging, exc_info=True)

    def _mirror(
        self,
        table: str,
        records: list[dict[str, Any]],
        batch_id: str | None,
        sequence: int | None,
        redelivery: bool,
    ) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq
        from google.cloud import bigquery

        full = f"{self.project}.{self.dataset}.{table}"
        if redelivery and batch_id is not None:
            params = [
                bigquery.ScalarQueryParameter("b", "STRING", batch_id),
                bigquery.ScalarQueryParameter("s", "INT64", sequence),
            ]
            self.client.query(
                f"DELETE FROM `{full}` WHERE _batch_id = @b AND _batch_sequence = @s",
                job_config=bigquery.QueryJobConfig(query_parameters=params),
            ).result()
        rows = [{**record, "_batch_id": batch_id, "_batch_sequence": sequence} for record in records]
        data = pa.Table.from_pylist(rows)
        buffer = io.BytesIO()
        pq.write_table(data, buffer)
        buffer.seek(0)
        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
            schema_update_options=[bigquery.SchemaUpdateOption.ALLOW_FIELD_ADDITION],
        )
        self.client.load_table_from_file(buffer, full, job_config=config, size=None).result()
