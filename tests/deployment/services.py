"""The one description of the Airflow deployment: which services run, with which command and environment.

Two things start this deployment and must not drift apart:

* ``tests/deployment/harness.py`` starts every service as a process on this machine's loopback
  interface (free ports, a temp dir), for the deployment tests;
* ``docker-compose.yaml`` starts the same services as containers (``--profile celery`` with
  ``AIRFLOW_EXECUTOR=CeleryExecutor`` for the CeleryExecutor; LocalExecutor by default).

Both take their service list, Airflow commands and settings from here: the harness builds its
environment with :func:`airflow_environment`, and ``tests/test_docker_compose.py`` checks the compose
file against :data:`SERVICES`, :data:`SHARED_ENV` and the documented differences below. A setting that
only one side has must be listed in :data:`HARNESS_ONLY_ENV` or :data:`COMPOSE_ONLY_ENV` with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
CAROL_LOGGING_CONFIG = "airflow_provider_carol.log.config.LOGGING_CONFIG"
CELERY_APP = "airflow.providers.celery.executors.celery_executor.app"
ADMIN_USER = "admin"


@dataclass(frozen=True)
class Service:
    """One service of the deployment (a compose service; one or more processes in the harness).

    :param name: the compose service name; the harness names its processes after it.
    :param airflow_command: arguments of the ``airflow`` CLI (compose ``command``); empty for non-Airflow
        services.
    :param replicas: how many instances run (compose ``deploy.replicas``; the harness starts as many
        processes, each with its own Celery hostname).
    :param profile: the compose profile that enables the service (None: always on).
    :param harness_args: extra CLI arguments only the harness passes, and why (loopback, one host).
    """

    name: str
    airflow_command: tuple[str, ...] = ()
    replicas: int = 1
    profile: str | None = None
    harness_args: tuple[str, ...] = ()
    harness_args_reason: str = ""
    depends_on: tuple[str, ...] = field(default=())


# serve-logs binds every interface on a fixed port (8793/8794) and cannot be pointed at loopback; all the
# harness's processes share one log folder (compose: the airflow-logs volume), so nothing needs it.
_SKIP_SERVE_LOGS = "serve-logs binds all interfaces on a fixed port; the processes share one log dir"

SERVICES: tuple[Service, ...] = (
    Service("postgres"),
    Service("redis", profile="celery"),
    Service("carol-sandbox"),
    Service("airflow-init", ("db", "migrate"), depends_on=("postgres",)),
    Service("airflow-apiserver", ("api-server",), depends_on=("postgres", "airflow-init", "carol-sandbox")),
    Service(
        "airflow-scheduler",
        ("scheduler",),
        harness_args=("--skip-serve-logs",),
        harness_args_reason=_SKIP_SERVE_LOGS,
        # redis only with the celery profile (compose: ``required: false``)
        depends_on=("postgres", "airflow-init", "carol-sandbox", "airflow-apiserver", "redis"),
    ),
    Service(
        "airflow-dag-processor", ("dag-processor",), depends_on=("postgres", "airflow-init", "carol-sandbox")
    ),
    Service(
        "airflow-triggerer",
        ("triggerer",),
        harness_args=("--skip-serve-logs",),
        harness_args_reason=_SKIP_SERVE_LOGS,
        depends_on=("postgres", "airflow-init", "carol-sandbox", "airflow-apiserver"),
    ),
    Service(
        "airflow-worker",
        ("celery", "worker"),
        replicas=2,
        profile="celery",
        harness_args=("--skip-serve-logs",),
        harness_args_reason=_SKIP_SERVE_LOGS + "; -H gives each process its own Celery hostname",
        depends_on=("postgres", "redis", "airflow-init", "carol-sandbox", "airflow-apiserver"),
    ),
)
SERVICES_BY_NAME: dict[str, Service] = {service.name: service for service in SERVICES}
#: The Airflow services that run for good (airflow-init only migrates and exits).
LONG_RUNNING_AIRFLOW = tuple(s.name for s in SERVICES if s.airflow_command and s.name != "airflow-init")

#: The sandbox's arguments in compose, and in the harness (which adds ``--state-dir <temp dir>``).
SANDBOX_COMPOSE_ARGS: tuple[str, ...] = ("--host", "0.0.0.0", "--port", "8765")
SANDBOX_HARNESS_ARGS: tuple[str, ...] = ("--port", "0", "--bigquery")
#: Why they differ: the harness binds loopback (the default host) on a free port; the image has no
#: BigQuery emulator (Python 3.13 venv, README "Known limits"), so only the harness passes --bigquery.
SANDBOX_HARNESS_ONLY_OPTIONS = frozenset({"--bigquery", "--state-dir"})

#: Settings with the same value in the harness and in docker-compose.yaml (with the celery profile).
SHARED_ENV: dict[str, str] = {
    "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
    # Two workers with one slot each: small for a 2-core machine, and a second queued task must go to
    # the other worker (Airflow's Celery defaults: prefetch multiplier 1, acks late).
    "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
    "AIRFLOW__CORE__PARALLELISM": "4",
    "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "true",
    "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
    # The Test button of the connection form (Airflow disables it by default).
    "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
    # A task whose worker died (no heartbeat) is failed, and so retried, after one minute, not five.
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
    # Task logs also go into the Carol long task a task names (docs/logging.md; carol_app_process).
    "AIRFLOW__LOGGING__REMOTE_LOGGING": "True",
    "AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER": "carol://carol_default",
    "AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS": CAROL_LOGGING_CONFIG,
}

#: Settings both sides have, with values that depend on where the services run (hosts, ports, secrets).
ENDPOINT_ENV_KEYS: tuple[str, ...] = (
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__CELERY__RESULT_BACKEND",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "AIRFLOW__API__BASE_URL",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__CORE__DAGS_FOLDER",
    "AIRFLOW_CONN_CAROL_DEFAULT",
    "AIRFLOW_CONN_CAROL_ERP_SQLITE",
)

#: Settings only the harness sets, and why (every process shares one host, its loopback and one /tmp).
HARNESS_ONLY_ENV: dict[str, str] = {
    "AIRFLOW_HOME": "a private home per deployment (the image's is /opt/airflow)",
    "AIRFLOW__API__HOST": "bind 127.0.0.1 only (a container binds 0.0.0.0 inside its network)",
    "AIRFLOW__API__PORT": "a free port (compose publishes 8080 on the host's loopback)",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": "a password the tests know (compose: in the log)",
    "AIRFLOW__CORE__HOSTNAME_CALLABLE": "one host for every worker: TIs record each worker's own name",
    "CAROL_DEPLOYMENT_HOSTNAME": "the name the hostname callable returns (per process)",
    "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": "a second bundle: tests/deployment/dags",
    "TMPDIR": "one temp dir for a run's tasks on both workers (compose: the airflow-tmp volume on /tmp)",
    "PYTHONPATH": "makes tests.deployment.hostname importable for the hostname callable",
}

#: Settings only docker-compose.yaml sets, and why.
COMPOSE_ONLY_ENV: dict[str, str] = {
    "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "the scheduler container's healthcheck curls :8974/health "
    "(the harness reads /api/v2/monitor/health; :8974 binds all interfaces)",
}


@dataclass(frozen=True)
class Endpoints:
    """Where the services of one deployment are reached, and its secrets.

    :param database_url: the metadata DB (SQLAlchemy URL, PostgreSQL with psycopg2).
    :param broker_url: the Celery broker (Redis).
    :param result_backend: the Celery result backend (``db+`` + the PostgreSQL URL).
    :param api_base_url: the api-server's external URL (``/execution/`` is appended for the workers).
    :param dags_folder: the ``dags-folder`` bundle (the example DAGs).
    :param carol_default: ``AIRFLOW_CONN_CAROL_DEFAULT`` (JSON).
    :param erp_sqlite: ``AIRFLOW_CONN_CAROL_ERP_SQLITE`` (JSON), the example ERP database.
    """

    database_url: str
    broker_url: str
    result_backend: str
    api_base_url: str
    dags_folder: str
    carol_default: str
    erp_sqlite: str
    jwt_secret: str
    api_secret_key: str
    fernet_key: str


def airflow_environment(endpoints: Endpoints, execution_api_url: str | None = None) -> dict[str, str]:
    """Every shared and endpoint setting of the Airflow services (harness-only ones are added by the harness).

    ``execution_api_url`` defaults to the api-server's base URL + ``/execution/``; compose reaches the
    api-server by its service name instead of the published URL.
    """
    return {
        **SHARED_ENV,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": endpoints.database_url,
        "AIRFLOW__CELERY__BROKER_URL": endpoints.broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": endpoints.result_backend,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": execution_api_url
        or f"{endpoints.api_base_url}/execution/",
        "AIRFLOW__API__BASE_URL": endpoints.api_base_url,
        "AIRFLOW__API_AUTH__JWT_SECRET": endpoints.jwt_secret,
        "AIRFLOW__API__SECRET_KEY": endpoints.api_secret_key,
        "AIRFLOW__CORE__FERNET_KEY": endpoints.fernet_key,
        "AIRFLOW__CORE__DAGS_FOLDER": endpoints.dags_folder,
        "AIRFLOW_CONN_CAROL_DEFAULT": endpoints.carol_default,
        "AIRFLOW_CONN_CAROL_ERP_SQLITE": endpoints.erp_sqlite,
    }


def harness_command(service: Service) -> list[str]:
    """The ``airflow`` arguments the harness runs for ``service`` (compose's command + harness args)."""
    return [*service.airflow_command, *service.harness_args]
