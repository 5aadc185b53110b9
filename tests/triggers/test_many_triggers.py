"""Many Carol triggers on one event loop, as in a triggerer: one login, a few connections, one renewal.

Each trigger still builds its own ``CarolAsyncHook``; the hooks share the loop's session for the
connection (``hooks/core/sessions.py``). Checked against the sandbox's request log: the password grants,
the refresh grants, and the TCP connections the requests came on (``client``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable

import psutil
from airflow.triggers.base import TriggerEvent

from airflow_provider_carol.hooks.core import sessions
from airflow_provider_carol.hooks.core.sessions import MAX_IN_FLIGHT
from airflow_provider_carol.triggers.events import CarolTaskEventTrigger
from airflow_provider_carol.triggers.tasks import CarolTaskTrigger
from tests.dagutil import await_until, connections_at_once

RUNNING_LONG = [{"status": "RUNNING", "after": 0}]
TOKEN_PATH = "/api/v5/oauth2/token"


def token_requests(sandbox) -> list[dict]:
    return sandbox.requests(path=TOKEN_PATH)


def polled_since(sandbox, task_ids: list[str], since: int, status: int = 200) -> set[str]:
    """The tasks polled (answered ``status``) after the first ``since`` request-log entries."""
    paths = {f"/api/v1/tasks/{t}": t for t in task_ids}
    log = sandbox.requests()[since:]
    return {paths[r["path"]] for r in log if r["path"] in paths and r["status"] == status}


async def first_event(trigger: CarolTaskTrigger) -> TriggerEvent:
    async for event in trigger.run():
        return event
    raise AssertionError("the trigger ended without an event")


async def across(sandbox, triggers: list[CarolTaskTrigger], happen: Callable[[], bool]) -> list[TriggerEvent]:
    """Run the triggers until each polled, then until ``happen()`` is true and each polled once more;
    then end their Carol tasks. Their events."""
    task_ids = [t.carol_task_id for t in triggers]
    waiting = asyncio.gather(*(first_event(t) for t in triggers))
    await await_until(lambda: polled_since(sandbox, task_ids, 0) == set(task_ids), "a poll of each")
    await await_until(happen, "the event under test")
    since = len(sandbox.requests())
    await await_until(lambda: polled_since(sandbox, task_ids, since) == set(task_ids), "a poll of each after")
    for task_id in task_ids:
        sandbox.finish_task(task_id)
    return await asyncio.wait_for(waiting, 120)


async def test_many_triggers_log_in_once_and_poll_over_a_few_shared_connections(carol_sandbox_tls):
    sandbox = carol_sandbox_tls
    schedule = [{"status": "RUNNING", "after": 0}, {"status": "COMPLETED", "after": 1}]
    task_ids = [sandbox.create_task(schedule) for _ in range(3 * MAX_IN_FLIGHT)]
    triggers = [CarolTaskTrigger(t, poll_interval=0.2, max_poll_interval=0.2) for t in task_ids]
    events = await asyncio.wait_for(asyncio.gather(*(first_event(t) for t in triggers)), 300)
    assert [(e.payload["carol_task_id"], e.payload["status"]) for e in events] == [
        (t, "COMPLETED") for t in task_ids
    ]
    log = sandbox.requests()
    assert len(token_requests(sandbox)) == 1  # one password login for all of them
    assert len({r["path"] for r in log if r["path"].startswith("/api/v1/tasks/")}) == len(task_ids)
    assert connections_at_once(log) <= MAX_IN_FLIGHT
    assert sessions.open_sessions() == []  # the last trigger to finish closed the shared client


async def test_an_expired_token_is_renewed_once_for_every_waiting_trigger(carol_sandbox):
    task_ids = [carol_sandbox.create_task(RUNNING_LONG) for _ in range(12)]
    triggers = [CarolTaskTrigger(t, poll_interval=0.2) for t in task_ids]
    events = await across(carol_sandbox, triggers, lambda: carol_sandbox.expire_tokens() >= 1)
    assert {e.payload["status"] for e in events} == {"COMPLETED"}
    assert len(token_requests(carol_sandbox)) == 2  # the first login and one renewal, not one per trigger
    assert polled_since(carol_sandbox, task_ids, 0, status=401)  # Carol did reject the expired token


async def test_a_rotating_refresh_token_serves_every_trigger(carol_sandbox, monkeypatch):
    """Carol's refresh tokens are single-use: one renewal per trigger would fail all but one."""
    issued = carol_sandbox.issue_token()
    conn = json.loads(carol_sandbox.connection_json("token"))
    conn["password"], conn["extra"]["refresh_token"] = issued["access_token"], issued["refresh_token"]
    monkeypatch.setenv("AIRFLOW_CONN_CAROL_TOKEN", json.dumps(conn))
    task_ids = [carol_sandbox.create_task(RUNNING_LONG) for _ in range(5)]
    triggers = [CarolTaskTrigger(t, "carol_token", poll_interval=0.2) for t in task_ids]
    events = await across(carol_sandbox, triggers, lambda: carol_sandbox.expire_tokens() >= 1)
    assert [e.payload["status"] for e in events] == ["COMPLETED"] * 5
    assert [r["status"] for r in token_requests(carol_sandbox)] == [200]  # one refresh grant, accepted


