#!/usr/bin/env bash
# Tools for tests/ui (the connection form driven in a real browser):
#   - Debian's Chromium at /usr/bin/chromium (apt; CI runs as root on a clean Debian machine). Playwright
#     never downloads a browser here: the test launches this binary through `executable_path`.
#   - the Python `playwright` driver comes with the test extra (pyproject.toml).
# Idempotent: a no-op when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
unset PYTHONDONTWRITEBYTECODE

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "bootstrap-browser: /usr/bin/chromium is missing; run as root or 'sudo apt-get install -y chromium'" >&2
    exit 1
  fi
  echo "bootstrap-browser: installing Debian's chromium (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

echo "bootstrap-browser: $(/usr/bin/chromium --version 2>/dev/null) ready"
