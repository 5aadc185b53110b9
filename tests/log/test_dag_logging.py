"""Real task runs whose lines (``self.log`` and a stdlib logger) land in a Carol long task.

``dag.test()`` runs tasks in-process: there is no supervisor log file and no upload, so the processor
ships from the task's own write path. ``supervise_task`` runs a real task subprocess under a real
supervisor, the production path: the supervisor's file writer ships and ``upload()`` flushes.
"""

from __future__ import annotations

import logging
from uuid import UUID

import pytest

from airflow_provider_carol import compat
from airflow_provider_carol.log import CarolRemoteLogIO
from tests.dagutil import carol_lines, load_dag, run_dag

pytestmark = [
    pytest.mark.dag,
    pytest.mark.skipif(not compat.AIRFLOW_V_3_0_PLUS, reason="RemoteLogIO is Airflow 3.0+"),
]

WORK_LINES = [
    ("INFO", "work self.log line 0"),
    ("WARN", "work stdlib line 0"),
    ("INFO", "work self.log line 1"),
    ("WARN", "work stdlib line 1"),
    ("INFO", "work self.log line 2"),
    ("WARN", "work stdlib line 2"),
    ("ERROR", "work finished"),
]


def test_dag_test_task_lines_reach_the_carol_task_named_by_an_upstream(
    airflow_db, carol_sandbox, carol_remote_logging, caplog
):
    assert isinstance(carol_remote_logging, CarolRemoteLogIO)
    carol_task = carol_sandbox.create_task([{"status": "RUNNING", "after": 0}])
    compat._reported.clear()

    dag_run, _ = run_dag(load_dag("dag_log_bridge"), run_conf={"carol_task_id": carol_task})
    assert carol_remote_logging.flush(10)

    assert dag_run.state == "success"
    lines = carol_lines(carol_sandbox, carol_task)
    degraded = [r.getMessage() for r in caplog.records if r.name == "airflow_provider_carol.compat"]
    if compat.AIRFLOW_V_3_1_PLUS:
        assert [line for line in lines if line[1].startswith("work ")] == WORK_LINES
        assert ("INFO", f"Task log lines go to Carol long task {carol_task}") in lines
        assert not any("Execution API" in m or "Task instance state updated" in m for _, m in lines)
        assert degraded == []
    else:  # 3.0's in-process logging hides the announcement from the processor: documented, said once
        assert lines == []
        assert len(degraded) == 1 and "set LONGTASKID instead" in degraded[0], degraded


def test_dag_test_task_lines_reach_longtaskid_when_nothing_is_announced(
    airflow_db, carol_sandbox, carol_remote_logging, monkeypatch
):
    """In-process runs ship to ``LONGTASKID`` on every 3.x line (on 3.0 it is the only way)."""
    carol_task = carol_sandbox.create_task([{"status": "RUNNING", "after": 0}])
    monkeypatch.setenv("LONGTASKID", carol_task)

    dag_run, _ = run_dag(load_dag("dag_log_bridge", dag_id="test_log_bridge_env"))
    assert carol_remote_logging.flush(10)

    assert dag_run.state == "success"
    lines = carol_lines(carol_sandbox, carol_task)
    assert [line for line in lines if line[1].startswith("work ")] == WORK_LINES


def test_a_carol_outage_during_logging_does_not_fail_the_task(
    airflow_db, carol_sandbox, carol_remote_logging, monkeypatch
):
    carol_task = carol_sandbox.create_task([{"status": "RUNNING", "after": 0}])
    carol_sandbox.add_fault("/api/v1/tasks/*/logs", method="POST", status=503, times=100)
    reports: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            reports.append(record.getMessage())

    if not compat.AIRFLOW_V_3_1_PLUS:  # in-process runs route by LONGTASKID only before 3.1
        monkeypatch.setenv("LONGTASKID", carol_task)
    bridge = logging.getLogger("airflow_provider_carol.log")
    collector = Collect(logging.WARNING)
    bridge.addHandler(collector)
    try:
        dag_run, _ = run_dag(load_dag("dag_log_bridge"), run_conf={"carol_task_id": carol_task})
        carol_remote_logging.flush(10)
    finally:
        bridge.removeHandler(collector)

    assert dag_run.state == "success"
    assert carol_lines(carol_sandbox, carol_task) == []
    assert len([r for r in reports if "shipping failed" in r]) == 1
    assert carol_remote_logging.stats()["failed"] >= len(WORK_LINES)


def test_supervised_task_subprocess_ships_from_the_supervisor(
    airflow_db, carol_sandbox, carol_remote_logging
):
    from airflow.sdk.api.datamodels._generated import BundleInfo, TaskInstance
    from airflow.sdk.execution_time import supervisor
    from airflow.sdk.execution_time.supervisor import InProcessTestSupervisor

    supervise_task = getattr(supervisor, "supervise_task", None) or supervisor.supervise  # renamed in 3.3
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    carol_task = carol_sandbox.create_task([{"status": "RUNNING", "after": 0}])
    dag = load_dag("dag_log_bridge")
    _, tis = run_dag(dag, run_conf={"carol_task_id": carol_task})  # creates the run and start's XCom
    carol_remote_logging.flush(10)
    before = len(carol_sandbox.task(carol_task)["logs"])
    with create_session() as session:  # queue a second try of "work", as the scheduler would
        ti = session.merge(tis["work"])
        ti.state = TaskInstanceState.QUEUED
        ti.try_number += 1
        session.commit()
        versioned = {"dag_version_id": UUID(str(ti.dag_version_id))} if compat.AIRFLOW_V_3_1_PLUS else {}
        workload = TaskInstance(id=UUID(str(ti.id)), task_id=ti.task_id, dag_id=ti.dag_id, run_id=ti.run_id,
                                try_number=ti.try_number, map_index=ti.map_index, **versioned)
    log_path = f"dag_id={ti.dag_id}/run_id={ti.run_id}/task_id={ti.task_id}/attempt={ti.try_number}.log"

    exit_code = supervise_task(ti=workload, bundle_info=BundleInfo(name="dags-folder", version=None),
                               dag_rel_path="dag_log_bridge.py", token="", log_path=log_path,
                               client=InProcessTestSupervisor._api_client(dag))

    assert exit_code == 0
    # upload() returned only after the lines were in Carol: no flush needed here.
    lines = carol_lines(carol_sandbox, carol_task)[before:]
    assert [line for line in lines if line[1].startswith("work ")] == WORK_LINES
    # Lines logged before the announcement were held until it, then sent.
    announced = next(i for i, (_, m) in enumerate(lines) if m.startswith("Task log lines go to Carol"))
    assert announced > 0
    if compat.AIRFLOW_V_3_2_PLUS:
        assert lines[0] == ("INFO", "::group::Pre Execute")
    else:  # 3.1's task runner has no "Pre Execute" group and logs its DAG loading at INFO first
        assert lines[0] == ("INFO", "DAG bundles loaded: dags-folder")
