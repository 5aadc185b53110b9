"""A local emulator of the Carol REST API (FastAPI + uvicorn), written from the wire protocol.

It never imports the hook, so the emulator cannot echo a client bug. Run it with ``carol-sandbox``
or through the pytest fixtures in :mod:`airflow_provider_carol.sandbox.pytest_plugin`.
"""

from airflow_provider_carol.optional import install_hint, missing_modules

if missing_modules("sandbox"):  # say what to install instead of failing on the first import below
    raise ImportError(install_hint("sandbox"))
