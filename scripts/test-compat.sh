#!/usr/bin/env bash
# make test-compat: the compatibility jobs, i.e. the hook, operator, sensor/trigger, provider-info and
# dag.test() tests on the older supported Airflow lines, each in its own venv. The main suite
# (make test, .venv) covers Airflow 3.3.2 on Python 3.11; these jobs cover the other lines and, between
# them, every supported Python (3.11-3.13):
#
#   job           Airflow  Python   venv                 constraints
#   airflow-2.11  2.11.2   3.11.7   .venv-airflow-2.11   constraints-airflow-2.11.txt
#   airflow-3.0   3.0.6    3.12.1   .venv-airflow-3.0    constraints-airflow-3.0.txt
#   airflow-3.1   3.1.8    3.11.7   .venv-airflow-3.1    constraints-airflow-3.1.txt
#   airflow-3.2   3.2.2    3.13.0   .venv-airflow-3.2    constraints-airflow-3.2.txt
#
# Usage: scripts/test-compat.sh [--refresh-constraints] [-j LANES] [job ...] [-- pytest args]
#   no job: every job. -j LANES (or TEST_COMPAT_LANES): run that many jobs side by side, each job's
#   output printed whole when it ends (default 1: one after the other, output live; CI uses 2).
#   Each venv is (re)built only when pyproject.toml, the job's constraints file or
#   the job's pins changed (a stamp in the venv records them), so a second run only runs the tests.
#   --refresh-constraints: resolve the job from PyPI again (its seed pins only), freeze that install
#   (`uv pip freeze`) and, once the job's tests pass on it, replace the job's constraints file.
# Pythons come from pyenv (PYENV_ROOT, default /root/.pyenv); a missing one fails the job with a message.
# Prints each job's wall time and pytest's counts; exits non-zero if any job failed (all jobs still run).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
unset PYTHONDONTWRITEBYTECODE
export UV_PYTHON_DOWNLOADS=never

# Lineage: the parts that depend on the Airflow line (the provider runs without OpenLineage, object-store
# names, facets); the full lineage DAG (every operator's datasets) runs on 3.3 only: it costs minutes.
TESTS=(tests/hooks tests/operators tests/sensors tests/triggers tests/example_dags
       tests/log tests/test_compat.py tests/test_provider_info.py tests/test_dist.py
       tests/test_lineage.py::test_operators_import_and_build_without_the_openlineage_provider
       tests/test_lineage.py::test_a_send_dag_runs_unchanged_without_the_openlineage_provider
       tests/test_lineage.py::test_file_names_follow_the_openlineage_spec_and_drop_connection_ids
       tests/test_lineage.py::test_staging_schema_facet_keeps_nested_objects_and_is_absent_without_a_schema
       tests/test_lineage.py::test_batch_results_are_summed_per_staging_table)
# Slowest first: lanes are dealt jobs in this order (3.1 and 3.2 spend ~3 s more per dag.test() task).
ALL_JOBS=(airflow-3.1 airflow-3.2 airflow-3.0 airflow-2.11)

# job -> "python-version airflow-version"; seed pins are what --refresh-constraints resolves with
# besides the provider: versions the job's Airflow needs but does not cap itself.
job_python() {
  case "$1" in airflow-2.11|airflow-3.1) echo 3.11.7 ;; airflow-3.0) echo 3.12.1 ;; airflow-3.2) echo 3.13.0 ;; esac
}
job_airflow() {
  case "$1" in airflow-2.11) echo 2.11.2 ;; airflow-3.0) echo 3.0.6 ;; airflow-3.1) echo 3.1.8 ;; airflow-3.2) echo 3.2.2 ;; esac
}
job_seeds() {
  case "$1" in
    airflow-2.11|airflow-3.1) ;;
    # 3.0.6 caps none of the first four; newer ones break its API server and in-process Execution API
    # (dag.test()). These are the versions 3.1.8's own caps resolve to. flask-appbuilder (wtforms,
    # flask-babel): 3.0's API server builds a provider's connection form only when they are installed
    # (the FAB provider brings them), so the job runs the form tests as such a deployment would.
    airflow-3.0) echo "cadwyn==5.4.6" "fastapi==0.117.1" "starlette==0.48.0" "universal-pathlib==0.2.6" \
                      "flask-appbuilder" ;;
    # 3.2.2 caps neither, and its in-process Execution API (dag.test()) breaks with both: svcs 26.2
    # (KeyError 'svcs_registry') and fastapi 0.137+ (PydanticUserError on TITerminalStatePayload).
    # 3.3.2 itself requires fastapi<0.137.
    airflow-3.2) echo "svcs<26.2" "fastapi<0.137" ;;
  esac
}

