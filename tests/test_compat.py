"""The provider on the Airflow it runs on: every module imports, ``airflow_provider_carol.compat``'s flags
agree with the installed APIs, and every feature a line lacks degrades as docs/compatibility.md says.

The suite runs on 2.11.2/Python 3.11, 3.0.6/Python 3.12, 3.1.8/Python 3.11, 3.2.2/Python 3.13
(``make test-compat``) and 3.3.2/Python 3.11 (``make test``); on each, the branch of a test that does
not apply asserts the other side instead, so nothing is skipped.
"""

from __future__ import annotations

import asyncio
import gzip
import importlib
import json
import logging
import pkgutil

import airflow
import pytest
from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    BaseOperator,
    TaskDeferred,
    redact,
)
from airflow.triggers.base import BaseTrigger

import airflow_provider_carol
from airflow_provider_carol import compat
from airflow_provider_carol.exceptions import CarolAuthError, CarolConfigError
from airflow_provider_carol.hooks.carol import CarolHook
from airflow_provider_carol.hooks.carol_async import CarolAsyncHook
from airflow_provider_carol.links.tasks import CarolTaskLink
from airflow_provider_carol.triggers.events import CarolStagingEventTrigger, CarolTaskEventTrigger
from airflow_provider_carol.triggers.tasks import CarolTaskTrigger, CarolTrackTasksTrigger
from tests.formutil import carol_form

COMPAT_LOGGER = "airflow_provider_carol.compat"


@pytest.fixture
def compat_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture the compat logger with its once-per-process memory cleared for this test."""
    compat._reported.clear()
    caplog.set_level(logging.INFO, logger=COMPAT_LOGGER)
    return caplog


def compat_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == COMPAT_LOGGER]


def test_every_provider_module_imports_on_this_airflow():
    """What DAG parse, the triggerer and the API server import: no ImportError on any supported line."""
    names = [
        m.name
        for m in pkgutil.walk_packages(airflow_provider_carol.__path__, "airflow_provider_carol.")
        if not m.name.endswith("__main__")
    ]
    assert "airflow_provider_carol.compat" in names and len(names) > 30
    for name in names:
        importlib.import_module(name)


def test_version_flags_match_the_installed_airflow():
    version = tuple(int(part) for part in airflow.__version__.split("+")[0].split("rc")[0].split(".")[:2])
    assert (compat.AIRFLOW_VERSION.major, compat.AIRFLOW_VERSION.minor) == version
    assert version >= (2, 11)
    flags = (
        compat.AIRFLOW_V_3_0_PLUS,
        compat.AIRFLOW_V_3_1_PLUS,
        compat.AIRFLOW_V_3_2_PLUS,
        compat.AIRFLOW_V_3_3_PLUS,
    )
    assert flags == tuple(version >= (3, minor) for minor in range(4))


def sdk_has(module: str, name: str) -> bool:
    """Whether the task SDK (Airflow 3) has ``module.name``; 2.11 has no task SDK at all."""
    return importlib.util.find_spec("airflow.sdk") is not None and hasattr(
        importlib.import_module(module), name
    )


def test_the_flags_agree_with_the_apis_they_stand_for():
    """Each documented difference is decided by a flag; the flag matches the API it stands for."""
    import airflow.triggers.base
    from airflow.providers_manager import ProvidersManager

    apis = {
        "task SDK": (importlib.util.find_spec("airflow.sdk") is not None, compat.AIRFLOW_V_3_0_PLUS),
        "BaseEventTrigger": (hasattr(airflow.triggers.base, "BaseEventTrigger"), compat.AIRFLOW_V_3_0_PLUS),
        "BaseTrigger.on_kill": (hasattr(BaseTrigger, "on_kill"), compat.AIRFLOW_V_3_3_PLUS),
        # The task state store came with ResumableJobMixin (common-compat stands in for the mixin only).
        "ResumableJobMixin": (sdk_has("airflow.sdk", "ResumableJobMixin"), compat.AIRFLOW_V_3_3_PLUS),
        "conn-fields loader": (hasattr(ProvidersManager, "_load_ui_metadata"), compat.AIRFLOW_V_3_2_PLUS),
        "remote-logging key": (
            hasattr(ProvidersManager, "initialize_providers_remote_logging"),
            compat.AIRFLOW_V_3_3_PLUS,
        ),
    }
    assert {api: found for api, (found, flag) in apis.items() if found != flag} == {}


def test_provider_exceptions_are_the_ones_this_airflow_raises_and_catches():
    """``CarolConfigError``/``CarolAuthError`` fail the task at once: this line's AirflowFailException."""
    assert issubclass(CarolConfigError, AirflowFailException)
    assert issubclass(CarolAuthError, AirflowFailException)
    trigger = CarolTaskTrigger("t-1")
    with pytest.raises(TaskDeferred) as deferred:  # what BaseOperator.defer raises on this line
        BaseOperator(task_id="t").defer(trigger=trigger, method_name="execute_complete")
    assert deferred.value.trigger is trigger


def test_the_task_link_reads_the_key_airflow_3_writes():
    """Airflow 3 pushes and reads ``_link_<class>``; on 2.11 the link names the same key itself."""
    assert CarolTaskLink().xcom_key == "_link_CarolTaskLink"


