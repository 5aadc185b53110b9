#!/usr/bin/env bash
# Build .venv-bq-emulator: the local BigQuery emulator (local-bigquery 0.3.2) in its own Python 3.13
# virtualenv, plus the DuckDB 1.5.5 extension wheels it needs offline (ducklake, icu, spatial).
# Why this emulator and these pins: docs/bigquery.md. The tests start it as a subprocess
# (tests/bigquery_fixtures.py); nothing here runs a server.
# Idempotent: a green venv whose extensions are in place is a no-op (a stamp records the pins).
set -euo pipefail
unset PYTHONDONTWRITEBYTECODE

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CAROL_BQ_EMULATOR_VENV:-$ROOT/.venv-bq-emulator}"
CONSTRAINTS="$ROOT/constraints-bigquery.txt"
PINS=(
    "local-bigquery==0.3.2"
    "duckdb==1.5.5"
    "duckdb-extensions==1.5.5"
    "duckdb-extension-ducklake==1.5.5"
    "duckdb-extension-icu==1.5.5"
    "duckdb-extension-spatial==1.5.5"
)
STAMP="$VENV/.carol-bq-installed"
WANT="${PINS[*]}"
EXT_DIR="${HOME}/.duckdb/extensions/v1.5.5"

extensions_in_place() {
    local arch_dir
    for ext in ducklake icu spatial; do
        arch_dir=$(ls -d "$EXT_DIR"/*/ 2>/dev/null | head -n1 || true)
        [[ -n "$arch_dir" && -f "$arch_dir/$ext.duckdb_extension" ]] || return 1
    done
}

if [[ -x "$VENV/bin/local-bigquery" && -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]] && extensions_in_place; then
    echo "bootstrap-bigquery: $VENV is ready (local-bigquery 0.3.2)"
    exit 0
fi

pick_python() {
    local candidate
    if command -v pyenv >/dev/null 2>&1; then
        candidate="$(pyenv root)/versions/3.13.0/bin/python3.13"
        [[ -x "$candidate" ]] && { echo "$candidate"; return; }
    fi
    for candidate in "${BQ_EMULATOR_PYTHON:-}" python3.13; do
        [[ -n "$candidate" ]] && command -v "$candidate" >/dev/null 2>&1 || continue
        if "$candidate" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 13) else 1)'; then
            command -v "$candidate"; return
        fi
    done
    echo "bootstrap-bigquery: Python 3.13 not found (pyenv 3.13.0 or python3.13 on PATH); the" \
         "BigQuery emulator needs it (see docs/bigquery.md)" >&2
    exit 1
}

if [[ -x "$ROOT/.venv/bin/uv" ]]; then
    UV="$ROOT/.venv/bin/uv"
elif command -v uv >/dev/null 2>&1; then
    UV="$(command -v uv)"
else
    UV=""
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "bootstrap-bigquery: creating $VENV"
    "$(pick_python)" -m venv "$VENV"
fi
if [[ -z "$UV" ]]; then
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check uv
    UV="$VENV/bin/uv"
fi

CONSTRAINT_ARGS=()
[[ -f "$CONSTRAINTS" ]] && CONSTRAINT_ARGS=(-c "$CONSTRAINTS")
echo "bootstrap-bigquery: installing ${PINS[*]}"
"$UV" pip install -q --python "$VENV/bin/python" "${CONSTRAINT_ARGS[@]}" "${PINS[@]}"

# The extensions are copied into ~/.duckdb/extensions/v1.5.5/<platform>/, where DuckDB's INSTALL and
# autoload find them instead of downloading (there is no network on CI).
"$VENV/bin/python" - <<'PY'
from duckdb_extensions import import_extension
for name in ("ducklake", "icu", "spatial"):
    import_extension(name)
PY
"$VENV/bin/local-bigquery" --help >/dev/null

if [[ ! -f "$CONSTRAINTS" ]]; then
    "$UV" pip freeze --python "$VENV/bin/python" > "$CONSTRAINTS"
    echo "bootstrap-bigquery: wrote $CONSTRAINTS from this green install"
fi
echo "$WANT" > "$STAMP"
echo "bootstrap-bigquery: ready in $VENV"
