"""``[core] hostname_callable`` for the harness: each worker process reports its own name.

Every process of the harness runs on one host, so Airflow's default (the FQDN) would give every task
instance the same ``hostname``. The harness sets ``CAROL_DEPLOYMENT_HOSTNAME`` per process (``worker-1``,
``worker-2``, ...), and the task instances then say which worker ran them, as on separate machines.
"""

from __future__ import annotations

import os
import socket


def from_env() -> str:
    """``CAROL_DEPLOYMENT_HOSTNAME``, else the FQDN (Airflow's default)."""
    return os.environ.get("CAROL_DEPLOYMENT_HOSTNAME") or socket.getfqdn()
