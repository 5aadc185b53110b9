"""Faults in the running deployment, each checked with nothing lost or duplicated.

* the triggerer is SIGKILLed while a deferrable ``CarolTaskSensor`` and a deferrable
  ``CarolRunAppProcessOperator`` wait in it; a new triggerer takes both triggers over;
* a Celery worker is SIGKILLed (its whole process group, so also the task's process) in the middle of a
  staging send; Airflow's retry runs on the other worker;
* mapped staging sends spread over both workers still form one batch with one summary;
* Carol answers 503 for a while; the run recovers within its Airflow retries.

Every check reads the sandbox's admin API (stored rows per staging, batches and their summaries, the
request log) and the Airflow REST API (task instance tries and the worker each ran on). Waits are on
events and counts, never on elapsed time. Each test leaves both workers and a triggerer running.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from typing import Any

import pytest

from tests.deployment.harness import WORKERS, Deployment, wait_for

pytestmark = pytest.mark.deployment


def requests_to(deployment: Deployment, path: str, method: str = "POST") -> list[dict[str, Any]]:
    """The sandbox's request-log entries for one path (admin calls are never logged)."""
    return deployment.sandbox.requests(method=method, path=path)


def acknowledged(deployment: Deployment, path: str) -> int:
    return sum(1 for e in requests_to(deployment, path) if e["status"] and e["status"] < 300)


def clear_faults(deployment: Deployment) -> None:
    answer = deployment.sandbox.session.delete(f"{deployment.sandbox.url}/__sandbox/faults", timeout=30)
    answer.raise_for_status()


