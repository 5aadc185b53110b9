"""Answer shapes: how the sandbox answers where Carol's answers are known in several forms, or not at all.

The defaults follow ``carol-evidence.md`` (what Carol answered to callers run against real tenants); each
alternative is another shape seen there, or a deliberately unreadable one, so a client can be tested
against all of them. ``POST /__sandbox/shapes`` switches them; ``reset`` restores the defaults.
"""

from __future__ import annotations

from typing import Any

from .errors import CarolError

#: Every switchable answer: its default first, then the alternatives.
CHOICES: dict[str, tuple[str, ...]] = {
    # POST .../aiprocesses/{pid}/execute/{name}: {"success": true, "data": task} (TR, CAM: RR).
    "execute": ("data", "top", "task_id", "data_task_id", "refused", "unreadable"),
    # POST v2/bigQuery/processQuery: no caller ever read it (NF); the task at the top level by default.
    "process_query": ("top", "data", "task_id", "data_task_id", "refused", "unreadable"),
    # GET v1/tenants/current in an org-level session: an error (pycarol errors="ignore"); status NF.
    "tenant_current_org": ("400", "401", "403", "404", "no_name"),
    # GET v1/tenants/current at tenant level: the tenant object (RR); "no_id" is deliberately wrong.
    "tenant_current": ("tenant", "no_id"),
    # GET v1/connectors/.../stats: aggs.<connector>.stagingEntityStats.<staging> = ? (NF; keys only seen).
    "stats_value": ("count", "number", "total", "doc_count", "unreadable"),
}
DEFAULTS = {name: choices[0] for name, choices in CHOICES.items()}


class Shapes:
    """The answer shapes in force (``reset`` restores :data:`DEFAULTS`)."""

    def __init__(self) -> None:
        self.current = dict(DEFAULTS)

    def reset(self) -> None:
        self.current = dict(DEFAULTS)

    def set(self, wanted: dict[str, Any]) -> dict[str, str]:
        """Switch some shapes; an unknown answer or shape is a 400 naming it (nothing is changed then)."""
        for name, shape in wanted.items():
            if name not in CHOICES:
                raise CarolError(400, f"Unknown answer {name!r}; known: {sorted(CHOICES)}", "shapes")
            if shape not in CHOICES[name]:
                raise CarolError(400, f"{name} shapes are {list(CHOICES[name])}, not {shape!r}", name)
        self.current.update(wanted)
        return dict(self.current)

    def task_start(self, answer: str, task: dict[str, Any]) -> dict[str, Any]:
        """The answer of a call that started ``task`` (execute or processQuery), in the shape in force."""
        shape = self.current[answer]
        return {
            "data": lambda: {"success": True, "data": task},
            "top": lambda: task,
            "task_id": lambda: {"taskId": task["mdmId"]},
            "data_task_id": lambda: {"success": True, "data": {"taskId": task["mdmId"]}},
            "refused": lambda: {"success": False, "errorMessage": "The process could not be started"},
            "unreadable": lambda: {"success": True, "data": {"status": "started"}},
        }[shape]()

    def tenant_current_org(self, org_json: dict[str, Any]) -> dict[str, Any]:
        """``tenants/current`` in an org-level session: raises the error in force, or a nameless tenant."""
        shape = self.current["tenant_current_org"]
        if shape == "no_name":
            return {"mdmId": None, "mdmOrgId": org_json["mdmId"], "mdmEntityType": "mdmTenant"}
        raise CarolError(int(shape), "This session is at organization level: there is no current tenant")

    def tenant(self, tenant_json: dict[str, Any]) -> dict[str, Any]:
        """``tenants/current`` at tenant level."""
        if self.current["tenant_current"] == "no_id":
            return {key: value for key, value in tenant_json.items() if key != "mdmId"}
        return tenant_json

    def stats_value(self, count: int) -> object:
        """One staging's value under ``stagingEntityStats``."""
        shape = self.current["stats_value"]
        if shape == "number":
            return count
        if shape == "unreadable":
            return {"size": str(count)}
        return {shape: count}
