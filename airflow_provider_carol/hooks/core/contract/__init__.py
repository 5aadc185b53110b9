"""The wire contract: for every endpoint the provider calls, what it sends and each answer field it reads,
with the evidence for that field, or ``assumed``.

Evidence, as ``../shared/carol-evidence.md`` gathers it: pycarol 2.56.15 ``file:line``; a public caller run
against real tenants (TR = rafarui/techfin-reprocess, CAM = RWallan/carol-app-monitor, CJS =
totvslabs/caroljs, ADVPL = TOTVS's Protheus client); a Carol docs page. ``docs/carol-api-contract.md`` is
generated from this table (``python -m airflow_provider_carol.hooks.core.contract``) and ``carol-check``
compares a tenant's answers with it. A test fails when an endpoint of :mod:`.endpoints` has no row.
"""

from __future__ import annotations

from airflow_provider_carol.hooks.core.contract.model import ASSUMED, Contract, Field
from airflow_provider_carol.hooks.core.contract.page import markdown
from airflow_provider_carol.hooks.core.contract.table import (
    CONTRACTS,
    ERROR_BODY,
    assumed_fields,
    contract_for,
)

__all__ = [
    "ASSUMED",
    "CONTRACTS",
    "ERROR_BODY",
    "Contract",
    "Field",
    "assumed_fields",
    "contract_for",
    "markdown",
]
