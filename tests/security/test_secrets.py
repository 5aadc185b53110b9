"""Secrets never leak: every example DAG, in every auth mode, against a sandbox with distinctive secrets.

After each run the test looks for the password, the API key and (token mode) the access and refresh
tokens in: the task logs (everything ``dag.test()`` printed or logged), every XCom value and rendered
template field in the metadata DB, every file under AIRFLOW_HOME, every file under the run's private
temp directory and every file written to the system temp directory during the run.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from airflow_provider_carol.hooks.carol import CarolHook
from tests.dagutil import DAGS, load_dag, run_dag
from tests.security.conftest import (
    API_KEY,
    PASSWORD,
    count_figure,
    find_leaks,
    metadata_rows,
    read_files,
)

EXAMPLE_DAGS = sorted(
    path.stem for path in DAGS.glob("*.py") if path.is_symlink() and "example_dags" in str(path.resolve())
)
SYSTEM_TMP = Path(tempfile.gettempdir())
PRIVATE_KEY = "PRIVATE KEY"  # any PEM private key (e.g. a BigQuery service-account key) on disk or in logs


def connection(sandbox, auth_type: str, secrets: dict[str, str], **extra) -> str:
    if auth_type != "token":
        return sandbox.connection_json(auth_type, **extra)
    issued = sandbox.issue_token()
    secrets.update({"access token": issued["access_token"], "refresh token": issued["refresh_token"]})
    conn = json.loads(sandbox.connection_json("password", **extra))
    conn["password"] = issued["access_token"]
    conn["extra"].update(auth_type="token", refresh_token=issued["refresh_token"])
    return json.dumps(conn)


def bigquery_extras(request, sandbox) -> dict[str, str]:
    """Attach the session's BigQuery emulator to the secret sandbox (for DAGs tagged ``bigquery``)."""
    emulator = request.getfixturevalue("bigquery_emulator")
    project = f"carol-{sandbox.tenant_id[:20]}"
    emulator.client(project).create_dataset(f"{project}.{sandbox.tenant_id}", exists_ok=True)
    sandbox.attach_bigquery(emulator.rest, emulator.grpc)
    request.addfinalizer(lambda: sandbox.attach_bigquery(None))
    return {"bigquery_endpoint": emulator.rest, "bigquery_storage_endpoint": emulator.grpc}


def own_artefacts(captured: dict[str, bytes], airflow_home: Path, private_tmp: Path) -> dict[str, bytes]:
    """What this run wrote: logs, metadata DB rows, AIRFLOW_HOME and the run's private temp directory."""
    return {**captured, **metadata_rows(), **read_files(airflow_home), **read_files(private_tmp)}


def system_tmp_files(started: float, sandbox, private_tmp: Path, airflow_home: Path) -> dict[str, bytes]:
    """Files written to the shared temp directory during the run (other processes write there too)."""
    return read_files(SYSTEM_TMP, since=started, exclude=(sandbox.state_dir, private_tmp, airflow_home))


def example_setup(example: str, private_tmp: Path, monkeypatch) -> None:
    """What an example needs besides ``carol_default`` (see each DAG file's docstring)."""
    if example == "carol_ingest_erp":  # its ERP source: a SQLite file that ``seed_erp`` fills
        conn = {"conn_type": "sqlite", "host": str(private_tmp / "erp" / "erp.db")}
        monkeypatch.setenv("AIRFLOW_CONN_CAROL_ERP_SQLITE", json.dumps(conn))


@pytest.fixture
def private_tmp(tmp_path, monkeypatch) -> Path:
    """Route the run's temp files (tempfile, TMPDIR) to a directory this test scans in full."""
    path = tmp_path / "tmp"
    path.mkdir()
    monkeypatch.setenv("TMPDIR", str(path))
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    return path


def test_the_scanner_finds_a_planted_secret_in_each_kind_of_artefact(tmp_path):
    (tmp_path / "sub").mkdir()
    planted = tmp_path / "sub" / "cache.json"
    planted.write_text(json.dumps({"token": "x" + API_KEY}))
    try:
        blobs = {"log": f"password={PASSWORD}".encode(), **read_files(tmp_path)}
    finally:
        planted.unlink()  # later tests scan the temp directory
    blobs["url"] = b"carol://u:carol-pw-Q7v3xK9mT2wB@host"
    assert sorted(find_leaks(blobs, {"password": PASSWORD, "api key": API_KEY})) == sorted(
        ["log: password", f"{tmp_path / 'sub' / 'cache.json'}: api key", "url: password"]
    )


