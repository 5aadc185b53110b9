"""The reference SDK, pycarol 2.56.15 unmodified, talks to the TLS sandbox; the sandbox's state must agree.

pycarol runs in its own virtualenv (.venv-pycarol, built by scripts/bootstrap-pycarol.sh) because it
drags in pip-system-certs. A missing venv FAILS this test on purpose: conformance is the proof that the
sandbox speaks Carol's wire protocol, so it must not silently disappear from a run.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PYCAROL_PYTHON = REPO / ".venv-pycarol" / "bin" / "python"
PROBE = Path(__file__).with_name("pycarol_probe.py")
PROBE_TIMEOUT = 240  # pycarol retries a wrong status for minutes; a stall must end as a failure
PROBE_CUSTOMERS = [{"id": i, "region": "NE" if i % 2 else "S"} for i in range(1, 8)]


@pytest.fixture(scope="module")
def probe_result(carol_sandbox_tls_server, tmp_path_factory):
    """Run the probe once for the module; pycarol's import alone costs seconds."""
    if not PYCAROL_PYTHON.exists():
        pytest.fail(f"{PYCAROL_PYTHON} is missing: run `make test` or `scripts/bootstrap-pycarol.sh` first")
    sandbox, tmp_path = carol_sandbox_tls_server, tmp_path_factory.mktemp("pycarol-probe")
    sandbox.reset()
    sandbox.add_user("mfa@example.com", "mfa-pass", mfa=True)
    task_id = sandbox.create_task([{"status": "RUNNING", "after": 0}], name="probe-task")
    sandbox.add_named_query("probe_named", PROBE_CUSTOMERS, params=["region"])
    info = {
        **sandbox.info,
        "mfa_user": "mfa@example.com",
        "mfa_password": "mfa-pass",
        "task_id": task_id,
        "access_token": sandbox.issue_token()["access_token"],
    }
    (tmp_path / "in.json").write_text(json.dumps(info))
    (tmp_path / "tmp").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAROL", "LONGTASKID", "API_SUBDOMAIN"))}
    env.update(
        REQUESTS_CA_BUNDLE=sandbox.ca_bundle, SSL_CERT_FILE=sandbox.ca_bundle, TMPDIR=str(tmp_path / "tmp")
    )  # pycarol's token cache lives under TMPDIR
    env.pop("CURL_CA_BUNDLE", None)
    completed = subprocess.run(
        [str(PYCAROL_PYTHON), str(PROBE), str(tmp_path / "in.json"), str(tmp_path / "out.json")],
        env=env,
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads((tmp_path / "out.json").read_text())
    assert result["ok"], f"{result.get('error')}\n{completed.stderr[-3000:]}"
    return sandbox, task_id, result


def test_pycarol_conforms_to_the_sandbox(probe_result):
    sandbox, task_id, result = probe_result
    tenant = {
        "env_name": sandbox.tenant,
        "env_id": sandbox.tenant_id,
        "org_name": sandbox.organization,
        "org_id": sandbox.org_id,
        "org_level": False,
    }
    for mode in ("pwd", "mfa", "api_key", "pwd_key_lazy"):
        assert result[mode] == tenant, mode
    assert (result["pwd_user"], result["mfa_user"], result["org_user"]) == (
        sandbox.user,
        "mfa@example.com",
        sandbox.user,
    )
    assert result["org"]["org_level"] is True
    assert result["org"]["org_id"] == sandbox.org_id

    connector_id = result["connector_id"]
    assert result["connector_again"] == result["connector_by_name"] == connector_id
    assert result["schema"]["mdmCrosswalkTemplate"]["mdmCrossreference"] == {"probe_customers": ["id"]}

    rows = sandbox.staging("probe_customers", connector_id=connector_id)
    assert sorted(row["record"]["id"] for row in rows) == ["1", "2", "3", "4", "5"]  # exactly once each
    assert {row["batchId"] for row in rows} == {result["batch_id"]}
    batch = sandbox.batch(result["batch_id"])
    assert result["batch_id"] == f"{sandbox.tenant_id}-pycarol-{result['batch_id'].rsplit('-', 1)[1]}"
    assert (batch["sequences"], batch["missing_sequences"], batch["redeliveries"]) == (
        [1, 2, 3],
        [],
        0,
    )  # 2 + 1 chunks, then 1
    assert (batch["summary"]["totalRecords"], batch["summary"]["totalRequests"]) == (5, 3)
    assert (batch["totals_match"], batch["summaries_posted"]) == (True, 1)

    assert result["task_status"] == "RUNNING"
    assert result["add_log"] is True
    assert result["add_logs"] is True
    messages = [entry["mdmLogMessage"] for entry in sandbox.task(task_id)["logs"]]
    assert messages[:3] == ["probe: one log line", "probe: batch 1", "probe: batch 2"]
    assert messages[3].endswith("probe: via CarolHandler")
    assert [entry["mdmLogMessage"] for entry in result["logs"]] == messages

    assert result["settings"] == {
        "target_staging": "customers",
        "batch_size": 500,
        "threshold": 0.75,
        "enabled": True,
        "notes": None,
    }

    # Named query: three pages of two through one-use scroll ids, every matching record once.
    assert result["named"] == [c for c in PROBE_CUSTOMERS if c["region"] == "NE"]
    (process,) = sandbox.process_queries()
    assert result["process"]["mdmId"] == process["task_id"] and process["sql"] == "SELECT 1 AS id"
    assert process["params"]["entityTemplateName"] == "probe_dm" and process["params"]["saveCds"] == "True"


def test_pycarol_saw_no_unexpected_errors(probe_result):
    sandbox, _task_id, _result = probe_result
    errors = [(e["method"], e["path"], e["status"]) for e in sandbox.requests() if (e["status"] or 0) >= 400]
    expected = {
        ("POST", "/api/v1/connectors", 400),  # create again: 'already exists'
        ("GET", "/api/v2/staging/tables/probe_customers/schema", 404),  # before create_schema
        ("GET", "/api/v1/tenants/current", 400),  # the org-level client: no current tenant (ignored)
    }
    assert set(errors) <= expected, errors
    intake = sandbox.requests(path="/api/v2/staging/intake/probe_customers")
    assert all(e["query"].startswith("returnData=false&connectorId=") for e in intake)
