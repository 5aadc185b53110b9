"""The async hooks' shared session against the sandbox: one client per connection and loop, gated, refcounted.

What a triggerer relies on: hooks of one connection on one event loop share one HTTP client and one token;
at most ``MAX_IN_FLIGHT`` requests are on the wire at once and the rest wait their turn; the last hook to
close closes the client. Loops never share (an ``httpx.AsyncClient`` belongs to its loop), nor do
connections with different settings.
"""

from __future__ import annotations

import asyncio
import json
import threading

from airflow_provider_carol import compat
from airflow_provider_carol.hooks.carol_async import CarolAsyncHook
from airflow_provider_carol.hooks.core import async_driver, sessions
from airflow_provider_carol.hooks.core.sessions import MAX_IN_FLIGHT
from tests.dagutil import await_until

RUNNING = [{"status": "RUNNING", "after": 0}]
TOKEN_PATH = "/api/v5/oauth2/token"


def logins(sandbox) -> int:
    return len(sandbox.requests(path=TOKEN_PATH))


async def test_hooks_of_one_connection_share_the_client_and_log_in_once(carol_sandbox):
    task_id = carol_sandbox.create_task(RUNNING)
    hooks = [CarolAsyncHook() for _ in range(5)]
    tasks = await asyncio.gather(*(hook.get_task(task_id) for hook in hooks))
    assert {t.status for t in tasks} == {"RUNNING"}
    clients = {id(await hook.get_client()) for hook in hooks}
    assert len(clients) == 1 and logins(carol_sandbox) == 1
    [session] = sessions.open_sessions()
    assert session.users == 5
    client = await hooks[0].get_client()
    for hook in hooks[:-1]:
        await hook.aclose()
        assert not client.is_closed  # others still use it
    await hooks[-1].aclose()
    assert client.is_closed and sessions.open_sessions() == []


async def test_requests_beyond_the_gate_wait_on_our_side_not_on_the_wire(carol_sandbox):
    task_ids = [carol_sandbox.create_task(RUNNING) for _ in range(MAX_IN_FLIGHT + 15)]
    carol_sandbox.add_fault("/api/v1/tasks/*", method="GET", hold=True, times=len(task_ids))
    async with CarolAsyncHook() as first:
        hooks = [first, *(CarolAsyncHook() for _ in task_ids[1:])]
        polls = asyncio.gather(*(hook.get_task(t) for hook, t in zip(hooks, task_ids, strict=True)))
        [session] = await _session_once_open()
        await await_until(
            lambda: carol_sandbox.held() == MAX_IN_FLIGHT and session.waiting == 15,
            f"{MAX_IN_FLIGHT} requests held by Carol and 15 waiting at the gate",
        )
        assert carol_sandbox.held() == MAX_IN_FLIGHT  # nothing passed the gate meanwhile
        carol_sandbox.release_held()
        done = await asyncio.wait_for(polls, 120)
        for hook in hooks[1:]:
            await hook.aclose()
    assert [t.task_id for t in done] == task_ids
    gets = carol_sandbox.requests(path="/api/v1/tasks/*")
    assert len(gets) == len(task_ids) and len({r["client"] for r in gets}) <= MAX_IN_FLIGHT


async def _session_once_open() -> list[sessions.SharedSession]:
    loop = asyncio.get_running_loop()  # await_until checks in a thread
    await await_until(lambda: sessions.open_sessions(loop) != [], "the shared session")
    return sessions.open_sessions()


async def test_concurrent_first_uses_of_one_hook_take_one_share(carol_sandbox):
    task_id = carol_sandbox.create_task(RUNNING)
    hook = CarolAsyncHook()
    await asyncio.gather(*(hook.get_task(task_id) for _ in range(4)))
    [session] = sessions.open_sessions()
    assert session.users == 1
    await hook.aclose()
    assert sessions.open_sessions() == []


async def test_connections_with_other_settings_get_their_own_session(carol_sandbox, monkeypatch):
    task_id = carol_sandbox.create_task(RUNNING)
    monkeypatch.setenv("AIRFLOW_CONN_CAROL_KEY", carol_sandbox.connection_json("api_key"))
    rotated = json.loads(carol_sandbox.connection_json("password"))
    rotated["extra"]["timeout"] = 30  # same host and user, another setting: another client
    monkeypatch.setenv("AIRFLOW_CONN_CAROL_SLOW", json.dumps(rotated))
    async with (
        CarolAsyncHook() as password,
        CarolAsyncHook("carol_key") as api_key,
        CarolAsyncHook("carol_slow") as slow,
    ):
        for hook in (password, api_key, slow):
            assert (await hook.get_task(task_id)).status == "RUNNING"
        assert len(sessions.open_sessions()) == 3
        assert (await slow.get_client()).timeout.read == 30
    assert logins(carol_sandbox) == 2  # one per password session; the API key needs none
    assert sessions.open_sessions() == []


async def test_hooks_on_another_event_loop_do_not_share(carol_sandbox):
    task_id = carol_sandbox.create_task(RUNNING)
    seen: list[object] = []

    def other_loop() -> None:
        async def poll() -> None:
            async with CarolAsyncHook() as hook:
                await hook.get_task(task_id)
                seen.append(await hook.get_client())

        asyncio.run(poll())

    async with CarolAsyncHook() as hook:
        await hook.get_task(task_id)
        thread = threading.Thread(target=other_loop)
        thread.start()
        await asyncio.to_thread(thread.join)
        assert seen and seen[0] is not await hook.get_client()
        assert not (await hook.get_client()).is_closed  # the other loop closed only its own
    assert logins(carol_sandbox) == 2


async def test_hooks_starting_together_register_each_secret_with_the_masker_once(carol_sandbox, monkeypatch):
    """On the triggerer each registration is a supervisor round-trip: once per secret, not per trigger."""
    registered: list[str] = []
    real = compat.amask_secret

    async def counted(secret, name=None):
        registered.append(secret)
        await real(secret, name)

    monkeypatch.setattr(compat, "amask_secret", counted)
    monkeypatch.setattr(async_driver, "_MASKED", set())
    task_id = carol_sandbox.create_task(RUNNING)
    hooks = [CarolAsyncHook() for _ in range(20)]
    await asyncio.gather(*(hook.get_task(task_id) for hook in hooks))
    for hook in hooks:
        await hook.aclose()
    # the password, then the one login's access and refresh tokens
    assert len(registered) == 3 and registered[0] == carol_sandbox.password
