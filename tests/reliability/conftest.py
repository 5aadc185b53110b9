"""Reliability suite: collect each fault-matrix cell's outcome and print the matrix after the run.

Cells are recorded in ``tests.reliability.ledger.LEDGER`` (one per test) and printed by
``pytest_terminal_summary`` as a table: rows are operators, columns are faults; ``ok`` = succeeded with
exactly-once effects, ``fail`` = failed with a clear message and no partial success reported, ``BUG`` =
anything else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.reliability.ledger import LEDGER, Ledger


@pytest.fixture
def ledger() -> Ledger:
    return LEDGER


def _table(ledger: Ledger) -> list[str]:
    rows, faults = ledger.row_order, ledger.fault_order
    width = max([len(r) for r in rows] + [10])
    widths = [max(len(f), 4) for f in faults]
    lines = [" " * width + " | " + " | ".join(f.ljust(w) for f, w in zip(faults, widths, strict=True))]
    lines.append("-" * len(lines[0]))
    for row in rows:
        cells = []
        for fault, w in zip(faults, widths, strict=True):
            cell = ledger.cells.get((row, fault))
            cells.append(("-" if cell is None else cell.outcome).ljust(w))
        lines.append(row.ljust(width) + " | " + " | ".join(cells))
    return lines


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the fault matrix and the figures (only when reliability/security tests ran)."""
    if not LEDGER.cells and not LEDGER.figures:
        return
    write = terminalreporter.write_line
    terminalreporter.section("Carol fault matrix")
    if LEDGER.cells:
        for line in _table(LEDGER):
            write(line)
        cells = list(LEDGER.cells.values())
        bugs = [c for c in cells if c.outcome != c.expected]
        injected = sum(c.faults_injected for c in cells)
        write("")
        write(
            f"{len(cells)} cells, {injected} faults injected: "
            f"{sum(c.outcome == 'ok' for c in cells)} succeeded exactly once, "
            f"{sum(c.outcome == 'fail' for c in cells)} failed cleanly (clear message, no summary for a "
            f"partial batch, nothing done twice), {len(bugs)} not as expected."
        )
        if terminalreporter.config.option.verbose > 0:
            for cell in cells:
                if cell.outcome == "fail":
                    write(f"  {cell.row} x {cell.fault}: {cell.detail[:200]}")
        for cell in bugs:
            write(
                f"  NOT AS EXPECTED {cell.row} x {cell.fault}: expected {cell.expected}, got "
                f"{cell.outcome}: {cell.detail}"
            )
    for name, value in LEDGER.figures.items():
        if not name.startswith("security:"):
            write(f"{name}: {value}")


@pytest.fixture
def pid_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where a crash test's first try writes its task's pid (``tests.dagutil.crash_test_hooks``)."""
    path = tmp_path / "task.pid"
    monkeypatch.setenv("CAROL_CRASH_PID_FILE", str(path))
    return path
