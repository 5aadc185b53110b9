#!/usr/bin/env bash
# make demo: start the Carol sandbox, point carol_default at it, run an example DAG with `airflow dags test`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
DAG_ID="${DEMO_DAG:-carol_api_call}"
OUT=.sandbox
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/example_dags"
mkdir -p "$OUT" "$AIRFLOW_HOME"

echo "demo: migrating the Airflow metadata DB in $AIRFLOW_HOME"
airflow db migrate >"$OUT/db-migrate.log" 2>&1 || { tail -30 "$OUT/db-migrate.log"; exit 1; }

echo "demo: starting the Carol sandbox"
: >"$OUT/sandbox.out"
.venv/bin/carol-sandbox --port 0 --state-dir "$OUT/state" >"$OUT/sandbox.out" 2>"$OUT/sandbox.log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 150); do
  [ -s "$OUT/sandbox.out" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$OUT/sandbox.log"; exit 1; }
  sleep 0.2
done
info="$(head -n1 "$OUT/sandbox.out")"
AIRFLOW_CONN_CAROL_DEFAULT="$(.venv/bin/python scripts/sandbox_info.py --connection "$info")"
export AIRFLOW_CONN_CAROL_DEFAULT
url="$(.venv/bin/python -c 'import json,sys; print(json.loads(sys.argv[1])["url"])' "$info")"
echo "demo: sandbox at $url; running: airflow dags test $DAG_ID"

status=0
airflow dags test "$DAG_ID" >"$OUT/dags-test.log" 2>&1 || status=$?
grep -E "\[DAG TEST\]|Returned value|DagRun Finished|ERROR|Error|Traceback" "$OUT/dags-test.log" | cut -c1-220 || true
if [ "$status" -ne 0 ]; then
  echo "demo: FAILED (exit $status); full log: $OUT/dags-test.log"
  exit "$status"
fi
.venv/bin/python scripts/sandbox_info.py --summary "$info" || true
cat <<MSG

demo: DAG $DAG_ID succeeded against the Carol sandbox.
  task log (airflow dags test output): $OUT/dags-test.log
  sandbox server log:                  $OUT/sandbox.log
  Airflow home (metadata DB, logs):     $AIRFLOW_HOME
  example DAGs:                         example_dags/
Run another example with: DEMO_DAG=<dag_id> make demo
MSG
