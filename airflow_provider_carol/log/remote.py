"""Airflow 3.3 remote logging into Carol long-task logs: a ``RemoteLogIO`` whose structlog processor ships.

What runs where in Airflow 3.3.2 (task SDK 1.3.2):

* A normal task run (any executor): the task subprocess sends every line - ``self.log`` (structlog) and
  stdlib loggers alike - as JSON to its supervisor, which writes it to the task's log file through a
  structlog logger built with ``logging_processors()``; the ``processors`` of the configured RemoteLogIO
  are part of that chain. This processor ships from there: the file path names the Airflow task try, and
  lines are masked already. ``upload()`` (called by the supervisor when the task process has exited)
  flushes and waits, so the try's lines are in Carol before the supervisor exits.
* The task subprocess runs the same processors but ships nothing (its lines all reach the supervisor).
* In-process runs (``dag.test()``, ``airflow dags test``): there is no supervisor file and no upload.
  When Airflow's logging in that process carries this processor, lines are shipped from the task's own
  write path instead, keyed by the task instance, and flushed by interval and at exit.

Which Carol task receives an Airflow task's lines is explicit: the first log event carrying the key
:data:`LOG_TASK_ID_KEY` (see :func:`send_task_logs_to` and :func:`carol_log_task`) routes that task try's
lines, including the ones logged before it; without one, ``LONGTASKID`` of the worker's environment
does; without either, lines stay in the Airflow log only.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_carol.hooks.tasks.logs import carol_level
from airflow_provider_carol.log.shipper import LogShipper, local_log

if TYPE_CHECKING:
    from airflow_provider_carol.hooks.carol import CarolHook

SCHEME = "carol"
#: Log-event key (and XCom key) naming the Carol long task that receives an Airflow task's lines.
LOG_TASK_ID_KEY = "carol_log_task_id"
#: Lines held per Airflow task try while no Carol task is known yet (older ones are dropped, counted).
MAX_PENDING = 2_000
_IO_KWARGS = ("batch_size", "flush_interval", "max_queue", "upload_timeout")
_META_KEYS = frozenset(
    {
        "event",
        "timestamp",
        "level",
        "logger",
        "logger_name",
        "positional_args",
        "_record",
        "_from_structlog",
        "chan",
        "exc_info",
        "exception",
        "error_detail",
        "stack_info",
        "stack",
        "filename",
        "lineno",
        "func_name",
        "module",
        "pathname",
        "process",
        "process_name",
        "thread",
        "thread_name",
        "loc",
        # Context Airflow binds to every line of a task try; the Carol task already implies it.
        "dag_id",
        "task_id",
        "run_id",
        "map_index",
        "try_number",
        "ti_id",
        LOG_TASK_ID_KEY,
    }
)


class CarolRemoteLogIO:
    """Ship Airflow task log lines to Carol long-task logs (``remote_base_log_folder = carol://<conn_id>``).

    Carol is a sink, not a log store Airflow reads back: :meth:`read` returns nothing, so the UI keeps
    showing the local/served Airflow log file, which is never deleted.

    :param base_log_folder: ``[logging] base_log_folder`` (where the supervisor writes task logs).
    :param remote_base: ``[logging] remote_base_log_folder``; its netloc names the connection by default.
    :param conn_id: the ``carol`` connection to send with (default: ``remote_log_conn_id``, the URL's
        netloc, else ``carol_default``).
    :param batch_size: most lines per POST.
    :param flush_interval: seconds a line may wait before it is sent.
    :param max_queue: most lines held in memory; further ones are dropped and counted.
    :param upload_timeout: how long :meth:`upload` waits for the task's lines to be sent.
    """

    def __init__(
        self,
        base_log_folder: str | os.PathLike[str],
        remote_base: str = "carol://carol_default",
        conn_id: str | None = None,
        *,
        batch_size: int = 500,
        flush_interval: float = 2.0,
        max_queue: int = 50_000,
        upload_timeout: float = 30.0,
    ) -> None:
        self.base_log_folder = os.path.abspath(os.path.expanduser(os.fspath(base_log_folder)))
        self.remote_base = remote_base
        self.conn_id = conn_id or urlsplit(remote_base).netloc or "carol_default"
        self.upload_timeout = upload_timeout
        self._shipper = LogShipper(
            self._build_hook,
            batch_size=batch_size,
            flush_interval=flush_interval,
            max_queue=max_queue,
            name="carol-task-log-shipper",
        )
        self._lock = threading.Lock()
        self._routes: dict[str, str] = {}
        self._pending: dict[str, list[tuple[str, str]]] = {}
        self._pending_dropped = 0
        self._unrouted_reported: set[str] = set()
        self._in_process: str | None = None

    # ------------------------------------------------------------------------------- construction
    @classmethod
    def from_config(cls) -> CarolRemoteLogIO:
        """Build from Airflow's ``[logging]`` settings (the ``remote-logging`` provider entry point).

        ``remote_task_handler_kwargs`` (JSON) may set ``batch_size``, ``flush_interval``, ``max_queue`` and
        ``upload_timeout``; other keys are left to Airflow's file task handler.
        """
        from airflow.providers.common.compat.sdk import conf

        base = conf.get("logging", "base_log_folder")
        remote_base = conf.get("logging", "remote_base_log_folder", fallback="") or "carol://carol_default"
        if urlsplit(remote_base).scheme != SCHEME:
            raise ValueError(
                "[logging] remote_base_log_folder must be carol://<conn_id> for Carol logs, "
                f"not {remote_base!r}"
            )
        raw = conf.get("logging", "remote_task_handler_kwargs", fallback="") or "{}"
        try:
            options = json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"[logging] remote_task_handler_kwargs is not valid JSON: {exc}") from None
        if not isinstance(options, dict):
            raise ValueError("[logging] remote_task_handler_kwargs must be a JSON object")
        known = set(inspect.signature(cls.__init__).parameters) & set(_IO_KWARGS)
        kwargs = {key: options[key] for key in known if key in options}
        conn_id = conf.get("logging", "remote_log_conn_id", fallback="") or None
        return cls(base, remote_base, conn_id, **kwargs)

    def _build_hook(self) -> CarolHook:
        from airflow_provider_carol.hooks.carol import CarolHook

        return CarolHook(self.conn_id, retry_limit=2, retry_delay=0.2, max_retry_wait=5.0)

    # ------------------------------------------------------------------------------- RemoteLogIO
    @property
    def processors(self) -> tuple[Callable[[Any, str, Any], Any], ...]:
        """The structlog processor Airflow installs in the task write path (see the module docstring)."""
        if os.environ.get(f"AIRFLOW_CONN_{self.conn_id.upper()}"):
            # The supervisor exports the remote-log connection only around this call and upload():
            # resolve it now (no request is sent) so the shipping thread can use it later.
            try:
                self._shipper.prepare()
            except Exception as exc:  # noqa: BLE001 - a bad connection must not break task logging
                local_log.warning("Carol task logs: connection %r is unusable: %s", self.conn_id, exc)
        return (self.process,)

    def process(self, logger: Any, method_name: str, event_dict: Any) -> Any:
        """structlog processor: queue the event for Carol when this process owns the line; never raises."""
        try:
            stream = self._stream_of(logger, event_dict)
            if stream is not None and threading.get_ident() != self._shipper.shipping_thread_id:
                self._route(stream, event_dict, method_name)
        except Exception:  # noqa: BLE001 - a log line must never fail because of shipping
            pass
        return event_dict

    def upload(self, path: os.PathLike[str] | str, ti: Any = None) -> None:
        """End of a task try (called by the supervisor): route held lines, send everything, wait.

        Idempotent: lines are shipped as they are written, so a second upload of the same path (a
        deferred task resuming) sends nothing twice.
        """
        stream = self._relative(os.fspath(path))
        try:
            self._finish(stream)
            if not self._shipper.flush(self.upload_timeout):
                local_log.warning(
                    "Carol task logs: lines of %s were still queued after %.0f s and may be lost.",
                    stream,
                    self.upload_timeout,
                )
        except Exception as exc:  # noqa: BLE001 - upload failures are reported, never raised
            local_log.warning("Carol task logs: upload of %s failed: %s", stream, exc)

    def read(self, relative_path: str, ti: Any) -> tuple[list[str], list[str] | None]:
        """Carol is not read back; ``None`` lets Airflow show its own local or served log file."""
        return [], None

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Send every queued line now (tests and in-process runs); True when drained in time."""
        return self._shipper.flush(timeout)

    def stats(self) -> dict[str, int]:
        """Shipping counters plus ``pending_dropped`` (lines dropped while no Carol task was known)."""
        return {**self._shipper.stats(), "pending_dropped": self._pending_dropped}

    # ------------------------------------------------------------------------------- routing
    def _stream_of(self, logger: Any, event: Any) -> str | None:
        """Which Airflow task try a line belongs to, if this process is the one that ships it."""
        handle = getattr(logger, "_file", None)
        name = getattr(handle, "name", None)
        if isinstance(name, str) and name.startswith(self.base_log_folder + os.sep):
            return self._relative(name)  # the supervisor's task log file
        comms = _in_process_comms()
        if comms is None:
            return None  # a task subprocess (its supervisor ships) or no task at all
        # dag.test(): no supervisor and no file; the in-process Execution API logs here too, skip it.
        name = (event.get("logger") if isinstance(event, dict) else None) or getattr(logger, "name", "")
        if str(name).startswith("airflow.api_fastapi"):
            return None
        stream = f"in-process/{getattr(getattr(comms, 'supervisor', None), 'id', 'task')}"
        if stream != self._in_process:
            previous, self._in_process = self._in_process, stream
            if previous is not None:
                self._finish(previous)  # no upload() in-process: the previous task try has ended
        return stream

    def _relative(self, path: str) -> str:
        if os.path.isabs(path) and path.startswith(self.base_log_folder + os.sep):
            return Path(path).relative_to(self.base_log_folder).as_posix()
        return Path(path).as_posix()

    def _route(self, stream: str, event: Any, method_name: str) -> None:
        message = format_event(event)
        level = carol_level(event.get("level") or method_name)
        announced = event.get(LOG_TASK_ID_KEY)
        with self._lock:
            if isinstance(announced, str) and announced.strip():
                self._routes[stream] = announced.strip()
                held = self._pending.pop(stream, [])
            else:
                held = []
            target = self._routes.get(stream) or os.environ.get("LONGTASKID") or None
            if target is None:
                pending = self._pending.setdefault(stream, [])
                if len(pending) >= MAX_PENDING:
                    pending.pop(0)
                    self._pending_dropped += 1
                pending.append((level, message))
                return
            for held_level, held_message in held:
                self._shipper.put(target, held_level, held_message)
            self._shipper.put(target, level, message)

    def _finish(self, stream: str) -> None:
        """Send lines held for ``stream`` to ``LONGTASKID`` if set, else keep them local (say so once)."""
        with self._lock:
            held = self._pending.pop(stream, [])
        target = os.environ.get("LONGTASKID") or None
        if target:
            for level, message in held:
                self._shipper.put(target, level, message)
        elif held and stream not in self._unrouted_reported:
            self._unrouted_reported.add(stream)
            local_log.info(
                "Carol task logs: no Carol task id for %s (no %s log event, no LONGTASKID); its %d line(s) "
                "stay in the Airflow log only.",
                stream,
                LOG_TASK_ID_KEY,
                len(held),
            )


def _in_process_comms() -> Any:
    """The in-process supervisor's comms of a ``dag.test()``/``airflow dags test`` task, else None."""
    runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    comms = getattr(runner, "SUPERVISOR_COMMS", None)
    return comms if type(comms).__name__ == "InProcessSupervisorComms" else None


def format_event(event: Any) -> str:
    """One Carol log line from a structlog event: the message, ``key=value`` extras, the exception."""
    if not isinstance(event, dict):
        return str(event)
    text = str(event.get("event", ""))
    extras = " ".join(f"{key}={value!r}" for key, value in event.items() if key not in _META_KEYS)
    if extras:
        text = f"{text} {extras}"
    failure = _exception_text(event)
    return f"{text}\n{failure}" if failure else text


def _exception_text(event: dict[str, Any]) -> str:
    detail = event.get("error_detail")  # the supervisor's view: a list of exception dicts
    if isinstance(detail, list) and detail:
        parts = [
            f"{item.get('exc_type', 'Exception')}: {item.get('exc_value', '')}"
            for item in detail
            if isinstance(item, dict)
        ]
        return "\n".join(parts)
    exception = event.get("exception")
    if isinstance(exception, str):
        return exception
    exc_info = event.get("exc_info")
    if exc_info:
        if exc_info is True:
            exc_info = sys.exc_info()
        elif isinstance(exc_info, BaseException):
            exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
        if isinstance(exc_info, tuple) and exc_info[0] is not None:
            return "".join(traceback.format_exception(*exc_info)).rstrip()
    return ""


def send_task_logs_to(carol_task_id: str) -> None:
    """Inside a running Airflow task: send this task try's log lines (earlier ones too) to that Carol task.

    It logs one line carrying :data:`LOG_TASK_ID_KEY`, which the remote-log processor reads; call it
    again to switch tasks. Outside a configured Airflow worker it is just an INFO line.
    """
    if not isinstance(carol_task_id, str) or not carol_task_id.strip():
        raise ValueError(f"carol_task_id must be a non-empty string, not {carol_task_id!r}")
    import structlog

    from airflow_provider_carol.compat import AIRFLOW_V_3_1_PLUS, log_degraded

    if not AIRFLOW_V_3_1_PLUS and _in_process_comms() is not None:
        log_degraded(
            "in_process_log_announcement",
            "in-process task runs (dag.test(), airflow dags test) never hand structlog events to remote-log "
            "processors before Airflow 3.1, so send_task_logs_to/carol_log_task route nothing there; set "
            "LONGTASKID instead. Tasks run by an executor ship as announced.",
        )
    structlog.get_logger("airflow_provider_carol.log").info(
        "Task log lines go to Carol long task %s", carol_task_id, **{LOG_TASK_ID_KEY: carol_task_id}
    )


def carol_log_task(
    task_id: str | None = None, *, from_task: str | None = None, key: str = LOG_TASK_ID_KEY
) -> Callable[[Any], None]:
    """An ``on_execute_callback`` that routes the task's log lines to a Carol long task.

    ``carol_log_task("<id>")`` names the task on the operator; ``carol_log_task(from_task="start")``
    uses the id an upstream task pushed to XCom under ``key`` (default :data:`LOG_TASK_ID_KEY`; use
    ``key="return_value"`` for an operator that returns the id); ``carol_log_task()`` uses ``LONGTASKID``.
    A missing id is reported once in the task log and never fails the task.
    """
    if task_id is not None and from_task is not None:
        raise ValueError("carol_log_task: pass task_id or from_task, not both")

    def callback(context: Any) -> None:
        carol_task_id = task_id
        if carol_task_id is None and from_task is not None:
            carol_task_id = _id_from_xcom(context["ti"].xcom_pull(task_ids=from_task, key=key))
        if carol_task_id is None:
            carol_task_id = os.environ.get("LONGTASKID") or None
        if carol_task_id:
            send_task_logs_to(carol_task_id)
        else:
            local_log.warning(
                "No Carol task id for this task's logs (XCom %r of %r, LONGTASKID): they stay in Airflow.",
                key,
                from_task,
            )

    return callback


def _id_from_xcom(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, dict):
        for name in (LOG_TASK_ID_KEY, "task_id", "mdmId", "carol_task_id"):
            if isinstance(value.get(name), str) and value[name].strip():
                return value[name].strip()
    return None
