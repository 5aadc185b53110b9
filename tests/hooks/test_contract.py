"""The wire contract: every endpoint the provider calls has a row, the docs page is the table, and the
README's known limits name every field read on an assumption."""

from __future__ import annotations

import re
from pathlib import Path

from airflow_provider_carol.hooks.core import contract, endpoints
from airflow_provider_carol.hooks.core.endpoints import Endpoint

REPO = Path(__file__).resolve().parents[2]


def defined_endpoints() -> dict[str, Endpoint]:
    return {name: value for name, value in vars(endpoints).items() if isinstance(value, Endpoint)}


def test_every_endpoint_the_provider_calls_has_exactly_one_contract_row():
    rows = [c.endpoint for c in contract.CONTRACTS]
    missing = [name for name, endpoint in defined_endpoints().items() if endpoint not in rows]
    assert missing == [], f"endpoints without a contract row: {missing}"
    assert len(rows) == len(set(rows)) == len(defined_endpoints())


def test_every_field_names_its_evidence_or_says_assumed():
    for row in (*contract.CONTRACTS, contract.ERROR_BODY):
        for field in row.fields:
            assert field.evidence.strip(), (str(row.endpoint), field.path)
            if not field.assumed:  # a source a reader can open: pycarol file:line, a caller, or the docs
                sources = r"pycarol|TR |CAM |CJS |ADVPL|docs\.carol\.ai|TDN|carol-evidence|PR #"
                assert re.search(sources, field.evidence), (str(row.endpoint), field.path, field.evidence)


def test_the_docs_page_is_the_table():
    page = (REPO / "docs" / "carol-api-contract.md").read_text()
    assert page == contract.markdown(), (
        "docs/carol-api-contract.md is stale: "
        "python -m airflow_provider_carol.hooks.core.contract > docs/carol-api-contract.md"
    )


def test_the_readme_known_limits_name_every_assumed_field():
    readme = (REPO / "README.md").read_text()
    limits = readme[readme.index("## Known limits"):]
    for endpoint, field in contract.assumed_fields():
        line = next((ln for ln in limits.splitlines() if f"`{endpoint}`" in ln), "")
        assert f"`{field.path}`" in line, f"README known limits: {endpoint} {field.path}"
