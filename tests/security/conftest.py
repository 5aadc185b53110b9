"""Security suite fixtures: a sandbox seeded with distinctive credentials, and a scanner for them.

``secret_sandbox`` is a dedicated ``carol-sandbox`` started with ``CAROL_SANDBOX_PASSWORD`` and
``CAROL_SANDBOX_API_KEY`` set to values that appear nowhere else, so finding one in a log, an XCom, a
rendered field or a file proves it leaked.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from airflow_provider_carol.sandbox.control import Sandbox
from airflow_provider_carol.sandbox.pytest_plugin import start_sandbox, stop_sandbox
from tests.reliability.ledger import LEDGER

PASSWORD = "carol-pw-Q7v3xK9mT2wB"
API_KEY = "carol-ak-5Rz8Lp1Wn4HdYc"
MAX_SCAN_BYTES = 50 * 1024 * 1024


@pytest.fixture(scope="session")
def secret_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """A sandbox whose password and API key are the distinctive values above."""
    state_dir = tmp_path_factory.mktemp("secret-sandbox")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CAROL_SANDBOX_PASSWORD", PASSWORD)
        patch.setenv("CAROL_SANDBOX_API_KEY", API_KEY)
        process, info = start_sandbox(state_dir)
    sandbox = Sandbox(info)
    sandbox.state_dir = state_dir
    assert (sandbox.password, sandbox.api_key) == (PASSWORD, API_KEY)
    try:
        yield sandbox
    finally:
        sandbox.session.close()
        stop_sandbox(process)


def variants(secret: str) -> set[bytes]:
    """How a secret could appear: as is, URL-encoded, or JSON/unicode-escaped (ASCII secrets: same)."""
    return {secret.encode(), quote(secret, safe="").encode()}


def find_leaks(blobs: dict[str, bytes], secrets: dict[str, str]) -> list[str]:
    """``"<where>: <which secret>"`` for every blob that contains any form of any secret."""
    leaks = []
    for where, blob in blobs.items():
        for name, secret in secrets.items():
            if any(form in blob for form in variants(secret)):
                leaks.append(f"{where}: {name}")
    return leaks


def read_files(root: Path, *, since: float | None = None, exclude: tuple[Path, ...] = ()) -> dict[str, bytes]:
    """Every regular file under ``root`` (optionally only those modified after ``since``).

    ``os.walk`` rather than ``Path.rglob``: other processes create and delete directories in the shared
    temp directory while we walk it, and ``os.walk`` skips what vanished instead of raising.
    """
    blobs: dict[str, bytes] = {}
    for directory, subdirs, files in os.walk(root):
        here = Path(directory)
        subdirs[:] = [d for d in subdirs if not any((here / d).is_relative_to(e) for e in exclude)]
        for name in files:
            path = here / name
            try:
                stat = path.lstat()
                if not path.is_file() or path.is_symlink() or stat.st_size > MAX_SCAN_BYTES:
                    continue
                if since is not None and stat.st_mtime < since:
                    continue
                blobs[str(path)] = path.read_bytes()
            except OSError:  # vanished or unreadable
                continue
    return blobs


def metadata_rows() -> dict[str, bytes]:
    """Every XCom value and rendered template field in the test metadata DB, one blob each."""
    url = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    db = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        rows = {}
        for table, column in (("xcom", "value"), ("rendered_task_instance_fields", "rendered_fields")):
            for index, (value,) in enumerate(db.execute(f"SELECT {column} FROM {table}")):
                rows[f"{table}[{index}]"] = value if isinstance(value, bytes) else str(value).encode()
        return rows
    finally:
        db.close()


@pytest.fixture
def scan_started() -> float:
    return time.time() - 1


def count_figure(key: str, amount: int) -> None:
    LEDGER.figures[key] = LEDGER.figures.get(key, 0) + amount


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the security figures (leak checks, bad inputs) when this suite ran."""
    figures = {k: v for k, v in LEDGER.figures.items() if k.startswith("security:")}
    if figures:
        terminalreporter.section("Carol security figures")
        for name, value in figures.items():
            terminalreporter.write_line(f"{name.removeprefix('security: ')}: {value}")
