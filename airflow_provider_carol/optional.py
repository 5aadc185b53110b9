"""Optional dependencies: the parts a user only pays for when they use them.

``pip install airflow-provider-carol`` brings the hook, staging, long tasks and the log bridge. BigQuery
needs ``[bigquery]`` (the Google clients), ``CarolDuckDBOperator`` needs ``[duckdb]``, the Carol sandbox
needs ``[sandbox]``; ``[all]`` brings everything. A missing extra is a clear error naming the
``pip install`` to run, raised before anything is sent, never an ImportError at DAG parse.
"""

from __future__ import annotations

import importlib.util

#: What each extra provides, and the modules that show it is installed.
EXTRAS: dict[str, tuple[str, tuple[str, ...]]] = {
    "bigquery": (
        "BigQuery through Carol's temporary key",
        ("google.cloud.bigquery", "google.cloud.bigquery_storage_v1", "google.oauth2", "grpc"),
    ),
    "duckdb": ("CarolDuckDBOperator", ("duckdb",)),
    "sandbox": ("the Carol sandbox", ("fastapi", "uvicorn", "cryptography")),
}


def install_hint(extra: str) -> str:
    """What to tell a user who lacks ``extra``."""
    missing = ", ".join(missing_modules(extra))
    return (
        f"{EXTRAS[extra][0]} needs the optional dependencies of airflow-provider-carol[{extra}] "
        f"({missing} not installed): pip install 'airflow-provider-carol[{extra}]'."
    )


def missing_modules(extra: str) -> list[str]:
    """The modules of ``extra`` that cannot be imported here."""
    missing = []
    for module in EXTRAS[extra][1]:
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # a parent package is missing
            found = False
        if not found:
            missing.append(module)
    return missing


def require(extra: str) -> None:
    """Raise :class:`CarolConfigError` naming ``pip install 'airflow-provider-carol[extra]'`` if needed."""
    missing = missing_modules(extra)
    if missing:
        from airflow_provider_carol.exceptions import CarolConfigError  # lazily: the sandbox has no Airflow

        raise CarolConfigError(install_hint(extra))
