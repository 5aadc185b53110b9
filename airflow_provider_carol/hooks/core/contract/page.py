"""``docs/carol-api-contract.md``, generated from the table."""

from __future__ import annotations

from airflow_provider_carol.hooks.core.contract.table import CONTRACTS, ERROR_BODY


def markdown() -> str:
    """``docs/carol-api-contract.md``: this table as a page."""
    lines = [
        "# Carol API contract",
        "",
        "Every endpoint the provider calls, what it sends, each answer field it reads and the evidence for "
        "that field, or **assumed**. Generated from `airflow_provider_carol/hooks/core/contract/` "
        "(`python -m airflow_provider_carol.hooks.core.contract > docs/carol-api-contract.md`); a test "
        "keeps the two equal and fails when an endpoint has no row.",
        "",
        "Evidence keys: *pycarol 2.56.15 file:line* (its code); *TR* rafarui/techfin-reprocess, *CAM* "
        "RWallan/carol-app-monitor, *CJS* totvslabs/caroljs, *ADVPL* TOTVS's Protheus client, all run "
        "against real tenants (RR); *D* Carol's docs. The collected evidence is `carol-evidence.md`.",
        "",
        "`carol-check` (see the README) reads your tenant's answers to the GET endpoints below and compares "
        "them with this table, field names only.",
        "",
    ]
    for contract in (*CONTRACTS, ERROR_BODY):
        lines += [f"## `{contract.endpoint}`", "", f"Request: {contract.request}", ""]
        if contract.fields:
            lines += ["| field | alternatives | required | evidence |", "|---|---|---|---|"]
            for f in contract.fields:
                alternatives = ", ".join(f"`{a}`" for a in f.alternatives) or "-"
                evidence = f"**{f.evidence}**" if f.assumed else f.evidence
                lines.append(
                    f"| `{f.path}` | {alternatives} | {'yes' if f.required else 'no'} | {evidence} |"
                )
            lines.append("")
        if contract.answer:
            lines += [contract.answer, ""]
    return "\n".join(lines)