def assert_exactly_once(deployment: Deployment, staging: str, records: int, chunk: int) -> dict[str, Any]:
    """One batch for ``staging``: every sequence once, each record stored once, one exact summary."""
    sandbox = deployment.sandbox
    (batch,) = [b for b in sandbox.batches() if b["stagings"] == [staging]]
    requests_needed = -(-records // chunk)
    assert batch["sequences"] == list(range(1, requests_needed + 1)), batch
    assert batch["missing_sequences"] == [] and batch["conflicts"] == 0, batch
    assert batch["summary"]["totalRecords"] == records, batch
    assert batch["summary"]["totalRequests"] == requests_needed, batch
    assert batch["totals_match"] is True and batch["summaries_posted"] == 1, batch
    rows = sandbox.staging(staging)
    assert len(rows) == records
    assert sorted(row["record"]["id"] for row in rows) == list(range(1, records + 1))
    per_chunk = Counter((row["batchId"], row["batchIdSequence"]) for row in rows)
    assert len(per_chunk) == requests_needed and {row["batchId"] for row in rows} == {batch["batchId"]}
    summaries = requests_to(deployment, f"/api/v3/staging/batch/{batch['batchId']}/summary")
    assert [e["status"] for e in summaries if e["status"] and e["status"] < 300] == [200], summaries
    return batch


def workloads_in_log(deployment: Deployment, worker: str, dag_id: str, run_id: str) -> list[str]:
    """The task log paths (``task_id=.../[map_index=...]/attempt=N``) a worker's log says it executed."""
    text = deployment.log_path(worker).read_text(errors="replace")
    pattern = re.compile(
        r"Executing workload in Celery: .*?log_path='dag_id="
        + re.escape(dag_id)
        + r"/run_id="
        + re.escape(run_id)
        + r"/(task_id=[^']*)\.log'"
    )
    return pattern.findall(text)


def restart_worker(deployment: Deployment, worker: str) -> None:
    """Start ``worker`` again after a kill and wait until it is ready and answers a ping."""
    log = deployment.log_path(worker)
    offset = log.stat().st_size if log.exists() else 0
    deployment.start_service(worker)
    wait_for(
        f"{worker} to be ready again",
        lambda: deployment.worker_ready(worker, offset),
        300,
        1.0,
        deployment.log_tails,
    )
    wait_for(
        f"{worker} to answer a ping",
        lambda: f"{worker}@carol-deployment" in deployment.celery_ping(),
        300,
        2.0,
    )


def test_triggerer_killed_while_sensor_and_app_process_are_deferred(
    deployment: Deployment, observations: dict[str, Any]
) -> None:
    dag_id = "deploy_deferred_restart"
    sandbox = deployment.sandbox
    sandbox.reset()
    # Both Carol tasks stay RUNNING until the test completes them (the app process is long_process).
    held = sandbox.create_task([{"status": "RUNNING", "after": 0}], name="held")
    run_id = deployment.trigger(dag_id, {"carol_task_id": held})

    def deferred_in_one_triggerer() -> int | None:
        deployment.check_alive()
        states = deployment.task_states(dag_id, run_id)
        assert "failed" not in states.values(), states
        triggerers = deployment.triggerers_of(dag_id, run_id)
        ids = set(triggerers.values())
        if (
            set(states.values()) == {"deferred"}
            and len(triggerers) == 2
            and len(ids) == 1
            and None not in ids
        ):
            return ids.pop()
        return None

    first = wait_for(
        "both tasks deferred in the triggerer", deferred_in_one_triggerer, 600, 1.0, deployment.log_tails
    )
    app_task = deployment.xcom(dag_id, run_id, "run_process", "carol_task_id")
    paths = {"wait_task": f"/api/v1/tasks/{held}", "run_process": f"/api/v1/tasks/{app_task}"}
    # While deferred, both show their "Carol task" link (pushed before deferring).
    for task_id, carol_id in (("wait_task", held), ("run_process", app_task)):
        link = deployment.xcom(dag_id, run_id, task_id, "_link_CarolTaskLink")
        assert link.endswith(f"/{sandbox.tenant}/carol-ui/tasks/{carol_id}"), link

    def polls() -> dict[str, int]:
        return {task: len(requests_to(deployment, path, "GET")) for task, path in paths.items()}

    before = polls()
    wait_for(
        "both triggers to poll Carol from the first triggerer",
        lambda: all(n > before[t] for t, n in polls().items()),
        300,
        1.0,
    )

    deployment.kill("airflow-triggerer")
    at_kill = polls()
    states = deployment.task_states(dag_id, run_id)
    assert set(states.values()) == {"deferred"}, states  # nothing failed with the triggerer gone

    deployment.start_service("airflow-triggerer")

    def taken_over() -> int | None:
        deployment.check_alive()
        ids = set(deployment.triggerers_of(dag_id, run_id).values())
        return ids.pop() if len(ids) == 1 and None not in ids and first not in ids else None

    second = wait_for(
        "the new triggerer to take both triggers over", taken_over, 600, 1.0, deployment.log_tails
    )
    taken = polls()
    wait_for(
        "both triggers to poll Carol from the new triggerer",
        lambda: all(n > taken[t] for t, n in polls().items()),
        300,
        1.0,
    )

    sandbox.set_task_status(app_task, "COMPLETED")
    wait_for(
        "run_process to succeed",
        lambda: deployment.task_states(dag_id, run_id)["run_process"] == "success",
        300,
        1.0,
        deployment.log_tails,
    )
    assert deployment.task_states(dag_id, run_id)["wait_task"] == "deferred"
    assert sandbox.task(held)["mdmTaskStatus"] == "RUNNING"
    sandbox.set_task_status(held, "COMPLETED")

    run = deployment.wait_run(dag_id, run_id)
    assert run["state"] == "success", deployment.task_states(dag_id, run_id)
    for task_id in ("wait_task", "run_process"):
        tries = deployment.tries(dag_id, run_id, task_id)
        assert [(t["try_number"], t["state"]) for t in tries] == [(1, "success")], tries
    assert deployment.xcom(dag_id, run_id, "wait_task") == {"carol_task_id": held, "status": "COMPLETED"}
    assert deployment.xcom(dag_id, run_id, "run_process") == app_task
    held_task, app = sandbox.task(held), sandbox.task(app_task)
    assert (held_task["mdmTaskStatus"], held_task["reprocess_count"], held_task["cancel_count"]) == (
        "COMPLETED",
        0,
        0,
    )
    assert (app["mdmTaskStatus"], app["cancel_count"], app["reprocess_count"]) == ("COMPLETED", 0, 0)
    starts = sandbox.requests(method="POST", path="*/aiprocesses/*")
    assert len(starts) == 1, starts  # the process was started once: the restart re-ran nothing
    observations["triggerer_kill"] = {
        "first_triggerer_job": first,
        "second_triggerer_job": second,
        "polls_before_kill": at_kill,
        "polls_total": polls(),
        "app_task": app,
        "sensor_task_status": held_task["mdmTaskStatus"],
    }


def test_a_user_kill_of_a_deferred_task_cancels_only_what_it_started(
    deployment: Deployment, observations: dict[str, Any]
) -> None:
    dag_id = "deploy_kill_deferred"
    sandbox = deployment.sandbox
    sandbox.reset()
    watched = sandbox.create_task([{"status": "RUNNING", "after": 0}], name="watched")
    run_id = deployment.trigger(dag_id, {"carol_task_id": watched})

    def both_deferred_and_polling() -> bool:
        deployment.check_alive()
        states = deployment.task_states(dag_id, run_id)
        assert "failed" not in states.values(), states
        return set(states.values()) == {"deferred"} and len(deployment.triggerers_of(dag_id, run_id)) == 2

    wait_for("both tasks deferred", both_deferred_and_polling, 600, 1.0, deployment.log_tails)
    started = deployment.xcom(dag_id, run_id, "run_process", "carol_task_id")
    # A trigger row can be assigned before the triggerer runs it; a kill before that runs no code of
    # ours (Airflow deletes the row). Kill once each trigger has polled Carol: the operator itself does
    # not poll the process it started, the sensor polls once before deferring.
    polled = {started: 1, watched: 2}
    wait_for(
        "both triggers polling Carol",
        lambda: all(
            len(requests_to(deployment, f"/api/v1/tasks/{t}", "GET")) >= n for t, n in polled.items()
        ),
        300,
        1.0,
        deployment.log_tails,
    )
    for task_id in ("run_process", "watch_task"):  # what a user's "mark failed" in the UI sends
        deployment.api(
            "PATCH", f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}", json={"new_state": "failed"}
        )
    wait_for(
        "the app process's Carol task cancelled by its trigger's on_kill",
        lambda: sandbox.task(started)["cancel_count"] >= 1,
        300,
        1.0,
        deployment.log_tails,
    )
    wait_for(
        "both triggers gone",
        lambda: not deployment.triggerers_of(dag_id, run_id),
        300,
        1.0,
        deployment.log_tails,
    )
    cancelled, left = sandbox.task(started), sandbox.task(watched)
    assert (cancelled["mdmTaskStatus"], cancelled["cancel_count"]) == ("CANCELED", 1), cancelled
    assert (left["mdmTaskStatus"], left["cancel_count"]) == ("RUNNING", 0), left  # only watched: left alone
    observations["kill_deferred"] = {"cancelled": started, "left_running": watched}


