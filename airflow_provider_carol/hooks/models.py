"""Small domain values the Carol hooks return (plain, JSON-friendly, safe for XCom)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class CarolContext:
    """Where a connection lands: its tenant (environment) and organization, by id and name."""

    tenant_id: str | None
    tenant_name: str | None
    org_id: str | None
    org_name: str | None
    org_level: bool

    def as_dict(self) -> dict[str, Any]:
        """The context as a plain dict, e.g. for XCom."""
        return asdict(self)
