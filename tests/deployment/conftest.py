"""One deployment for every test under tests/deployment: started on first use, stopped after the last one.

The fixtures are package-scoped, so the rest of the suite does not run beside an idle deployment.

When a deployment test fails, the tails of every process log (PostgreSQL, Redis, the sandbox, each
Airflow process) are attached to its report. The start-up timings are printed in the terminal summary.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.deployment.harness import Deployment, running_deployment

_STATE: dict[str, Any] = {}


@pytest.fixture(scope="package")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """The running deployment (CeleryExecutor, PostgreSQL, Redis, sandbox), shared by tests/deployment."""
    root = tmp_path_factory.mktemp("deployment")
    _STATE["root"] = root
    with running_deployment(root) as running:
        _STATE["timings"] = dict(running.timings)
        _STATE["deployment"] = running
        yield running
        _STATE.pop("deployment", None)
    _STATE["stopped"] = True


@pytest.fixture(scope="package")
def observations(deployment: Deployment) -> Iterator[dict[str, Any]]:
    """What the tests saw (states, hosts, counts), written to ``observations.json`` in the deployment dir."""
    seen: dict[str, Any] = {}
    _STATE["observations"] = seen
    yield seen
    (deployment.root / "observations.json").write_text(json.dumps(seen, indent=2, default=str))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    running = _STATE.get("deployment")
    if report.failed and running is not None and "deployment" in item.keywords:
        report.sections.append(("deployment process logs", running.log_tails()))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    timings = _STATE.get("timings")
    if timings:
        steps = json.dumps({k: round(v, 1) for k, v in timings.items()})
        terminalreporter.write_line(
            f"deployment: ready in {timings['dags_parsed']:.1f} s (seconds since start: {steps}); "
            f"logs in {_STATE['root']}"
        )
    if _STATE.get("observations"):
        terminalreporter.write_line(
            "deployment observations: " + json.dumps(_STATE["observations"], default=str)
        )
