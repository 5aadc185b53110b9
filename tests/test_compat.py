"""``airflow_provider_carol.compat`` on the Airflow it runs on: probes agree with the installed APIs, and
every fallback does the same job and logs its one documented line.

The suite runs on 3.1.8/Python 3.10, 3.2.2/Python 3.13 (``make test-compat``) and 3.3.2/Python 3.11
(``make test``); on each, the branch of a test that does not apply asserts the other side instead, so
nothing is skipped.
"""

from __future__ import annotations

import asyncio
import gzip
import importlib
import json
import logging
import pkgutil
import sys

import airflow
import pytest
from airflow.sdk import BaseOperator, Connection
from airflow.triggers.base import BaseTrigger

import airflow_provider_carol
from airflow_provider_carol import compat
from airflow_provider_carol.hooks.carol import CarolHook
from airflow_provider_carol.triggers.tasks import CarolTaskTrigger, CarolTrackTasksTrigger

COMPAT_LOGGER = "airflow_provider_carol.compat"
#: True where the async connection API masks without a blocking round-trip (3.3.2+).
ASYNC_API = hasattr(Connection, "aextra_dejson")


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
    assert str(compat.AIRFLOW_VERSION) == airflow.__version__.split("+")[0].split("rc")[0]
    assert compat.AIRFLOW_VERSION.major == 3 and compat.AIRFLOW_VERSION.minor >= 1
    assert (compat.AIRFLOW_VERSION.minor >= 2) == compat.AIRFLOW_V_3_2_PLUS
    assert (compat.AIRFLOW_VERSION.minor >= 3) == compat.AIRFLOW_V_3_3_PLUS


def test_probes_agree_with_the_apis_they_stand_for():
    import airflow.sdk
    from airflow.providers_manager import ProvidersManager

    assert compat.trigger_on_kill_supported() == hasattr(BaseTrigger, "on_kill") == compat.AIRFLOW_V_3_3_PLUS
    assert compat.resumable_jobs_supported() == hasattr(airflow.sdk, "ResumableJobMixin")
    assert compat.resumable_jobs_supported() == compat.AIRFLOW_V_3_3_PLUS
    # 3.2 added the loader of conn-fields/ui-field-behaviour from provider info.
    assert compat.connection_form_in_provider_info() == hasattr(ProvidersManager, "_load_ui_metadata")
    assert compat.remote_logging_provider_key_supported() == hasattr(
        ProvidersManager, "initialize_providers_remote_logging"
    )


def test_config_and_exceptions_are_the_ones_the_task_sdk_uses():
    from airflow import exceptions as core_exceptions

    assert compat.conf.getboolean("core", "unit_test_mode") is True
    if compat.AIRFLOW_V_3_2_PLUS:
        from airflow.sdk import exceptions as sdk_exceptions

        assert compat.TaskDeferred is sdk_exceptions.TaskDeferred
        assert compat.AirflowSensorTimeout is sdk_exceptions.AirflowSensorTimeout
    else:
        assert compat.TaskDeferred is vars(core_exceptions)["TaskDeferred"]
        assert compat.AirflowSensorTimeout is vars(core_exceptions)["AirflowSensorTimeout"]
    assert compat.AirflowNotFoundException is core_exceptions.AirflowNotFoundException

    trigger = CarolTaskTrigger("t-1")
    with pytest.raises(compat.TaskDeferred) as deferred:  # what BaseOperator.defer raises here
        BaseOperator(task_id="t").defer(trigger=trigger, method_name="execute_complete")
    assert deferred.value.trigger is trigger


async def test_async_connection_lookup_reads_the_same_connection_on_every_line(carol_sandbox, compat_log):
    expected = json.loads(carol_sandbox.connection_json("password"))
    for _ in range(2):
        conn = await compat.aget_connection("carol_default")
        extras = await compat.aextra_dejson(conn)
    assert (conn.conn_type, conn.login, conn.password) == ("carol", expected["login"], expected["password"])
    assert extras == expected["extra"]
    lines = compat_lines(compat_log)
    if ASYNC_API:
        assert lines == []
    else:  # documented fallback: the sync lookup in a worker thread, said once per process
        assert len(lines) == 2, lines
        assert "sync lookup in a worker thread" in lines[0]
        assert "sync extra_dejson in a worker thread" in lines[1]
        assert all(line.startswith(f"Airflow {compat.AIRFLOW_VERSION}: ") for line in lines)