refresh=0
jobs=()
pytest_args=()
lanes="${TEST_COMPAT_LANES:-1}"
while [ $# -gt 0 ]; do
  case "$1" in
    --refresh-constraints) refresh=1 ;;
    -j|--lanes) shift; lanes="$1" ;;
    --) shift; pytest_args=("$@"); break ;;
    airflow-2.11|airflow-3.0|airflow-3.1|airflow-3.2) jobs+=("$1") ;;
    *) echo "test-compat: unknown argument '$1' (jobs: ${ALL_JOBS[*]})" >&2; exit 2 ;;
  esac
  shift
done
[ ${#jobs[@]} -gt 0 ] || jobs=("${ALL_JOBS[@]}")

UV="$ROOT/.venv/bin/uv"
if [ ! -x "$UV" ]; then
  echo "test-compat: $UV is missing; run 'make bootstrap' first (make test-compat does)" >&2
  exit 1
fi

find_python() {  # the pyenv interpreter of exactly this version, or nothing
  local version="$1" root="${PYENV_ROOT:-}"
  if [ -z "$root" ]; then
    root="$(pyenv root 2>/dev/null || echo /root/.pyenv)"
  fi
  local python="$root/versions/$version/bin/python"
  [ -x "$python" ] && echo "$python"
}

build_venv() {  # job venv python constraints -> 0 when the venv is ready
  local job="$1" venv="$2" python="$3" constraints="$4" airflow seeds want stamp
  airflow="$(job_airflow "$job")"
  read -r -a seeds <<< "$(job_seeds "$job")"
  stamp="$venv/.carol-compat-installed"
  want="$(cat pyproject.toml "$constraints" 2>/dev/null | sha256sum | cut -c1-16) $python $airflow ${seeds[*]}"
  if [ "$refresh" -eq 0 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "test-compat[$job]: $venv is up to date"
    return 0
  fi
  if ! "$venv/bin/python" -c "import platform, sys; sys.exit(platform.python_version() != '$(job_python "$job")')" \
       2>/dev/null; then
    rm -rf "$venv"
    "$UV" venv -q --python "$python" "$venv" || return 1
  fi
  local args=(pip install -q --python "$venv/bin/python" -e '.[test]' "apache-airflow==$airflow")
  if [ "$refresh" -eq 1 ]; then
    echo "test-compat[$job]: resolving apache-airflow==$airflow ${seeds[*]} from PyPI"
    "$UV" "${args[@]}" "${seeds[@]}" || return 1
    {
      echo "# Project-owned constraints of the airflow-${airflow%.*} compat job (scripts/test-compat.sh):"
      echo "# apache-airflow==$airflow on Python $(job_python "$job"), resolved by uv with ${seeds[*]:-no extra pins},"
      echo "# frozen from a green install (scripts/test-compat.sh --refresh-constraints $job)."
      "$UV" pip freeze -q --python "$venv/bin/python" --exclude-editable
    } > "$constraints.new" || return 1
    want="$(cat pyproject.toml "$constraints.new" | sha256sum | cut -c1-16) $python $airflow ${seeds[*]}"
  else
    if [ ! -f "$constraints" ]; then
      echo "test-compat[$job]: $constraints is missing (scripts/test-compat.sh --refresh-constraints $job)" >&2
      return 1
    fi
    echo "test-compat[$job]: installing into $venv (pinned by $constraints)"
    # The seeds are installed too, not only pinned: flask-appbuilder is no dependency of Airflow 3.0's
    # core or of the provider, and a constraints file alone installs nothing.
    "$UV" "${args[@]}" "${seeds[@]}" -c "$constraints" || return 1
  fi
  echo "$want" > "$stamp"
}

# One job: build its venv, run the tests; the summary line goes to $LOGS/<job>.summary. Output goes
# to stdout (serial) or, with lanes, to $LOGS/<job>.log, printed whole when the job ends.
run_job() {
  local job="$1" start pyver venv constraints python built versions log rc counts wall line
  start=$(date +%s)
  pyver="$(job_python "$job")"
  venv="$ROOT/.venv-$job"
  constraints="$ROOT/constraints-$job.txt"
  python="$(find_python "$pyver")"
  if [ -z "$python" ]; then
    echo "test-compat[$job]: Python $pyver not found at ${PYENV_ROOT:-/root/.pyenv}/versions/$pyver" \
         "(install it with 'pyenv install $pyver')" >&2
    echo "$job: FAILED (Python $pyver missing)" > "$LOGS/$job.summary"
    return 1
  fi
  if ! build_venv "$job" "$venv" "$python" "$constraints"; then
    echo "$job: FAILED (venv build, $(( $(date +%s) - start )) s)" > "$LOGS/$job.summary"
    return 1
  fi
  built=$(( $(date +%s) - start ))
  versions="$("$UV" pip freeze -q --python "$venv/bin/python" 2>/dev/null \
      | grep -E '^apache-airflow(-task-sdk)?==' | tr '\n' ' ')"
  echo "test-compat[$job]: Python $pyver, ${versions}- running ${TESTS[*]}"
  log="$LOGS/$job.pytest"
  "$venv/bin/python" -m pytest -p no:cacheprovider -q "${TESTS[@]}" "${pytest_args[@]}" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  counts="$(grep -E '^=*.*(passed|failed|error).* in [0-9.]+s' "$log" | tail -n1 | tr -d '=' | xargs)"
  wall=$(( $(date +%s) - start ))
  if [ "$refresh" -eq 1 ]; then  # the new pins replace the old ones only once they tested green
    if [ "$rc" -eq 0 ]; then
      mv "$constraints.new" "$constraints"
      echo "test-compat[$job]: wrote $constraints"
    else
      echo "test-compat[$job]: tests failed; the new pins are in $constraints.new, $constraints is unchanged"
    fi
  fi
  if [ "$rc" -eq 0 ]; then
    line="$job: ok - ${counts:-no summary} - wall ${wall} s (venv ${built} s)"
  else
    line="$job: FAILED (pytest rc $rc) - ${counts:-no summary} - wall ${wall} s (venv ${built} s)"
  fi
  echo "$line" > "$LOGS/$job.summary"
  [ "$rc" -eq 0 ]
}

LOGS="$(mktemp -d)"
trap 'rm -rf "$LOGS"' EXIT
started=$(date +%s)
if [ "$lanes" -le 1 ] || [ ${#jobs[@]} -le 1 ]; then
  for job in "${jobs[@]}"; do run_job "$job"; done
else
  # Lanes of jobs run side by side (each job is mostly one pytest process waiting on the sandbox and
  # on Airflow's in-process API); jobs are dealt to lanes in the order given, slowest first by default.
  echo "test-compat: ${#jobs[*]} jobs in $lanes lanes: ${jobs[*]} (each job's output is printed when it ends)"
  for lane in $(seq 0 $(( lanes - 1 ))); do
    (
      for i in "${!jobs[@]}"; do
        [ $(( i % lanes )) -eq "$lane" ] || continue
        job="${jobs[$i]}"
        run_job "$job" > "$LOGS/$job.log" 2>&1
        { flock 9; cat "$LOGS/$job.log"; } 9> "$LOGS/.print-lock"
      done
    ) &
  done
  wait
fi

status=0
echo
echo "test-compat summary ($(( $(date +%s) - started )) s in all, $lanes lane(s)):"
for job in "${jobs[@]}"; do
  line="$(cat "$LOGS/$job.summary" 2>/dev/null || echo "$job: FAILED (no result)")"
  echo "  $line"
  case "$line" in *": ok "*) ;; *) status=1 ;; esac
done
exit "$status"
