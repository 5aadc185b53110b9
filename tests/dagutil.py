"""Load a DAG file from tests/dags (the configured dags folder) and run it with ``dag.test()``."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

DAGS = Path(__file__).resolve().parent / "dags"


def load_dag(name: str, dag_id: str | None = None) -> Any:
    """Import ``tests/dags/<name>.py`` and return its DAG (``dag`` or the one with ``dag_id``)."""
    spec = importlib.util.spec_from_file_location(f"carol_test_dag_{name}", DAGS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if dag_id is None:
        return module.dag
    return next(v for v in vars(module).values() if getattr(v, "dag_id", None) == dag_id)


def run_dag(dag: Any, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
    """``dag.test()`` and the task instances by task id (mapped ones keyed ``task_id[i]``)."""
    dag_run = dag.test(**kwargs)
    tis = {}
    for ti in dag_run.get_task_instances():
        key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
        tis[key] = ti
    return dag_run, tis
