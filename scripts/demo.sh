#!/usr/bin/env bash
# make demo: start the Carol sandbox (with its BigQuery emulator), point the connections at it, and run an
# example DAG with `airflow dags test` (default carol_ingest_erp; DEMO_DAG=<dag_id> make demo for another).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
DAG_ID="${DEMO_DAG:-carol_ingest_erp}"
OUT="$ROOT/.sandbox"
LOG="$OUT/$DAG_ID.log"
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/example_dags"
mkdir -p "$OUT" "$AIRFLOW_HOME"

if [ ! -f "$ROOT/example_dags/$DAG_ID.py" ]; then
  echo "demo: no example DAG $DAG_ID; choose one of:" $(cd example_dags && ls *.py | sed 's/\.py$//') >&2
  exit 2
fi

echo "demo: migrating the Airflow metadata DB in $AIRFLOW_HOME"
airflow db migrate >"$OUT/db-migrate.log" 2>&1 || { tail -30 "$OUT/db-migrate.log"; exit 1; }

echo "demo: starting the Carol sandbox with its BigQuery emulator (carol-sandbox --bigquery)"
: >"$OUT/sandbox.out"
.venv/bin/carol-sandbox --port 0 --bigquery --state-dir "$OUT/state" >"$OUT/sandbox.out" 2>"$OUT/sandbox.log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  [ -s "$OUT/sandbox.out" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$OUT/sandbox.log"; exit 1; }
  sleep 0.2
done
[ -s "$OUT/sandbox.out" ] || { echo "demo: the sandbox did not start; see $OUT/sandbox.log"; exit 1; }
info="$(head -n1 "$OUT/sandbox.out")"

# carol_default: the sandbox (password auth) plus the BigQuery emulator's endpoints.
AIRFLOW_CONN_CAROL_DEFAULT="$(.venv/bin/python scripts/sandbox_info.py --connection "$info")"
# carol_erp_sqlite: the ERP database carol_ingest_erp seeds and queries (a fresh one per demo).
ERP_DB="$OUT/erp/erp.db"
rm -f "$ERP_DB"
AIRFLOW_CONN_CAROL_ERP_SQLITE="{\"conn_type\": \"sqlite\", \"host\": \"$ERP_DB\"}"
export AIRFLOW_CONN_CAROL_DEFAULT AIRFLOW_CONN_CAROL_ERP_SQLITE
url="$(.venv/bin/python scripts/sandbox_info.py --url "$info")"
echo "demo: sandbox at $url; running: airflow dags test $DAG_ID"

status=0
airflow dags test "$DAG_ID" >"$LOG" 2>&1 || status=$?
# `airflow dags test` runs every task in this process: all the task logs are in this one file.
echo "demo: task outcomes (from $LOG):"
.venv/bin/python scripts/sandbox_info.py --tasks "$LOG" || { [ "$status" -ne 0 ] || status=1; }
if [ "$status" -ne 0 ]; then
  grep -E "Traceback|Error|error" "$LOG" | cut -c1-220 | tail -15 || true
  echo "demo: FAILED (exit $status); the task logs: $LOG"
  exit "$status"
fi
echo
.venv/bin/python scripts/sandbox_info.py --summary "$info" || echo "demo: could not summarise the sandbox's state"
cat <<MSG

demo: DAG $DAG_ID succeeded against the Carol sandbox.
  task logs (airflow dags test output):  $LOG
  sandbox server log:                    $OUT/sandbox.log
  Airflow home (metadata DB, config):    $AIRFLOW_HOME
  ERP database (carol_ingest_erp):       $ERP_DB
  example DAGs:                          example_dags/
The sandbox (and its BigQuery emulator) stops when this script exits; it keeps no state.
Run another example with: DEMO_DAG=<dag_id> make demo   ($(cd example_dags && ls *.py | sed 's/\.py$//' | paste -sd' '))
MSG