def test_worker_killed_mid_send_is_retried_on_the_other_worker(
    deployment: Deployment, observations: dict[str, Any]
) -> None:
    dag_id, records, chunk = "deploy_worker_kill", 3000, 100
    intake = "/api/v2/staging/intake/killed_customers"
    sandbox = deployment.sandbox
    sandbox.reset()
    sandbox.add_fault(intake, method="POST", latency=0.5, times=1_000_000)  # ~0.5 s per chunk
    run_id = deployment.trigger(dag_id, {"records": records})

    def sending() -> str | None:
        deployment.check_alive()
        ti = deployment.task_instances(dag_id, run_id).get("send", {})
        assert ti.get("state") not in ("success", "failed"), ti
        if ti.get("state") == "running" and ti.get("hostname") and acknowledged(deployment, intake) >= 5:
            return ti["hostname"]
        return None

    victim = wait_for("the send to have 5 chunks acknowledged", sending, 600, 0.5, deployment.log_tails)
    assert victim in WORKERS
    # The running task's process is in a process group of its own (Airflow's supervisor puts it there):
    # it must die with the worker, as on a crashed host.
    leader = deployment.processes[victim].pid
    own_groups = [c.pid for c in deployment.processes[victim].descendants() if os.getpgid(c.pid) != leader]
    assert own_groups, "the send's task process was expected in a process group of its own"
    killed = deployment.kill(victim)
    assert set(own_groups) <= set(killed)
    acked_at_kill = acknowledged(deployment, intake)
    survivor = next(w for w in WORKERS if w != victim)

    run = deployment.wait_run(dag_id, run_id)
    assert run["state"] == "success", deployment.task_states(dag_id, run_id)
    tries = deployment.tries(dag_id, run_id, "send")
    assert (tries[0]["hostname"], tries[0]["state"]) == (victim, "failed"), tries
    assert (tries[-1]["hostname"], tries[-1]["state"]) == (survivor, "success"), tries
    assert len(tries) == 2, tries
    batch = assert_exactly_once(deployment, "killed_customers", records, chunk)
    assert acked_at_kill < records // chunk  # the kill did land half-way
    # The retry skipped the chunks the killed try had recorded as acknowledged (task state store):
    # fewer were sent again than had been acknowledged (without the store, all of them would be).
    assert batch["redeliveries"] < acked_at_kill, (batch["redeliveries"], acked_at_kill)
    observations["worker_kill"] = {
        "victim": victim,
        "pids_killed": killed,
        "task_processes_in_own_group": own_groups,
        "survivor": survivor,
        "chunks_acknowledged_at_kill": acked_at_kill,
        "tries": [(t["try_number"], t["hostname"], t["state"]) for t in tries],
        "stored": sandbox.staging_count("killed_customers"),
        "redeliveries": batch["redeliveries"],
        "summary": batch["summary"],
        "summaries_posted": batch["summaries_posted"],
        "intake_requests": len(requests_to(deployment, intake)),
    }
    restart_worker(deployment, victim)


