"""Hooks: the only place that knows Carol's URLs, headers, auth and retries.

``carol.CarolHook`` and ``carol_async.CarolAsyncHook`` are the public classes. The rest is grouped by
capability: ``core/`` (connection settings, auth, endpoints, the request pipeline and its two drivers),
``staging/``, ``tasks/``, ``bigquery/``, ``apps.py``, ``queries.py``, ``listings.py`` (what the event
triggers poll) and ``files.py`` (file formats every reader shares). Map: ``docs/architecture.md``.
"""
