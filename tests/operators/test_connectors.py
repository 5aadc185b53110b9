"""CarolCreateConnectorOperator against the sandbox: get-or-create, idempotent, never deletes."""

from __future__ import annotations

from airflow_provider_carol.operators.connectors import CarolCreateConnectorOperator


def test_creates_once_then_returns_the_same_id(carol_sandbox):
    op = CarolCreateConnectorOperator(task_id="connector", name="erp", label="ERP", group_name="ERP")
    first = op.execute(context={})
    second = CarolCreateConnectorOperator(task_id="again", name="erp").execute(context={})
    assert first == second
    found = carol_sandbox.session.get(
        f"{carol_sandbox.url}/api/v1/connectors/name/erp",
        headers={"x-auth-key": carol_sandbox.api_key, "x-auth-connectorid": carol_sandbox.connector_id},
    ).json()
    assert (found["mdmId"], found["mdmGroupName"], found["mdmLabel"]) == (first, "ERP", {"en-US": "ERP"})
    methods = [(r["method"], r["path"]) for r in carol_sandbox.requests(path="/api/v1/connectors*")]
    assert methods.count(("POST", "/api/v1/connectors")) == 1
    assert not [m for m, _ in methods if m == "DELETE"]


def test_an_existing_connector_is_returned_untouched(carol_sandbox):
    existing = CarolCreateConnectorOperator(task_id="c", name="sandbox_connector").execute(context={})
    assert existing == carol_sandbox.connector_id
    assert not carol_sandbox.requests(method="POST", path="/api/v1/connectors")


def test_the_operator_does_no_io_when_built():
    op = CarolCreateConnectorOperator(task_id="c", name="x", carol_conn_id="missing")
    assert op.template_fields == ("name", "connector_label", "group_name") and "hook" not in op.__dict__
