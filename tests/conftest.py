"""Suite-wide setup: a private Airflow home and metadata DB, set before anything imports Airflow.

DAG-level tests use the session-scoped ``airflow_db`` fixture; hook and operator tests stay DB-free.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from importlib import metadata
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
# Airflow 2's unit-test configuration defaults to the LocalExecutor, which refuses this SQLite DB.
if metadata.version("apache-airflow").startswith("2."):
    os.environ["AIRFLOW__CORE__EXECUTOR"] = "SequentialExecutor"
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
# One Fernet key for the session and every child process it starts (dag.test() runs in subprocesses):
# without it each Airflow process makes its own and cannot read what another encrypted in the shared DB.
if not os.environ.get("AIRFLOW__CORE__FERNET_KEY"):
    from cryptography.fernet import Fernet

    os.environ["AIRFLOW__CORE__FERNET_KEY"] = Fernet.generate_key().decode()

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


@pytest.fixture
def fresh_connection_form() -> Iterator[None]:
    """The connection form as an API server builds it on its first request for it.

    Airflow 3.1 collects a hook's form widgets when ``ProvidersManager`` first imports that hook; when
    something else imported it earlier in the process (a connection test, a DAG run) without the UI's
    wtforms stand-ins, the widgets are missing for the life of the process. Reset the (singleton)
    manager and the form cache before and after, as Airflow's own tests do. 3.1's form builder also
    leaves its ``MagicMock`` stand-ins for wtforms/flask_appbuilder in ``sys.modules``; they are removed
    afterwards so later hook lookups see the real (absent) packages again.
    """
    import sys
    import types

    from airflow.providers_manager import ProvidersManager

    from airflow_provider_carol.compat import AIRFLOW_V_3_0_PLUS

    def forget() -> None:
        ProvidersManager()._cleanup()
        if AIRFLOW_V_3_0_PLUS:  # 2.11's form is the webserver's (FAB): nothing cached besides the manager
            from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

            HookMetaService.hook_meta_data.cache_clear()

    stand_ins = ("wtforms", "flask_babel", "flask_appbuilder")
    before = {name for name in sys.modules if name.split(".")[0] in stand_ins}
    forget()
    yield
    for name in [n for n in sys.modules if n.split(".")[0] in stand_ins and n not in before]:
        if not isinstance(sys.modules[name], types.ModuleType):  # a stand-in, not the real package
            del sys.modules[name]
    forget()
