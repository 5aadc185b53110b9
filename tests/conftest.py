"""Suite-wide setup: a private Airflow home and metadata DB, set before anything imports Airflow.

DAG-level tests use the session-scoped ``airflow_db`` fixture; hook and operator tests stay DB-free.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_HOME = tempfile.mkdtemp(prefix="carol-airflow-home-")
REPO = Path(__file__).resolve().parent.parent
os.environ["AIRFLOW_HOME"] = _HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
# Test DAGs live in tests/dags: symlinks to every example DAG plus test-only DAGs.
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "tests" / "dags")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME}/airflow.db"
os.environ["AIRFLOW__CORE__TEST_CONNECTION"] = "Enabled"
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

import pytest  # noqa: E402

# The sandbox fixtures (users add the same line to their conftest) and the local BigQuery emulator.
pytest_plugins = ["airflow_provider_carol.sandbox.pytest_plugin", "tests.bigquery_fixtures"]


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    """The throw-away AIRFLOW_HOME of this test session."""
    return Path(_HOME)


@pytest.fixture(scope="session")
def airflow_db(airflow_home: Path) -> None:
    """A migrated metadata DB, once per session (only DAG-level tests need it)."""
    from airflow.utils import db

    db.resetdb()
