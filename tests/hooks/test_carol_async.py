"""CarolAsyncHook against the sandbox: async connection lookup, every auth mode, the shared retry policy."""

from __future__ import annotations

import asyncio
import threading

import pytest
from airflow.providers.common.compat.sdk import BaseHook, Connection

from airflow_provider_carol.exceptions import CarolApiError, CarolAuthError, CarolNotFound
from airflow_provider_carol.hooks.carol import CarolHook
from airflow_provider_carol.hooks.carol_async import CarolAsyncHook

RUNNING_LONG = [{"status": "RUNNING", "after": 0}, {"status": "COMPLETED", "after": 60}]
TOKEN_PATH = "/api/v5/oauth2/token"


@pytest.fixture
def no_sync_lookup(monkeypatch) -> list[str]:
    """Fail loudly if the connection is read with the sync API on the event loop (it blocks it).

    Before Airflow 3.3.2 common-compat's ``get_async_connection`` reads it with the sync API in a worker
    thread, where blocking is safe: allowed, and the calls are returned for the test to count.
    """
    original = BaseHook.get_connection.__func__
    calls: list[str] = []

    def guarded(cls, *args, **kwargs):
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # not on an event loop: a worker thread
            calls.append(threading.current_thread().name)
            return original(cls, *args, **kwargs)
        raise AssertionError("sync BaseHook.get_connection called on the event loop")

    monkeypatch.setattr(BaseHook, "get_connection", classmethod(guarded))
    return calls


@pytest.mark.parametrize("auth_type", ["password", "api_key", "token"])
async def test_get_task_in_every_auth_mode_with_the_async_connection_api(
    carol_sandbox, monkeypatch, no_sync_lookup, auth_type
):
    monkeypatch.setenv("AIRFLOW_CONN_CAROL_ASYNC", carol_sandbox.connection_json(auth_type))
    task_id = carol_sandbox.create_task(RUNNING_LONG)
    async with CarolAsyncHook("carol_async") as hook:
        task = await hook.get_task(task_id)
        again = await hook.get_task(task_id)
    assert (task.task_id, task.status, again.status) == (task_id, "RUNNING", "RUNNING")
    # 3.3.2+: BaseHook.aget_connection; older: one sync lookup, in a worker thread (compat fallback).
    assert len(no_sync_lookup) == (0 if hasattr(Connection, "aextra_dejson") else 1)
    logins = carol_sandbox.requests(path=TOKEN_PATH)
    assert len(logins) == (1 if auth_type == "password" else 0)


async def test_config_is_the_same_as_the_sync_hooks(carol_sandbox):
    async with CarolAsyncHook() as hook:
        assert await hook.get_config() == CarolHook().config


async def test_get_task_retries_503_and_dropped_connections(carol_sandbox):
    task_id = carol_sandbox.create_task(RUNNING_LONG)
    carol_sandbox.add_fault(f"/api/v1/tasks/{task_id}", method="GET", status=503, times=2, retry_after=0)
    carol_sandbox.add_fault(f"/api/v1/tasks/{task_id}", method="GET", drop="before", times=1)
    carol_sandbox.add_fault(f"/api/v1/tasks/{task_id}", method="GET", drop="after", times=1)
    async with CarolAsyncHook(retry_delay=0.01) as hook:
        assert (await hook.get_task(task_id)).status == "RUNNING"
    gets = carol_sandbox.requests(path=f"/api/v1/tasks/{task_id}")
    assert [r["fault"] for r in gets] == ["status", "status", "drop_before", "drop_after", None]


async def test_a_post_is_not_resent_unless_idempotent(carol_sandbox):
    task_id = carol_sandbox.create_task(RUNNING_LONG)
    carol_sandbox.add_fault(f"/api/v1/tasks/{task_id}/reprocess", status=503, times=1)
    async with CarolAsyncHook(retry_delay=0.01) as hook:
        with pytest.raises(CarolApiError, match="503"):
            await hook.call_api(f"v1/tasks/{task_id}/reprocess", "POST")
        carol_sandbox.add_fault(f"/api/v1/tasks/{task_id}/cancel", status=503, times=1)
        assert (await hook.cancel_task(task_id)).status == "CANCELED"  # cancel is idempotent: resent
    assert carol_sandbox.task(task_id)["reprocess_count"] == 0


async def test_an_expired_token_is_renewed_once_and_the_request_resent(carol_sandbox):
    task_id = carol_sandbox.create_task(RUNNING_LONG)
    async with CarolAsyncHook() as hook:
        await hook.get_task(task_id)
        carol_sandbox.expire_tokens()
        assert (await hook.get_task(task_id)).status == "RUNNING"
    statuses = [r["status"] for r in carol_sandbox.requests(path=f"/api/v1/tasks/{task_id}")]
    assert statuses == [200, 401, 200]


async def test_errors_map_to_the_same_types_as_the_sync_hook(carol_sandbox, monkeypatch):
    async with CarolAsyncHook() as hook:
        with pytest.raises(CarolNotFound, match="404"):
            await hook.get_task("missing")
    carol_sandbox.revoke_api_key()
    monkeypatch.setenv("AIRFLOW_CONN_CAROL_KEY", carol_sandbox.connection_json("api_key"))
    async with CarolAsyncHook("carol_key") as hook:
        with pytest.raises(CarolAuthError) as excinfo:
            await hook.get_task("anything")
    assert carol_sandbox.api_key not in str(excinfo.value)


async def test_task_logs_are_read(carol_sandbox):
    task_id = carol_sandbox.create_task(RUNNING_LONG)
    CarolHook().add_task_logs(task_id, [("INFO", "one"), ("ERROR", "two")])
    async with CarolAsyncHook() as hook:
        logs = await hook.get_task_logs(task_id)
    assert [(e.level, e.message) for e in logs] == [("INFO", "one"), ("ERROR", "two")]


async def test_tls_with_the_connections_ca_bundle(carol_sandbox_tls):
    task_id = carol_sandbox_tls.create_task(RUNNING_LONG)
    async with CarolAsyncHook() as hook:
        assert (await hook.get_config()).scheme == "https"
        assert (await hook.get_task(task_id)).status == "RUNNING"