def test_no_task_context_outside_a_task_on_every_line():
    """``get_current_context`` outside a task raises RuntimeError on 3.x but AirflowException on 2.11
    (without the standard provider); the provider's callers treat both as "not in a task"."""
    from airflow_provider_carol.hooks.bigquery.labels import airflow_labels
    from airflow_provider_carol.hooks.core.task_state import state_store
    from airflow_provider_carol.hooks.staging.batches import airflow_task_key

    assert airflow_labels() == {}
    assert airflow_task_key() is None
    assert state_store(purpose="a test") is None


async def test_async_masking_masks_on_every_line(compat_log):
    secret = "compat-secret-5be1c0de"
    await compat.amask_secret(secret)
    await compat.amask_secret(secret)
    assert secret not in str(redact(f"token={secret}"))
    lines = compat_lines(compat_log)
    if sdk_has("airflow.sdk.log", "amask_secret"):
        assert lines == []
    else:  # documented fallback: the sync mask_secret in a worker thread, said once per process
        assert len(lines) == 1 and "sync mask_secret in a worker thread" in lines[0]
        assert lines[0].startswith(f"Airflow {compat.AIRFLOW_VERSION}: ")


async def test_the_async_connection_and_masking_never_block_the_event_loop(carol_sandbox):
    """A ticker on the loop keeps running while the async hook reads its connection and masks a secret."""
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.ensure_future(ticker())
    await asyncio.sleep(0)
    before = ticks
    config = await CarolAsyncHook().get_config()
    await compat.amask_secret("compat-secret-loop-7d1f")
    task.cancel()
    expected = json.loads(carol_sandbox.connection_json("password"))
    assert (config.conn_id, config.login) == ("carol_default", expected["login"])
    assert ticks > before


@pytest.mark.parametrize("trigger_class", [CarolTaskTrigger, CarolTrackTasksTrigger])
def test_cancel_on_kill_says_once_when_a_deferred_kill_cannot_cancel(trigger_class, compat_log):
    args = ("t-1",) if trigger_class is CarolTaskTrigger else (["t-1"],)
    trigger_class(*args)  # cancel_on_kill off: nothing to say
    assert compat_lines(compat_log) == []
    trigger_class(*args, cancel_on_kill=True)
    trigger_class(*args, cancel_on_kill=True)
    lines = compat_lines(compat_log)
    if compat.AIRFLOW_V_3_3_PLUS:
        assert lines == []
    else:  # documented degradation: the triggerer never calls on_kill before 3.3
        assert len(lines) == 1, lines
        assert "cannot cancel the Carol task while the Airflow task is deferred" in lines[0]
        assert [r.levelno for r in compat_log.records if r.name == COMPAT_LOGGER] == [logging.WARNING]


def test_event_triggers_build_everywhere_and_say_once_where_no_watcher_runs_them(compat_log):
    """2.11 has no AssetWatcher: the triggers still build (DAG files parse) and say so once."""
    CarolTaskEventTrigger("carol_default")
    CarolStagingEventTrigger("orders")
    lines = compat_lines(compat_log)
    if compat.AIRFLOW_V_3_0_PLUS:
        assert lines == []
    else:
        assert len(lines) == 1, lines
        assert "CarolTaskEventTrigger needs an AssetWatcher (Airflow 3.0+)" in lines[0]


def test_legacy_connection_form_is_built_from_the_declared_conn_fields(fresh_connection_form):
    """The classmethods Airflow < 3.2 reads (2.11's FAB webserver, the 3.0 and 3.1 API servers); 3.2+
    reads conn-fields and never calls them. Either way the UI shows the declared fields."""
    from airflow_provider_carol.get_provider_info import CONN_FIELDS, UI_FIELD_BEHAVIOUR

    assert "get_connection_form_widgets" in CarolHook.__dict__  # Airflow looks only at the class itself
    assert "get_ui_field_behaviour" in CarolHook.__dict__
    assert CarolHook.get_ui_field_behaviour() == {
        "hidden_fields": UI_FIELD_BEHAVIOUR["hidden-fields"],
        "relabeling": UI_FIELD_BEHAVIOUR["relabeling"],
        "placeholders": UI_FIELD_BEHAVIOUR["placeholders"],
    }
    extras, _ = carol_form()
    assert set(extras) == set(CONN_FIELDS)
    for name, field in CONN_FIELDS.items():
        declared = {key: field["schema"].get(key) for key in ("enum", "format")}
        assert extras[name] == {"title": field["label"], **declared}, name


def test_staging_chunks_are_gzip_members():
    """The sender's compressor yields one gzip member per chunk (what Carol's intake reads)."""
    from airflow_provider_carol.hooks.staging.codec import Chunk
    from airflow_provider_carol.hooks.staging.sender import IntakeSender

    class Client:  # only the logger is read when a sender is built
        log = logging.getLogger("test")

    sender = IntakeSender(Client(), staging_name="s", connector_id="c", batch_id="b")  # type: ignore[arg-type]
    body = b'{"a": 1, "b": "x"}\n' * 1000
    packed, size, _crc = sender._pack(Chunk(1, 0, 1000, body, size=len(body)))
    assert gzip.decompress(packed) == body and packed[:2] == b"\x1f\x8b" and size == len(body)
