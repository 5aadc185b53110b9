#!/usr/bin/env bash
# Create .venv (Python 3.11) with uv and install the provider + test tools, pinned by constraints.txt.
# Idempotent: a second run only reinstalls when pyproject.toml or constraints.txt changed.
set -euo pipefail
cd "$(dirname "$0")/.."
unset PYTHONDONTWRITEBYTECODE

pick_python() {
  for candidate in "${PYTHON:-}" python3.11 python3.12 python3.13 python3; do
    [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 || continue
    if "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
      echo "$candidate"; return
    fi
  done
  echo "bootstrap: no Python >= 3.11 found (install python3.11)" >&2; exit 1
}

if [ ! -x .venv/bin/uv ]; then
  echo "bootstrap: creating .venv"
  "$(pick_python)" -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check uv 2>&1 | grep -v "is ignored" || true
fi
stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  echo "bootstrap: installing airflow-provider-carol and its test tools into .venv"
  .venv/bin/uv pip install -q --python .venv/bin/python -c constraints.txt -e '.[test]'
  touch "$stamp"
fi
scripts/bootstrap-pycarol.sh      # the reference SDK in its own venv (conformance tests, benchmarks)
scripts/bootstrap-browser.sh      # Debian's Chromium for the connection-form browser test
scripts/bootstrap-bigquery.sh     # the local BigQuery emulator (Python 3.13, its own venv)
scripts/bootstrap-deployment.sh   # Debian's PostgreSQL and redis-server for tests/deployment (not started)