async def test_a_token_near_expiry_is_renewed_once_for_all_triggers(carol_sandbox):
    carol_sandbox.configure(token_ttl=8)  # renewed a quarter of its life (2 s) before it expires
    task_ids = [carol_sandbox.create_task(RUNNING_LONG) for _ in range(12)]
    triggers = [CarolTaskTrigger(t, poll_interval=0.2) for t in task_ids]
    events = await across(carol_sandbox, triggers, lambda: len(token_requests(carol_sandbox)) >= 3)
    assert {e.payload["status"] for e in events} == {"COMPLETED"}
    times = [r["time"] for r in token_requests(carol_sandbox)]
    # One renewal per token lifetime for all twelve, not twelve at once: renewals ~6 s apart.
    assert min(later - earlier for earlier, later in itertools.pairwise(times)) >= 3


async def test_cancelled_triggers_give_the_client_back_and_leave_no_socket_open(carol_sandbox):
    me = psutil.Process()

    def trigger_sockets() -> int:
        """Open sockets of this process that carried logged requests (the admin API's are not logged)."""
        used = {int(r["client"].rsplit(":", 1)[1]) for r in carol_sandbox.requests()}
        open_ports = {
            c.laddr.port for c in me.net_connections("tcp") if c.raddr == ("127.0.0.1", carol_sandbox.port)
        }
        return len(used & open_ports)

    task_ids = [carol_sandbox.create_task(RUNNING_LONG) for _ in range(20)]
    running = [asyncio.ensure_future(first_event(CarolTaskTrigger(t, poll_interval=0.2))) for t in task_ids]
    await await_until(lambda: polled_since(carol_sandbox, task_ids, 0) == set(task_ids), "a poll of each")
    assert 0 < trigger_sockets() <= MAX_IN_FLIGHT
    for task in running:  # what the triggerer does when a deferred task is cleared or moved
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)
    assert all(task.cancelled() for task in running)
    assert sessions.open_sessions() == [] and trigger_sockets() == 0


async def test_a_kill_cancels_only_its_own_carol_task(carol_sandbox):
    task_ids = [carol_sandbox.create_task(RUNNING_LONG) for _ in range(3)]
    triggers = [CarolTaskTrigger(t, cancel_on_kill=True, poll_interval=0.2) for t in task_ids]
    running = [asyncio.ensure_future(first_event(t)) for t in triggers]
    await await_until(lambda: polled_since(carol_sandbox, task_ids, 0) == set(task_ids), "a poll of each")
    running[0].cancel()  # the user killed the first deferred task: its run is cancelled, then on_kill
    await triggers[0].on_kill()
    seen = len(carol_sandbox.requests())
    await await_until(
        lambda: polled_since(carol_sandbox, task_ids[1:], seen) == set(task_ids[1:]), "the others polling on"
    )
    assert [carol_sandbox.task(t)["cancel_count"] for t in task_ids] == [1, 0, 0]
    for task_id in task_ids[1:]:
        carol_sandbox.finish_task(task_id)
    events = await asyncio.wait_for(asyncio.gather(*running[1:]), 120)
    assert [e.payload["status"] for e in events] == ["COMPLETED", "COMPLETED"]
    assert carol_sandbox.task(task_ids[0])["mdmTaskStatus"] == "CANCELED"


async def test_event_triggers_share_the_session_with_task_triggers(carol_sandbox):
    task_ids = [carol_sandbox.create_task(RUNNING_LONG) for _ in range(5)]
    watcher = CarolTaskEventTrigger(poll_interval=0.2, max_poll_interval=0.2).run()
    watching = asyncio.ensure_future(watcher.__anext__())
    waiting = asyncio.gather(*(first_event(CarolTaskTrigger(t, poll_interval=0.2)) for t in task_ids))
    await await_until(lambda: polled_since(carol_sandbox, task_ids, 0) == set(task_ids), "a poll of each")
    await await_until(lambda: bool(carol_sandbox.requests(path="/api/v1/queries/filter")), "a watcher poll")
    assert len(sessions.open_sessions()) == 1 and len(token_requests(carol_sandbox)) == 1
    for task_id in task_ids:
        carol_sandbox.finish_task(task_id)
    await asyncio.wait_for(waiting, 120)
    event = await asyncio.wait_for(watching, 120)  # the watcher saw one of them end
    assert event.payload["carol_task_id"] in task_ids
    await watcher.aclose()  # what the triggerer does when the asset is no longer watched
    assert sessions.open_sessions() == []