def test_mapped_sends_on_both_workers_form_one_batch(
    deployment: Deployment, observations: dict[str, Any]
) -> None:
    dag_id, files, rows = "carol_mapped_ingest", 6, 300
    sandbox = deployment.sandbox
    sandbox.reset()
    # Hold every chunk until two sends are running at once: each worker has one slot, so while the first
    # send is held, the next mapped instance can only start on the other worker. Then let them all go.
    sandbox.add_fault("/api/v2/staging/intake/invoices", method="POST", hold=True, times=1_000_000)
    run_id = deployment.trigger(dag_id, {"files": files, "rows_per_file": rows})

    def sending_on_both_workers() -> dict[str, str] | None:
        deployment.check_alive()
        tis = deployment.task_instances(dag_id, run_id)
        running = {
            k: ti["hostname"] for k, ti in tis.items() if k.startswith("send[") and ti["state"] == "running"
        }
        return running if set(running.values()) == set(WORKERS) and sandbox.held() >= 2 else None

    def what_the_workers_do() -> str:
        answers = {what: deployment.celery_inspect(what) for what in ("active", "reserved", "active_queues")}
        return json.dumps(answers, indent=1, default=str) + "\n" + deployment.log_tails()

    both = wait_for(
        "two mapped sends held, one on each worker", sending_on_both_workers, 600, 0.5, what_the_workers_do
    )
    assert sandbox.release_held() >= 2
    run = deployment.wait_run(dag_id, run_id)
    tis = deployment.task_instances(dag_id, run_id)
    assert run["state"] == "success", {key: ti["state"] for key, ti in tis.items()}
    sends = {key: ti["hostname"] for key, ti in tis.items() if key.startswith("send[")}
    assert set(sends) == {f"send[{i}]" for i in range(files)}
    assert set(sends.values()) == set(WORKERS), sends  # both workers ran mapped instances
    from_logs = {
        w: sorted(p for p in workloads_in_log(deployment, w, dag_id, run_id) if "task_id=send/" in p)
        for w in WORKERS
    }
    assert all(from_logs.values()), from_logs  # ... and each worker's own log says so
    assert sorted(p for paths in from_logs.values() for p in paths) == sorted(
        f"task_id=send/map_index={i}/attempt=1" for i in range(files)
    )
    batch = assert_exactly_once(deployment, "invoices", files * rows, 150)
    assert batch["redeliveries"] == 0
    ended = deployment.xcom(dag_id, run_id, "end_batch")
    assert ended == {
        "batch_id": batch["batchId"],
        "records": files * rows,
        "requests": files * 2,
        "summary_sent": True,
    }
    observations["mapped_spread"] = {
        "held_at_once": both,
        "sends": sends,
        "from_worker_logs": from_logs,
        "summary": batch["summary"],
        "summaries_posted": batch["summaries_posted"],
    }


def test_carol_unavailable_for_a_while_recovers_within_airflow_retries(
    deployment: Deployment, observations: dict[str, Any]
) -> None:
    dag_id, records, chunk = "deploy_carol_unavailable", 1000, 100
    intake = "/api/v2/staging/intake/suppliers"
    sandbox = deployment.sandbox
    sandbox.reset()
    # 8 answers of 503: more than one request's 1 + 5 hook retries, so the first try fails; the
    # Airflow retry meets the last 2 and its hook retries get through.
    sandbox.add_fault(intake, method="POST", status=503, times=8)
    run_id = deployment.trigger(dag_id)
    run = deployment.wait_run(dag_id, run_id)
    assert run["state"] == "success", deployment.task_states(dag_id, run_id)
    tries = deployment.tries(dag_id, run_id, "send")
    assert [(t["try_number"], t["state"]) for t in tries] == [(1, "failed"), (2, "success")], tries
    served = Counter(e["status"] for e in requests_to(deployment, intake))
    assert served[503] == 8 and served[200] == records // chunk, served
    batch = assert_exactly_once(deployment, "suppliers", records, chunk)
    observations["carol_503"] = {
        "tries": [(t["try_number"], t["hostname"], t["state"]) for t in tries],
        "intake_answers": dict(served),
        "stored": sandbox.staging_count("suppliers"),
        "summary": batch["summary"],
        "summaries_posted": batch["summaries_posted"],
    }
