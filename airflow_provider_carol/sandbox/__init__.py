"""A local emulator of the Carol REST API (FastAPI + uvicorn), written from the wire protocol.

It never imports the hook, so the emulator cannot echo a client bug. Run it with ``carol-sandbox``
or through the pytest fixtures in :mod:`airflow_provider_carol.sandbox.pytest_plugin`.
"""
