"""A handle on a running sandbox: its start-up info, the Airflow connection for it, admin calls over HTTP.

Tests and users reach the sandbox only through HTTP, like any other client; this module holds no state
of its own apart from a ``requests.Session``.
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any

import requests

AUTH_TYPES = ("password", "token", "api_key")


class Sandbox:
    """A running ``carol-sandbox``, described by the JSON line it printed at start.

    :param info: that JSON object (``url``, ``port``, ``ca_bundle``, ``tenant``, ``user``, ...).
    """

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = dict(info)
        self.url: str = info["url"]
        self.port: int = info["port"]
        self.ca_bundle: str | None = info.get("ca_bundle")
        self.tenant: str = info["tenant"]
        self.organization: str = info["organization"]
        self.environment: str = info.get("environment", "carol.ai")
        self.user: str = info["user"]
        self.password: str = info["password"]
        self.api_key: str = info["api_key"]
        self.connector_id: str = info["connector_id"]
        self.tenant_id: str = info["tenant_id"]
        self.org_id: str = info["org_id"]
        self.app_name: str = info.get("app_name", "sandbox_app")
        self.session = requests.Session()
        self.session.verify = self.ca_bundle or True

    def __repr__(self) -> str:
        return f"Sandbox(url={self.url!r}, tenant={self.tenant!r})"

    # -- the Airflow connection ----------------------------------------------------------------------------
    def connection_json(self, auth_type: str = "password", conn_type: str = "carol", **extra: Any) -> str:
        """The Airflow connection (JSON form) for this sandbox; ``extra`` keys override the defaults.

        ``password`` holds the secret of the auth type: the user's password, a fresh access token
        (``token``) or the API key (``api_key``).
        """
        if auth_type not in AUTH_TYPES:
            raise ValueError(f"auth_type must be one of {AUTH_TYPES}, not {auth_type!r}")
        secret = {
            "password": lambda: self.password,
            "api_key": lambda: self.api_key,
            "token": lambda: self.issue_token()["access_token"],
        }[auth_type]()
        options: dict[str, Any] = {
            "auth_type": auth_type,
            "tenant": self.tenant,
            "organization": self.organization,
            "connector_id": self.connector_id,
            "app_name": self.app_name,
            "scheme": "https" if self.ca_bundle else "http",
        }
        if self.ca_bundle:
            options["verify"] = self.ca_bundle
        for key in ("bigquery_endpoint", "bigquery_storage_endpoint"):  # set by --bigquery
            if self.info.get(key):
                options[key] = self.info[key]
        options.update(extra)
        return json.dumps(
            {
                "conn_type": conn_type,
                "host": "127.0.0.1",
                "port": self.port,
                "login": self.user,
                "password": secret,
                "extra": options,
            }
        )

    # -- admin API -----------------------------------------------------------------------------------------
    def _admin(self, method: str, path: str, **kwargs: Any) -> Any:
        # verify= per call: a session-level value loses to REQUESTS_CA_BUNDLE from the environment.
        response = self.session.request(
            method, f"{self.url}/__sandbox/{path}", timeout=30, verify=self.ca_bundle or True, **kwargs
        )
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        """Clear data, faults, tasks, logs and the request log; seeded credentials stay valid."""
        self._admin("POST", "reset")

    def staging(self, name: str, connector_id: str | None = None) -> list[dict[str, Any]]:
        """Stored rows of a staging: ``{batchId, batchIdSequence, connectorId, record}`` each."""
        params = {"connector_id": connector_id} if connector_id else None
        return self._admin("GET", f"staging/{name}", params=params)["records"]

    def records(self, name: str, connector_id: str | None = None) -> list[dict[str, Any]]:
        """Just the stored record objects of a staging, in batch/sequence order."""
        return [row["record"] for row in self.staging(name, connector_id)]

    def staging_count(self, name: str, connector_id: str | None = None) -> int:
        params = {"count_only": "true", **({"connector_id": connector_id} if connector_id else {})}
        return self._admin("GET", f"staging/{name}", params=params)["count"]

    def batches(self) -> list[dict[str, Any]]:
        return self._admin("GET", "batches")

    def batch(self, batch_id: str) -> dict[str, Any]:
        """One batch's accounting; ``KeyError`` if the sandbox never heard of it."""
        for found in self.batches():
            if found["batchId"] == batch_id:
                return found
        raise KeyError(batch_id)

    def requests(
        self, method: str | None = None, path: str | None = None, *, status: int | None = None
    ) -> list[dict[str, Any]]:
        """The request log, oldest first: ``{time, method, path, query, status, fault, client}`` each.

        Every argument given narrows it (filtered here, on the client):

        :param method: only requests with this HTTP method (any case).
        :param path: only paths matching this glob, as in :meth:`add_fault` (no wildcard: that exact path).
        :param status: only requests answered with this status code.
        """
        log = self._admin("GET", "requests")
        if method is not None:
            log = [entry for entry in log if entry["method"].upper() == method.upper()]
        if path is not None:
            log = [entry for entry in log if fnmatch.fnmatchcase(entry["path"], path)]
        if status is not None:
            log = [entry for entry in log if entry["status"] == status]
        return log

    def attach_bigquery(self, rest: str | None, grpc: str | None = None) -> dict[str, Any] | None:
        """Mirror staging intake into the BigQuery emulator at ``rest``/``grpc``; ``None`` detaches."""
        return self._admin("POST", "bigquery", json={"rest": rest, "grpc": grpc})

    def in_flight(self) -> int:
        """Requests the sandbox is handling right now (0: everything sent so far is answered and logged)."""
        return int(self._admin("GET", "in_flight")["in_flight"])

    def held(self) -> int:
        """Requests a ``hold`` fault is holding right now (wait for a count instead of sleeping)."""
        return int(self._admin("GET", "in_flight")["held"])

    def release_held(self) -> int:
        """Drop every ``hold`` fault and let the requests it holds go on; how many were held."""
        return int(self._admin("POST", "faults/release")["released"])

    def add_fault(
        self,
        path: str,
        *,
        method: str | None = None,
        status: int | None = None,
        times: int = 1,
        retry_after: int | str | None = None,
        latency: float | None = None,
        drop: str | None = None,
        body: Any = None,
        rate: float | None = None,
        seed: int | None = None,
        hold: bool | None = None,
    ) -> dict[str, Any]:
        """Fail, slow, hold or drop the next ``times`` requests whose path matches the glob ``path``.

        With ``rate`` each matching request is hit with that probability (seeded by ``seed``), until
        ``times`` requests were hit. With ``hold`` each waits until :meth:`release_held`.
        """
        spec = {
            "path": path,
            "method": method,
            "status": status,
            "times": times,
            "retry_after": retry_after,
            "latency": latency,
            "drop": drop,
            "body": body,
            "rate": rate,
            "seed": seed,
            "hold": hold,
        }
        return self._admin("POST", "faults", json={k: v for k, v in spec.items() if v is not None})

    def faults(self) -> list[dict[str, Any]]:
        return self._admin("GET", "faults")

    def expire_tokens(self) -> int:
        """Expire every access token issued so far (refresh tokens keep working)."""
        return self._admin("POST", "faults", json={"expire_tokens": True})["expired_tokens"]

    def revoke_api_key(self) -> None:
        """Make the API key answer 401 until :meth:`reset`."""
        self._admin("POST", "faults", json={"revoke_api_key": True})

    def create_task(
        self,
        schedule: list[dict[str, Any]],
        *,
        reprocess_schedule: list[dict[str, Any]] | None = None,
        error: str | None = None,
        name: str | None = None,
        task_type: str | None = None,
        app_name: str | None = None,
    ) -> str:
        """Create a long task following ``schedule`` (``[{"status", "after"}]``); return its id.

        ``task_type`` is its ``mdmTaskType``, ``app_name`` its ``mdmData.carolAppName`` (task queries
        filter on both).
        """
        spec = {
            "schedule": schedule,
            "reprocess_schedule": reprocess_schedule,
            "error": error,
            "name": name,
            "task_type": task_type,
            "app_name": app_name,
        }
        return self._admin("POST", "tasks", json={k: v for k, v in spec.items() if v is not None})["id"]

    def task(self, task_id: str) -> dict[str, Any]:
        """The task as Carol shows it, plus ``reprocess_count``, ``cancel_count``, ``logs``."""
        return self._admin("GET", f"tasks/{task_id}")

    def set_task_status(self, task_id: str, status: str, error: str | None = None) -> dict[str, Any]:
        """Put the task in ``status`` now (its schedule no longer applies until a reprocess)."""
        body = {"status": status, **({"error": error} if error is not None else {})}
        return self._admin("POST", f"tasks/{task_id}/status", json=body)

    def finish_task(
        self, task_id: str, status: str = "COMPLETED", error: str | None = None
    ) -> dict[str, Any]:
        """End a task now in a terminal ``status`` (COMPLETED, FAILED or CANCELED): a Carol task event."""
        if status.upper() not in ("COMPLETED", "FAILED", "CANCELED"):
            raise ValueError(f"status must be COMPLETED, FAILED or CANCELED, not {status!r}")
        return self.set_task_status(task_id, status.upper(), error)

    def complete_batch(
        self,
        staging: str,
        records: int | list[dict[str, Any]] = 1,
        *,
        connector_id: str | None = None,
        batch_id: str | None = None,
    ) -> dict[str, Any]:
        """Store a whole batch in ``staging`` and post its summary (a Carol staging event); its accounting.

        ``records`` is the records or how many ``{"id": n}`` records to make.
        """
        spec = {"staging": staging, "records": records, "connector_id": connector_id, "batch_id": batch_id}
        return self._admin("POST", "batches", json={k: v for k, v in spec.items() if v is not None})

    def advance_clock(self, seconds: float) -> float:
        """Move every task schedule ``seconds`` ahead; returns the total offset since the last reset."""
        return float(self._admin("POST", "clock", json={"advance": seconds})["offset"])

    def configure(self, **settings: Any) -> dict[str, Any]:
        """Change server settings, e.g. ``configure(token_ttl=2)``."""
        return self._admin("POST", "config", json=settings)

    def set_shapes(self, **shapes: str) -> dict[str, str]:
        """Answer in other documented shapes, e.g. ``set_shapes(execute="top")`` (see sandbox/shapes.py);
        returns the shapes now in force. ``reset`` restores the evidence defaults."""
        return self._admin("POST", "shapes", json=shapes)

    def shapes(self) -> dict[str, Any]:
        """``{"current": {answer: shape}, "choices": {answer: [shapes]}}``."""
        return self._admin("GET", "shapes")

    def add_user(self, login: str, password: str, mfa: bool = False) -> dict[str, Any]:
        return self._admin("POST", "users", json={"login": login, "password": password, "mfa": mfa})

    def issue_token(self, login: str | None = None, org_level: bool = False) -> dict[str, Any]:
        """A token response for ``login`` (default: the seeded user) without the password grant."""
        return self._admin("POST", "tokens", json={"login": login, "org_level": org_level})

    def add_named_query(
        self,
        name: str,
        records: list[dict[str, Any]] | None,
        *,
        params: list[str] | None = None,
        data_model: str | None = None,
    ) -> dict[str, Any]:
        """Seed a named query returning ``records`` (None: what processQuery wrote into ``data_model``),
        filtered by equality on the params that are fields."""
        body = {"name": name, "records": records, "params": params or [], "data_model": data_model}
        return self._admin("POST", "named_queries", json=body)

    def set_process_query_schedule(self, schedule: list[dict[str, Any]], error: str | None = None) -> None:
        """The schedule of the long tasks that processQuery starts from now on (until reset)."""
        self._admin("POST", "process_query", json={"schedule": schedule, "error": error})

    def process_queries(self) -> list[dict[str, Any]]:
        """The processQuery calls received: ``{sql, params, task_id}`` each."""
        return self._admin("GET", "process_queries")
