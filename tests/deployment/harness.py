"""Start and stop a real Airflow 3.3 deployment on loopback, from the project's own install.

What runs, each as its own process group with its log in the deployment's temp dir:

* a private PostgreSQL cluster (``initdb`` + ``postgres`` as an unprivileged system user: PostgreSQL
  refuses to run as root) - the metadata DB and the Celery result backend;
* a private ``redis-server`` (no persistence) - the Celery broker;
* the Carol sandbox with its BigQuery emulator (``carol-sandbox --port 0 --bigquery``);
* ``airflow db migrate``, then ``api-server``, ``scheduler``, ``dag-processor``, ``triggerer`` and two
  ``celery worker`` processes (CeleryExecutor), exactly the services of :mod:`tests.deployment.services`.

Connections reach the Airflow processes as ``AIRFLOW_CONN_*`` variables of their environment, as a
deployment sets them; nothing comes from the test process's environment (it is dropped). Readiness is
``/api/v2/monitor/health`` plus each worker's "ready" line and a Celery ping. :meth:`Deployment.stop`
terminates every process group, checks none survived and that every port is free again.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import requests

from airflow_provider_carol.sandbox.control import Sandbox
from tests.dagutil import free_port
from tests.deployment import services
from tests.deployment.services import ADMIN_USER, SERVICES_BY_NAME, Endpoints

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
EXAMPLE_DAGS = REPO / "example_dags"
TEST_DAGS = Path(__file__).resolve().parent / "dags"
#: The unprivileged system user the PostgreSQL cluster runs as (created if missing).
PG_USER = "carol-pg"
PG_DATABASE = "airflow"
LOCAL_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"
PG_ROLE = "airflow"
WORKERS = tuple(f"worker-{n}" for n in range(1, SERVICES_BY_NAME["airflow-worker"].replicas + 1))
# Airflow's own variables in the test process (tests/conftest.py's SQLite home) never reach the deployment.
_DROPPED_PREFIXES = ("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_", "CAROL_", "_AIRFLOW")
_DROPPED = {"AIRFLOW_HOME", "PYTHONDONTWRITEBYTECODE", "PYTHONPATH", "TMPDIR", "REQUESTS_CA_BUNDLE"}


class DeploymentError(RuntimeError):
    """The deployment could not start, a process died, or a wait ran out; the message has the logs."""


def port_open(port: int) -> bool:
    """True when something accepts connections on 127.0.0.1:``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_for(
    what: str,
    check: Callable[[], Any],
    timeout: float,
    interval: float = 1.0,
    on_timeout: Callable[[], str] | None = None,
) -> Any:
    """Poll ``check`` until it returns something truthy; raise :class:`DeploymentError` after ``timeout``.

    The deadline is generous by design: the machine is shared, so nothing here measures speed.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    details = on_timeout() if on_timeout else ""
    raise DeploymentError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})\n{details}")


def _running(process: psutil.Process | int) -> bool:
    """True for a live process (a zombie waiting to be reaped is dead)."""
    try:
        proc = process if isinstance(process, psutil.Process) else psutil.Process(process)
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@dataclass
class Process:
    """One started process (the leader of its own process group) and the file its output goes to."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    ports: tuple[int, ...] = ()
    #: Descendants still running after their group was stopped (killed then; teardown reports them).
    strays: list[psutil.Process] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def group_alive(self) -> bool:
        """True while any process of its group exists (the leader may be gone, children not)."""
        try:
            os.killpg(self.popen.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # a member runs as another user: still alive
            return True
        return True

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def kill_group(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the process group the process leads (itself and what it forked)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def descendants(self) -> list[psutil.Process]:
        """Every live descendant, also those in process groups of their own.

        Airflow's task supervisor starts each task process in a new process group
        (``supervisor.py``: ``new_process_group=True``), so a signal to the worker's group misses it.
        """
        try:
            return psutil.Process(self.popen.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def kill_tree(self) -> list[int]:
        """SIGKILL the group and every descendant's group (a crashed worker host); the pids killed."""
        tree = self.descendants()
        self.kill_group(signal.SIGKILL)
        for child in tree:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(os.getpgid(child.pid), signal.SIGKILL)
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        psutil.wait_procs(tree, timeout=60)
        return [self.popen.pid, *(child.pid for child in tree)]

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the group, wait for it to empty, SIGKILL what is left (also descendants that left the
        group, such as task processes); reap the leader."""
        tree = self.descendants()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            self.kill_group(sig)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                self.popen.poll()
                if not self.group_alive():
                    break
                time.sleep(0.2)
            if not self.group_alive():
                break
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=timeout)
        self.strays = [child for child in tree if _running(child)]
        for child in self.strays:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        psutil.wait_procs(self.strays, timeout=timeout)


@dataclass
class Deployment:
    """A running deployment: its processes, where to reach them, and REST/DB helpers for the tests."""

    root: Path
    env: dict[str, str]
    api_url: str
    password: str
    sandbox: Sandbox
    database_url: str
    processes: dict[str, Process] = field(default_factory=dict)
    #: Processes the tests killed on purpose (kept so teardown checks their groups are gone too).
    killed: list[Process] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    _token: str | None = None
    _session: requests.Session = field(default_factory=requests.Session)
    _pg: PostgresCluster | None = None

    # -- processes -------------------------------------------------------------------------------------
    def start_airflow(self, name: str, *args: str, hostname: str | None = None) -> Process:
        """Start ``airflow <args>`` as process ``name`` (its own group, output to ``<name>.log``)."""
        env = dict(self.env)
        env["CAROL_DEPLOYMENT_HOSTNAME"] = hostname or name
        log_path = self.log_path(name)
        with log_path.open("ab") as out:
            popen = subprocess.Popen(
                [str(VENV_BIN / "airflow"), *args],
                env=env,
                cwd=self.root,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        process = Process(name, popen, log_path)
        self.processes[name] = process
        return process

    def start_service(self, name: str) -> Process:
        """(Re)start one long-running Airflow process: a service name, or ``worker-N`` for a worker."""
        if name in WORKERS:
            service = SERVICES_BY_NAME["airflow-worker"]
            args = [*services.harness_command(service), "--celery-hostname", f"{name}@carol-deployment"]
            return self.start_airflow(name, *args, hostname=name)
        service = SERVICES_BY_NAME[name]
        return self.start_airflow(name, *services.harness_command(service))

    def log_path(self, name: str) -> Path:
        """Where process ``name`` writes (a restarted process appends to the same file)."""
        return self.root / "logs" / f"{name}.log"

    def kill(self, name: str) -> list[int]:
        """SIGKILL process ``name``, its process group and every descendant (what a crashed host looks
        like: the running task's process dies with its worker); the pids killed."""
        process = self.processes.pop(name)
        self.killed.append(process)
        killed = process.kill_tree()
        process.popen.wait(timeout=60)
        wait_for(f"{name}'s process group to be gone", lambda: not process.group_alive(), 60, 0.2)
        alive = [pid for pid in killed if _running(pid)]
        if alive:
            raise DeploymentError(f"{name}: processes {alive} survived SIGKILL")
        return killed

    def check_alive(self) -> None:
        """Raise with the log tails if any process died by itself."""
        dead = [p for p in self.processes.values() if not p.alive()]
        if dead:
            raise DeploymentError(
                "process(es) exited: "
                + ", ".join(f"{p.name} (rc {p.popen.returncode})" for p in dead)
                + "\n"
                + self.log_tails()
            )

    def log_tails(self, lines: int = 40) -> str:
        """The last lines of every process log (printed when a deployment test fails)."""
        parts = []
        for path in sorted((self.root / "logs").glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"----- {path} (last {len(text)} lines) -----\n" + "\n".join(text))
        return "\n".join(parts)

    def worker_ready(self, name: str, since: int = 0) -> bool:
        """True once worker ``name`` logged Celery's "ready." line (after byte offset ``since``)."""
        path = self.log_path(name)
        return path.exists() and f"{name}@carol-deployment ready." in path.read_text(errors="replace")[since:]

    def celery_ping(self, names: tuple[str, ...] = WORKERS) -> dict[str, Any]:
        """``celery inspect ping`` every worker in ``names``; the replies by node name."""
        return self.celery_inspect("ping", names)

    def celery_inspect(self, what: str, names: tuple[str, ...] = WORKERS) -> dict[str, Any]:
        """``celery inspect <what>`` (ping, active, reserved, active_queues) for the workers in ``names``;
        the replies by node name, ``{}`` when none answered."""
        command = [
            str(VENV_BIN / "celery"),
            "--app",
            services.CELERY_APP,
            "inspect",
            what,
            "--json",
            "--timeout",
            "10",
            "--destination",
            ",".join(f"{n}@carol-deployment" for n in names),
        ]
        result = subprocess.run(
            command, env=self.env, cwd=self.root, capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            return {}
        return json.loads(result.stdout.strip().splitlines()[-1])

    # -- REST API --------------------------------------------------------------------------------------
    def token(self) -> str:
        if self._token is None:
            answer = self._session.post(
                f"{self.api_url}/auth/token",
                json={"username": ADMIN_USER, "password": self.password},
                timeout=60,
            )
            answer.raise_for_status()
            self._token = answer.json()["access_token"]
        return self._token

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call ``/api/v2/<path>`` with the admin's token; the decoded JSON answer."""
        headers = {"Authorization": f"Bearer {self.token()}", **kwargs.pop("headers", {})}
        answer = self._session.request(
            method, f"{self.api_url}/api/v2/{path}", headers=headers, timeout=60, **kwargs
        )
        if not answer.ok:
            raise DeploymentError(f"{method} /api/v2/{path}: HTTP {answer.status_code} {answer.text[:500]}")
        return answer.json() if answer.content else None

    def health(self) -> dict[str, Any]:
        try:
            answer = self._session.get(f"{self.api_url}/api/v2/monitor/health", timeout=10)
            return answer.json() if answer.ok else {}
        except (requests.RequestException, ValueError):
            return {}

    def healthy(self, *components: str) -> bool:
        health = self.health()
        return all(health.get(c, {}).get("status") == "healthy" for c in components)

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """Unpause ``dag_id`` and start a run through the REST API; its run id."""
        self.api("PATCH", f"dags/{dag_id}", json={"is_paused": False})
        run = self.api("POST", f"dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}})
        return run["dag_run_id"]

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.api("GET", f"dags/{dag_id}/dagRuns/{run_id}")

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 900.0) -> dict[str, Any]:
        """Wait for the run to finish (success or failed), checking the deployment stays up."""

        def finished() -> dict[str, Any] | None:
            self.check_alive()
            run = self.dag_run(dag_id, run_id)
            return run if run["state"] in ("success", "failed") else None

        return wait_for(
            f"run {dag_id}/{run_id} to finish",
            finished,
            timeout,
            2.0,
            lambda: json.dumps(self.task_states(dag_id, run_id)),
        )

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        """The run's task instances keyed ``task_id`` (mapped ones ``task_id[i]``)."""
        found = self.api("GET", f"dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000})
        return {
            ti["task_id"] if ti["map_index"] < 0 else f"{ti['task_id']}[{ti['map_index']}]": ti
            for ti in found["task_instances"]
        }

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        return {key: ti["state"] for key, ti in self.task_instances(dag_id, run_id).items()}

    def tries(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> list[dict[str, Any]]:
        """Every try of one task instance (state, hostname, try_number), oldest first."""
        suffix = f"/{map_index}" if map_index >= 0 else ""
        found = self.api("GET", f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}{suffix}/tries")
        return sorted(found["task_instances"], key=lambda t: t["try_number"])

    def xcom(
        self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1
    ) -> Any:
        """An XCom value as the REST API returns it (JSON-native values come back as they were pushed)."""
        found = self.api(
            "GET",
            f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}",
            params={"map_index": map_index, "deserialize": True},
        )
        return found["value"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
        """One try's task log as the api-server serves it: the events' text, one line each."""
        found = self.api(
            "GET",
            f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"map_index": map_index, "full_content": True},
            headers={"Accept": "application/json"},
        )
        lines = []
        for entry in found.get("content") or []:
            lines.append(entry.get("event", str(entry)) if isinstance(entry, dict) else str(entry))
        return "\n".join(lines)

    # -- the metadata DB (read-only views the REST API does not give) ----------------------------------
    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        import psycopg2

        dsn = self.database_url.replace("postgresql+psycopg2", "postgresql")
        with contextlib.closing(psycopg2.connect(dsn)) as conn, conn.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
            conn.rollback()
            return rows

    def triggerers_of(self, dag_id: str, run_id: str) -> dict[str, int | None]:
        """For each deferred task instance of the run, the id of the triggerer job running its trigger."""
        rows = self.query(
            "SELECT ti.task_id, t.triggerer_id FROM task_instance ti JOIN trigger t ON t.id = ti.trigger_id "
            "WHERE ti.dag_id = %s AND ti.run_id = %s",
            dag_id,
            run_id,
        )
        return dict(rows)

    # -- teardown ----------------------------------------------------------------------------------------
    def stop(self) -> dict[str, Any]:
        """Stop every process group (Airflow first, then the sandbox, Redis, PostgreSQL); check the ports.

        Returns what was checked: the ports that were freed and the groups that had to be SIGKILLed.
        """
        self._session.close()
        self.sandbox.session.close()
        order = [n for n in self.processes if n.startswith(("worker-", "airflow-"))]
        order += [n for n in ("carol-sandbox", "redis") if n in self.processes]
        for name in order:
            self.processes[name].stop()
        if self._pg is not None:
            self._pg.stop()
        ports = [port for p in self.processes.values() for port in p.ports]
        every = [*self.processes.values(), *self.killed]
        survivors = [p.name for p in every if p.group_alive()]
        survivors += [f"{p.name} descendant {child.pid}" for p in every for child in p.strays]
        busy = [port for port in ports if port_open(port)]
        if survivors or busy:
            raise DeploymentError(f"teardown left process groups {survivors} and open ports {busy}")
        return {"ports_freed": ports, "groups_stopped": list(self.processes)}


class PostgresCluster:
    """A throw-away PostgreSQL cluster in a temp dir, run as :data:`PG_USER` on a free loopback port."""

    def __init__(self, root: Path, log_dir: Path) -> None:
        self.bin = self.find_bin()
        self.user = ensure_system_user(PG_USER)
        # The data dir must be reachable by the cluster's user: a fresh temp dir of its own, not under
        # pytest's root-only tmp path.
        self.base = Path(tempfile.mkdtemp(prefix="carol-deployment-pg-"))
        os.chown(self.base, self.user.pw_uid, self.user.pw_gid)
        self.data = self.base / "data"
        self.port = free_port()
        self.password = secrets.token_urlsafe(18)
        self.log_path = log_dir / "postgres.log"
        self.process: Process | None = None
        self.root = root

    @staticmethod
    def find_bin() -> Path:
        """The newest Debian PostgreSQL server's bin dir (scripts/bootstrap-deployment.sh installs it)."""
        found = sorted(
            Path("/usr/lib/postgresql").glob("*/bin/initdb"),
            key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
        )
        if not found:
            raise DeploymentError("PostgreSQL is not installed: run scripts/bootstrap-deployment.sh")
        return found[-1].parent

    def _as_user(self) -> dict[str, Any]:
        return {
            "user": self.user.pw_uid,
            "group": self.user.pw_gid,
            "extra_groups": [],
            "env": {"PATH": "/usr/bin:/bin", "HOME": str(self.base), "LC_ALL": "C.UTF-8"},
            "cwd": self.base,
        }

    def start(self) -> Process:
        pwfile = self.base / "pwfile"
        pwfile.write_text(self.password + "\n")
        os.chown(pwfile, self.user.pw_uid, self.user.pw_gid)
        pwfile.chmod(0o600)
        init_log = self.log_path.with_name("postgres-initdb.log")
        with init_log.open("wb") as out:
            result = subprocess.run(
                [
                    str(self.bin / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    PG_ROLE,
                    f"--pwfile={pwfile}",
                    "--auth=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--no-sync",
                    "--no-instructions",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=300,
                check=False,
                **self._as_user(),
            )
        pwfile.unlink()
        if result.returncode != 0:
            raise DeploymentError(f"initdb failed ({result.returncode}):\n{init_log.read_text()[-3000:]}")
        with self.log_path.open("ab") as out:
            popen = subprocess.Popen(
                [
                    str(self.bin / "postgres"),
                    "-D",
                    str(self.data),
                    "-p",
                    str(self.port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    f"unix_socket_directories={self.base}",
                    "-c",
                    "max_connections=200",
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                **self._as_user(),
            )
        self.process = Process("postgres", popen, self.log_path, (self.port,))
        wait_for("PostgreSQL to accept connections", self._ready, 120, 0.5, lambda: self.process.tail())
        self._create_database()
        return self.process

    def url(self, database: str = PG_DATABASE) -> str:
        return f"postgresql+psycopg2://{PG_ROLE}:{self.password}@127.0.0.1:{self.port}/{database}"

    def _ready(self) -> bool:
        import psycopg2

        if self.process is not None and not self.process.alive():
            rc = self.process.popen.returncode
            raise DeploymentError(f"postgres exited ({rc}):\n{self.process.tail()}")
        try:
            psycopg2.connect(
                self.url("postgres").replace("postgresql+psycopg2", "postgresql"), connect_timeout=5
            ).close()
        except psycopg2.OperationalError:
            return False
        return True

    def _create_database(self) -> None:
        import psycopg2

        conn = psycopg2.connect(self.url("postgres").replace("postgresql+psycopg2", "postgresql"))
        try:
            conn.autocommit = True
            with conn.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE {PG_DATABASE} OWNER {PG_ROLE}")
        finally:
            conn.close()

    def stop(self) -> None:
        """Fast shutdown (SIGINT to the postmaster), SIGKILL after the deadline; remove the cluster."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGINT)
            try:
                self.process.popen.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill_group()
            self.process.stop(timeout=10)
        shutil.rmtree(self.base, ignore_errors=True)


def ensure_system_user(name: str) -> pwd.struct_passwd:
    """The unprivileged system user ``name``, created (no home, no login shell) when missing."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    if os.geteuid() != 0:
        raise DeploymentError(f"system user {name!r} is missing and only root can create it")
    subprocess.run(
        [
            "useradd",
            "--system",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            name,
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return pwd.getpwnam(name)


def start_redis(log_dir: Path, work: Path) -> Process:
    """A private ``redis-server`` on a free loopback port, without persistence."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise DeploymentError("redis-server is not installed: run scripts/bootstrap-deployment.sh")
    port = free_port()
    work.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / "redis.log"
    with log_path.open("ab") as out:
        popen = subprocess.Popen(
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(work),
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
                "--databases",
                "2",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    process = Process("redis", popen, log_path, (port,))

    def pong() -> bool:
        if not process.alive():
            raise DeploymentError(f"redis-server exited:\n{process.tail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    wait_for("redis-server to answer PING", pong, 60, 0.2, process.tail)
    return process


def start_sandbox(log_dir: Path, state_dir: Path) -> tuple[Process, Sandbox]:
    """``carol-sandbox --port 0 --bigquery`` (as scripts/demo.sh runs it) and its handle."""
    state_dir.mkdir(parents=True, exist_ok=True)
    out_path, log_path = log_dir / "carol-sandbox.out", log_dir / "carol-sandbox.log"
    env = clean_environment()
    env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '/usr/bin:/bin')}"
    with out_path.open("wb") as out, log_path.open("ab") as err:
        popen = subprocess.Popen(
            [str(VENV_BIN / "carol-sandbox"), *services.SANDBOX_HARNESS_ARGS, "--state-dir", str(state_dir)],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=REPO,
            start_new_session=True,
        )
    process = Process("carol-sandbox", popen, log_path)

    def started() -> str:
        if not process.alive():
            raise DeploymentError(f"carol-sandbox exited:\n{process.tail()}")
        text = out_path.read_text()
        return text.split("\n", 1)[0] if "\n" in text else ""

    info = json.loads(wait_for("the sandbox's start-up line", started, 180, 0.2, process.tail))
    sandbox = Sandbox(info)
    ports = [info["port"]]
    for key in ("bigquery_endpoint", "bigquery_storage_endpoint"):
        if info.get(key):
            ports.append(int(str(info[key]).rsplit(":", 1)[1].strip("/")))
    process.ports = tuple(ports)
    return process, sandbox


def clean_environment() -> dict[str, str]:
    """This process's environment without anything Airflow- or Carol-specific (the test session's own)."""
    return {
        key: value
        for key, value in os.environ.items()
        if key not in _DROPPED and not key.startswith(_DROPPED_PREFIXES)
    }


def deployment_environment(
    root: Path, api_port: int, database_url: str, redis_port: int, carol_default: str, password_file: Path
) -> dict[str, str]:
    """The environment of every Airflow process: the shared description plus the harness-only settings.

    ``carol_default`` is the sandbox's connection JSON, derived as scripts/demo.sh does
    (``scripts/sandbox_info.py --connection``, i.e. ``Sandbox.connection_json("password")``).
    """
    tmp = root / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    api_base = f"http://127.0.0.1:{api_port}"
    from cryptography.fernet import Fernet

    endpoints = Endpoints(
        database_url=database_url,
        broker_url=f"redis://127.0.0.1:{redis_port}/0",
        result_backend="db+"
        + database_url,  # SQLAlchemy 2.1 defaults postgresql:// to psycopg 3: name psycopg2
        api_base_url=api_base,
        dags_folder=str(EXAMPLE_DAGS),
        # carol_default exactly as scripts/demo.sh derives it (scripts/sandbox_info.py --connection).
        carol_default=carol_default,
        erp_sqlite=json.dumps({"conn_type": "sqlite", "host": str(tmp / "carol_ingest_erp" / "erp.db")}),
        jwt_secret=secrets.token_urlsafe(32),
        api_secret_key=secrets.token_urlsafe(32),
        fernet_key=Fernet.generate_key().decode(),
    )
    bundles = [
        {"name": "dags-folder", "classpath": LOCAL_BUNDLE, "kwargs": {}},
        {
            "name": "deployment-tests",
            "classpath": LOCAL_BUNDLE,
            "kwargs": {"path": str(TEST_DAGS), "refresh_interval": 30},
        },
    ]
    harness_only = {
        "AIRFLOW_HOME": str(root / "airflow-home"),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(password_file),
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.deployment.hostname.from_env",
        "CAROL_DEPLOYMENT_HOSTNAME": "",  # set per process by Deployment.start_airflow
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundles),
        "TMPDIR": str(tmp),
        "PYTHONPATH": str(REPO),
    }
    if set(harness_only) != set(services.HARNESS_ONLY_ENV):
        raise DeploymentError("harness-only settings differ from services.HARNESS_ONLY_ENV")
    env = clean_environment()
    env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '/usr/bin:/bin')}"
    env.update(services.airflow_environment(endpoints))
    env.update(harness_only)
    return env


@contextlib.contextmanager
def running_deployment(root: Path, start_timeout: float = 900.0) -> Iterator[Deployment]:
    """Start the whole deployment in ``root``, yield it, and tear it down (also when start-up fails)."""
    started = time.monotonic()
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    extra: list[Process] = []
    pg = PostgresCluster(root, logs)
    deployment: Deployment | None = None
    try:
        extra.append(pg.start())
        timings["postgres"] = time.monotonic() - started
        extra.append(start_redis(logs, root / "redis"))
        timings["redis"] = time.monotonic() - started
        sandbox_process, sandbox = start_sandbox(logs, root / "sandbox")
        extra.append(sandbox_process)
        timings["carol-sandbox"] = time.monotonic() - started

        api_port = free_port()
        password = secrets.token_urlsafe(12)
        password_file = root / "passwords.json"
        password_file.write_text(json.dumps({ADMIN_USER: password}))
        password_file.chmod(0o600)
        carol_default = sandbox.connection_json(auth_type="password")
        env = deployment_environment(
            root, api_port, pg.url(), extra[1].ports[0], carol_default, password_file
        )
        deployment = Deployment(
            root, env, f"http://127.0.0.1:{api_port}", password, sandbox, pg.url(), timings=timings, _pg=pg
        )
        for process in extra:
            deployment.processes[process.name] = process
        deployment.processes["postgres"].ports = (pg.port,)

        migrate = deployment.start_airflow("airflow-init", *SERVICES_BY_NAME["airflow-init"].airflow_command)
        rc = migrate.popen.wait(timeout=start_timeout)
        del deployment.processes["airflow-init"]
        if rc != 0:
            raise DeploymentError(f"airflow db migrate failed ({rc}):\n{migrate.tail(60)}")
        timings["airflow-init"] = time.monotonic() - started

        for name in services.LONG_RUNNING_AIRFLOW:
            if name == "airflow-worker":
                for worker in WORKERS:
                    deployment.start_service(worker)
            else:
                deployment.start_service(name)
        deployment.processes["airflow-apiserver"].ports = (api_port,)
        _wait_ready(deployment, started, start_timeout)
        timings["ready"] = time.monotonic() - started
        (root / "startup.json").write_text(json.dumps(timings, indent=2))
        yield deployment
    finally:
        if deployment is not None:
            deployment.stop()
        else:
            for process in reversed(extra):
                if process.name == "postgres":
                    continue
                process.stop()
            pg.stop()


def _wait_ready(deployment: Deployment, started: float, timeout: float) -> None:
    """Health endpoint green, both workers ready and answering a ping, every DAG parsed without errors."""
    deadline = started + timeout

    def remaining() -> float:
        return max(1.0, deadline - time.monotonic())

    def healthy() -> bool:
        deployment.check_alive()
        return deployment.healthy("metadatabase", "scheduler", "triggerer", "dag_processor")

    wait_for(
        "/api/v2/monitor/health to be all healthy",
        healthy,
        remaining(),
        2.0,
        lambda: json.dumps(deployment.health()) + "\n" + deployment.log_tails(),
    )
    deployment.timings["healthy"] = time.monotonic() - started
    for worker in WORKERS:

        def ready(name: str = worker) -> bool:
            deployment.check_alive()
            return deployment.worker_ready(name)

        wait_for(f"{worker} to be ready", ready, remaining(), 1.0, deployment.log_tails)
    expected = {f"{n}@carol-deployment" for n in WORKERS}
    wait_for(
        "a Celery ping answer from every worker",
        lambda: expected <= set(deployment.celery_ping()),
        remaining(),
        2.0,
        deployment.log_tails,
    )

    wanted = expected_dag_ids()

    def parsed() -> bool:
        deployment.check_alive()
        errors = deployment.api("GET", "importErrors")
        if errors["total_entries"]:
            raise DeploymentError(f"DAG import errors: {json.dumps(errors)[:3000]}")
        dags = deployment.api("GET", "dags", params={"limit": 1000})
        return wanted <= {dag["dag_id"] for dag in dags["dags"]}

    wait_for(f"DAGs {sorted(wanted)} to be parsed", parsed, remaining(), 2.0, deployment.log_tails)
    deployment.timings["dags_parsed"] = time.monotonic() - started


def expected_dag_ids() -> set[str]:
    """Every DAG id in the example and deployment-test bundles (one DAG per file, ``dag_id="<stem>"``)."""
    return {
        path.stem
        for folder in (EXAMPLE_DAGS, TEST_DAGS)
        for path in folder.glob("*.py")
        if not path.name.startswith("_")
    }
