#!/usr/bin/env bash
# Run the whole suite (make test). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
scripts/lint.sh
# The browser test writes its screenshots here instead of over the committed docs/img ones.
export CAROL_UI_SCREENSHOT_DIR="${CAROL_UI_SCREENSHOT_DIR:-$(mktemp -d)}"
exec .venv/bin/python -m pytest -p no:cacheprovider -q "$@"
