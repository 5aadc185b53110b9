#!/usr/bin/env bash
# Run the whole suite (make test). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -p no:cacheprovider -q "$@"
