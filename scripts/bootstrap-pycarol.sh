#!/usr/bin/env bash
# Build .venv-pycarol: the reference SDK (pycarol 2.56.15, unmodified) in its own virtualenv.
# It drags in pip-system-certs, which patches requests' trust store, so it must stay out of .venv.
# Idempotent: re-running on a green venv is a no-op. Used by tests/sandbox/test_pycarol_conformance.py.
set -euo pipefail
unset PYTHONDONTWRITEBYTECODE

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-pycarol"
CONSTRAINTS="$ROOT/constraints-pycarol.txt"
PYCAROL_VERSION="2.56.15"

if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" - <<PY 2>/dev/null
import importlib.metadata as m, sys
sys.exit(0 if m.version("pycarol") == "$PYCAROL_VERSION" else 1)
PY
then
    echo "bootstrap-pycarol: $VENV already has pycarol $PYCAROL_VERSION"
    exit 0
fi

if [[ -x "$ROOT/.venv/bin/uv" ]]; then
    UV="$ROOT/.venv/bin/uv"
elif command -v uv >/dev/null 2>&1; then
    UV="$(command -v uv)"
else
    UV=""
fi

[[ -x "$VENV/bin/python" ]] || python3.11 -m venv "$VENV"
if [[ -z "$UV" ]]; then
    "$VENV/bin/python" -m pip install -q uv
    UV="$VENV/bin/uv"
fi

CONSTRAINT_ARGS=()
[[ -f "$CONSTRAINTS" ]] && CONSTRAINT_ARGS=(-c "$CONSTRAINTS")
"$UV" pip install -q --python "$VENV/bin/python" "${CONSTRAINT_ARGS[@]}" "pycarol==$PYCAROL_VERSION"
"$VENV/bin/python" -c "import pycarol; print('bootstrap-pycarol: pycarol', pycarol.__version__, 'ready in $VENV')"

if [[ ! -f "$CONSTRAINTS" ]]; then
    "$UV" pip freeze --python "$VENV/bin/python" > "$CONSTRAINTS"
    echo "bootstrap-pycarol: wrote $CONSTRAINTS from this green install"
fi