async def test_async_masking_masks_on_every_line(compat_log):
    from airflow.sdk._shared.secrets_masker import _secrets_masker

    secret = "compat-secret-5be1c0de"
    await compat.amask_secret(secret)
    await compat.amask_secret(secret)
    assert secret not in str(_secrets_masker().redact(f"token={secret}"))
    lines = compat_lines(compat_log)
    if hasattr(sys.modules["airflow.sdk.log"], "amask_secret"):
        assert lines == []
    else:
        assert len(lines) == 1 and "sync mask_secret in a worker thread" in lines[0]


async def test_the_async_fallbacks_never_block_the_event_loop(carol_sandbox):
    """A ticker on the loop keeps running while the connection is read and a secret masked."""
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.ensure_future(ticker())
    await asyncio.sleep(0)
    before = ticks
    conn = await compat.aget_connection("carol_default")
    await compat.aextra_dejson(conn)
    await compat.amask_secret("compat-secret-loop-7d1f")
    task.cancel()
    assert ticks > before


@pytest.mark.parametrize("trigger_class", [CarolTaskTrigger, CarolTrackTasksTrigger])
def test_cancel_on_kill_says_once_when_a_deferred_kill_cannot_cancel(trigger_class, compat_log):
    args = ("t-1",) if trigger_class is CarolTaskTrigger else (["t-1"],)
    trigger_class(*args)  # cancel_on_kill off: nothing to say
    assert compat_lines(compat_log) == []
    trigger_class(*args, cancel_on_kill=True)
    trigger_class(*args, cancel_on_kill=True)
    lines = compat_lines(compat_log)
    if compat.trigger_on_kill_supported():
        assert lines == []
    else:  # documented degradation: the triggerer never calls on_kill before 3.3
        assert len(lines) == 1, lines
        assert "cannot cancel the Carol task while the Airflow task is deferred" in lines[0]
        assert [r.levelno for r in compat_log.records if r.name == COMPAT_LOGGER] == [logging.WARNING]


def test_legacy_connection_form_is_built_from_the_declared_conn_fields(fresh_connection_form):
    """The classmethods Airflow 3.1 reads; 3.2+ reads conn-fields and never calls them."""
    from airflow_provider_carol.get_provider_info import CONN_FIELDS, UI_FIELD_BEHAVIOUR

    assert "get_connection_form_widgets" in CarolHook.__dict__  # 3.1 looks only at the class itself
    assert "get_ui_field_behaviour" in CarolHook.__dict__
    behaviour = CarolHook.get_ui_field_behaviour()
    assert behaviour == {
        "hidden_fields": UI_FIELD_BEHAVIOUR["hidden-fields"],
        "relabeling": UI_FIELD_BEHAVIOUR["relabeling"],
        "placeholders": UI_FIELD_BEHAVIOUR["placeholders"],
    }
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    meta = next(m for m in HookMetaService.hook_meta_data() if m.connection_type == "carol")
    assert set(meta.extra_fields) == set(CONN_FIELDS)
    for name, field in CONN_FIELDS.items():
        shown = meta.extra_fields[name]["schema"]
        assert shown["title"] == field["label"], name
        assert shown.get("enum") == field["schema"].get("enum"), name
        assert shown.get("format") == field["schema"].get("format"), name


def test_staging_chunks_are_gzip_members_on_this_python():
    """zlib.compress takes wbits only from Python 3.11; the sender's compressor works on 3.10 too."""
    import logging

    from airflow_provider_carol.hooks.staging.codec import Chunk
    from airflow_provider_carol.hooks.staging.sender import IntakeSender

    class Client:  # only the logger is read when a sender is built
        log = logging.getLogger("test")

    sender = IntakeSender(Client(), staging_name="s", connector_id="c", batch_id="b")  # type: ignore[arg-type]
    body = b'{"a": 1, "b": "x"}\n' * 1000
    packed, size, _crc = sender._pack(Chunk(1, 0, 1000, body, size=len(body)))
    assert gzip.decompress(packed) == body and packed[:2] == b"\x1f\x8b" and size == len(body)
