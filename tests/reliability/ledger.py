"""The ledger of the reliability and security suites: fault-matrix cells and published figures.

A plain module (not a conftest) so both suites import the same instance.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Cell:
    row: str
    fault: str
    expected: str
    outcome: str
    faults_injected: int
    detail: str = ""


@dataclass
class Ledger:
    """Everything the reliability and security suites measured in this session."""

    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)
    row_order: list[str] = field(default_factory=list)
    fault_order: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def add(self, cell: Cell) -> None:
        if cell.row not in self.row_order:
            self.row_order.append(cell.row)
        if cell.fault not in self.fault_order:
            self.fault_order.append(cell.fault)
        self.cells[(cell.row, cell.fault)] = cell


LEDGER = Ledger()

# The last exception line a failed task printed, e.g. "airflow_provider_carol.exceptions.CarolApiError: ..."
_EXCEPTION_LINE = re.compile(r"^([\w.]+(?:Error|Exception|Failed|NotFound|Timeout)): (.+)$", re.MULTILINE)


def task_error(output: str) -> tuple[str, str] | None:
    """(exception class, message) of the last task failure in captured ``dag.test()`` output."""
    found = _EXCEPTION_LINE.findall(output)
    return found[-1] if found else None