@pytest.mark.dag
@pytest.mark.parametrize("auth_type", ["password", "token", "api_key"])
@pytest.mark.parametrize("example", EXAMPLE_DAGS)
def test_example_dag_leaks_no_secret(
    airflow_db,
    airflow_home,
    secret_sandbox,
    private_tmp,
    scan_started,
    request,
    monkeypatch,
    capfd,
    caplog,
    example,
    auth_type,
):
    secret_sandbox.reset()
    dag = load_dag(example)
    example_setup(example, private_tmp, monkeypatch)
    extra = bigquery_extras(request, secret_sandbox) if "bigquery" in (dag.tags or ()) else {}
    secrets = {"password": PASSWORD, "api key": API_KEY}
    monkeypatch.setenv("AIRFLOW_CONN_CAROL_DEFAULT", connection(secret_sandbox, auth_type, secrets, **extra))
    capfd.readouterr()
    dag_run, tis = run_dag(dag)
    out, err = capfd.readouterr()
    assert dag_run.state == "success", {t: ti.state for t, ti in tis.items()}
    assert "[DAG TEST] end task" in out + err + caplog.text  # the task logs were captured
    captured = {
        "task log (stdout)": out.encode(),
        "task log (stderr)": err.encode(),
        "task log (records)": caplog.text.encode(),
    }
    own = own_artefacts(captured, airflow_home, private_tmp)
    shared = system_tmp_files(scan_started, secret_sandbox, private_tmp, airflow_home)
    assert find_leaks({**own, **shared}, secrets) == []
    # A private key (the BigQuery temporary key) in anything this run wrote. The shared temp directory is
    # left out of this check only: other processes (sandboxes, benchmarks) write TLS keys there.
    assert [where for where, blob in own.items() if PRIVATE_KEY.encode() in blob] == []
    count_figure("security: artefacts scanned for secrets", len(own) + len(shared))
    count_figure("security: example DAG runs checked for leaks", 1)


@pytest.mark.dag
@pytest.mark.parametrize("auth_type", ["password", "api_key"])
def test_failed_runs_name_the_problem_but_not_the_secret(
    airflow_db, airflow_home, secret_sandbox, private_tmp, scan_started, monkeypatch, capfd, caplog, auth_type
):
    secret_sandbox.reset()
    if auth_type == "api_key":
        secret_sandbox.revoke_api_key()
    else:  # Carol refuses the password (as for a wrong one), echoing nothing
        secret_sandbox.add_fault("/api/v5/oauth2/token", status=401, times=10)
    monkeypatch.setenv("AIRFLOW_CONN_CAROL_DEFAULT", secret_sandbox.connection_json(auth_type))
    capfd.readouterr()
    dag_run, _ = run_dag(load_dag("carol_api_call"))
    out, err = capfd.readouterr()
    assert dag_run.state == "failed"
    assert "CarolAuthError" in out + err + caplog.text  # the failure is there, and says what failed
    captured = {
        "task log (stdout)": out.encode(),
        "task log (stderr)": err.encode(),
        "task log (records)": caplog.text.encode(),
    }
    blobs = {
        **own_artefacts(captured, airflow_home, private_tmp),
        **system_tmp_files(scan_started, secret_sandbox, private_tmp, airflow_home),
    }
    assert find_leaks(blobs, {"password": PASSWORD, "api key": API_KEY}) == []
    count_figure("security: artefacts scanned for secrets", len(blobs))


def test_hook_and_config_reprs_and_errors_hide_the_secret(secret_sandbox, monkeypatch):
    issued = secret_sandbox.issue_token()
    secrets = {
        "password": PASSWORD,
        "api key": API_KEY,
        "access token": issued["access_token"],
        "refresh token": issued["refresh_token"],
    }
    texts = {}
    for auth_type in ("password", "api_key", "token"):
        conn = json.loads(secret_sandbox.connection_json("password" if auth_type == "token" else auth_type))
        if auth_type == "token":
            conn["password"] = issued["access_token"]
            conn["extra"].update(auth_type="token", refresh_token=issued["refresh_token"])
        monkeypatch.setenv("AIRFLOW_CONN_CAROL_SECRETS", json.dumps(conn))
        hook = CarolHook("carol_secrets", retry_limit=0)
        texts[f"{auth_type}: repr(config)"] = repr(hook.config).encode()
        texts[f"{auth_type}: str(config)"] = str(hook.config).encode()
        secret_sandbox.add_fault("/api/v1/tenants/current", status=500, body={"errorMessage": "x"}, times=9)
        ok, message = hook.test_connection()
        assert not ok and "HTTP 500" in message
        texts[f"{auth_type}: test_connection"] = message.encode()
        secret_sandbox._admin("DELETE", "faults")
    assert find_leaks(texts, secrets) == []
