"""A small soak in the suite: 50,000 records with 5% of staging requests failing at random (seeded).

It runs ``benchmarks/soak_staging.py`` itself (the 1,000,000-record figure comes from the same script),
which starts its own sandbox (plain HTTP here) and exits 1 unless every record is stored exactly once
with an exact summary.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.reliability.ledger import LEDGER

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "soak_staging.py"


def test_soak_with_random_failures_stores_every_record_exactly_once(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    command = [
        sys.executable,
        str(SCRIPT),
        "--records",
        "50000",
        "--chunk-size",
        "250",
        "--seed",
        "3",
        "--pycarol-records",
        "0",
        "--http",  # a TLS drop mid-upload is pinned by the fault matrix (drop-before (TLS), large chunks)
        "--json",
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["exactly_once"] is True and figures["summary_exact"] is True
    assert figures["chunks"] == 200 and figures["records"] == 50_000
    # The seeded faults really fired (about 5% of ~200 requests), and every one was recovered from.
    assert 3 <= figures["faults_injected"] <= 30, figures
    # Every chunk, the schema read of the drift check, the summary, and one resend per injected fault.
    assert figures["staging_requests"] == figures["chunks"] + 2 + figures["faults_injected"]
    LEDGER.figures["soak (suite)"] = (
        f"{figures['records']:,} records, {figures['faults_injected']} of {figures['staging_requests']} "
        f"staging requests failed at random ({figures['faults']}): exactly once, summary exact"
    )
