"""The release as a user installs it: the built sdist and wheel pass the upload checks, and the wheel,
installed into a clean venv that already holds this line's Airflow, keeps that Airflow, imports every
public module and shows up in ``airflow providers list``.

Every job runs this (``make test`` on 3.3.2, each ``make test-compat`` job on its own line), so each
supported Airflow line gets the wheel installed once. The build happens once per session; the clean
venv is made with uv from its cache, Airflow pinned by the job's own constraints file.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import airflow
import pytest

from airflow_provider_carol import __version__, compat

REPO = Path(__file__).resolve().parent.parent
#: Modules that need an extra: the sandbox (fastapi, uvicorn; part of Airflow 3, not of 2.11) and the
#: OpenLineage facets (imported by the operators only when the openlineage provider is there).
NEEDS_AN_EXTRA = ("airflow_provider_carol.sandbox", "airflow_provider_carol.lineage")
AIRFLOW_DISTS = ("apache-airflow", "apache-airflow-core", "apache-airflow-task-sdk")


def load_check_dist() -> Any:
    spec = importlib.util.spec_from_file_location("check_dist", REPO / "scripts" / "check_dist.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def uv() -> str:
    found = shutil.which("uv") or str(REPO / ".venv" / "bin" / "uv")
    assert Path(found).exists(), "uv is missing: run make bootstrap"
    return found


def line_constraints() -> Path:
    """The constraints file this job's venv was installed with (the line's Airflow and its pins)."""
    if compat.AIRFLOW_V_3_3_PLUS:
        return REPO / "constraints.txt"
    return REPO / f"constraints-airflow-{compat.AIRFLOW_VERSION.major}.{compat.AIRFLOW_VERSION.minor}.txt"


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``make dist``'s build, once per session: ``{"wheel": ..., "sdist": ...}``."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([uv(), "build", "--sdist", "--wheel", "--out-dir", str(out), str(REPO)], check=True,
                   capture_output=True, timeout=600)
    return {"wheel": next(out.glob("*.whl")), "sdist": next(out.glob("*.tar.gz"))}


def test_sdist_and_wheel_pass_the_upload_checks(built):
    check_dist = load_check_dist()
    assert check_dist.check(built["wheel"]) == []
    assert check_dist.check(built["sdist"]) == []


def test_the_wheel_installs_beside_this_airflow_without_changing_it(built, tmp_path):
    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "AIRFLOW_HOME": str(tmp_path / "home")}
    for name in ("VIRTUAL_ENV", "PYTHONPATH", "AIRFLOW__CORE__DAGS_FOLDER", "AIRFLOW__CORE__UNIT_TEST_MODE",
                 "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CORE__EXECUTOR"):
        env.pop(name, None)

    def run(*args: str, timeout: float = 600) -> str:
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, cwd=tmp_path)
        assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout}\n{done.stderr}"
        return done.stdout

    run(uv(), "venv", "-q", "--python", sys.executable, str(venv))
    # The user's Airflow, as this job has it; then the wheel alone, with nothing pinned.
    run(uv(), "pip", "install", "-q", "--python", str(python), f"apache-airflow=={airflow.__version__}",
        "-c", str(line_constraints()))
    before = airflow_versions(run, python)
    assert before["apache-airflow"] == airflow.__version__
    run(uv(), "pip", "install", "-q", "--python", str(python), str(built["wheel"]))
    assert airflow_versions(run, python) == before

    imported = json.loads(run(str(python), "-c", IMPORT_EVERYTHING, *NEEDS_AN_EXTRA))
    assert imported["failed"] == {}
    # Not nothing: 87 modules and 24 classes at 0.1.0 (a floor, so that moving a private helper or a
    # Protocol out of a listed module does not fail the release check).
    assert len(imported["modules"]) > 50 and imported["classes"] >= 20

    out = run(str(venv / "bin" / "airflow"), "providers", "list", "-o", "json")
    # The JSON is one line; 3.0 logs its (alembic) plugin setup on stdout before it.
    listed = json.loads(next(line for line in out.splitlines() if line.startswith('[{"')))
    ours = [p for p in listed if p["package_name"] == "airflow-provider-carol"]
    assert [p["version"] for p in ours] == [__version__]


def airflow_versions(run: Any, python: Path) -> dict[str, str]:
    """The installed Airflow distributions and their versions."""
    frozen = run(uv(), "pip", "freeze", "-q", "--python", str(python))
    pins = dict(line.split("==", 1) for line in frozen.splitlines() if "==" in line)
    return {name: pins[name] for name in AIRFLOW_DISTS if name in pins}


#: Run in the clean venv: import every module of the installed package (but those needing an extra,
#: given as arguments) and every class the provider info names; print what failed as JSON.
IMPORT_EVERYTHING = """
import importlib, json, pkgutil, sys
import airflow_provider_carol
from airflow_provider_carol.get_provider_info import get_provider_info

skip = tuple(sys.argv[1:])
modules, failed = [], {}
for found in pkgutil.walk_packages(airflow_provider_carol.__path__, "airflow_provider_carol."):
    if found.name.startswith(skip) or found.name.endswith("__main__"):
        continue
    try:
        importlib.import_module(found.name)
        modules.append(found.name)
    except Exception as exc:
        failed[found.name] = repr(exc)
info = get_provider_info()
paths = [c["hook-class-name"] for c in info["connection-types"]] + info["extra-links"] + info["logging"]
paths += [r["classpath"] for r in info["remote-logging"]]
for group in ("operators", "sensors", "triggers", "hooks"):  # and every public class they define
    for entry in info[group]:
        for name in entry["python-modules"]:
            module = importlib.import_module(name)
            paths += [f"{name}.{attr}" for attr, value in vars(module).items()
                      if isinstance(value, type) and value.__module__ == name and not attr.startswith("_")]
classes = 0
for path in paths:
    module, _, attr = path.rpartition(".")
    try:
        getattr(importlib.import_module(module), attr)
        classes += 1
    except Exception as exc:
        failed[path] = repr(exc)
print(json.dumps({"modules": modules, "classes": classes, "failed": failed}))
"""
