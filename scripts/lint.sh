#!/usr/bin/env bash
# make lint (also the first step of make test): ruff, ruff format and mypy on the package.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/ruff format --check airflow_provider_carol
.venv/bin/mypy
