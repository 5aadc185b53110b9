#!/usr/bin/env bash
# System servers for tests/deployment (Airflow with the CeleryExecutor, as a deployment runs it):
#   - Debian's PostgreSQL (initdb, pg_ctl, postgres): the metadata DB and the Celery result backend;
#   - Debian's redis-server: the Celery broker.
# Only the packages are installed; no system service is started or enabled (the harness runs a private
# cluster and a private redis-server on free loopback ports in a temp dir, and stops them).
# Idempotent: a no-op when both are already there.
set -euo pipefail
cd "$(dirname "$0")/.."
unset PYTHONDONTWRITEBYTECODE

pg_bin() {
  # The newest installed server's bin dir (Debian puts initdb/pg_ctl under /usr/lib/postgresql/<v>/bin).
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1
}

missing=()
[ -n "$(pg_bin)" ] && [ -x "$(pg_bin)/initdb" ] && [ -x "$(pg_bin)/pg_ctl" ] || missing+=(postgresql)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "bootstrap-deployment: ${missing[*]} missing; run as root or 'sudo apt-get install -y ${missing[*]}'" >&2
    exit 1
  fi
  echo "bootstrap-deployment: installing Debian's ${missing[*]} (apt; services are not started)"
  export DEBIAN_FRONTEND=noninteractive
  # policy-rc.d exit 101 keeps the packages' postinst from starting their system services.
  policy=/usr/sbin/policy-rc.d
  created_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && created_policy=1
  fi
  trap '[ -n "$created_policy" ] && rm -f "$policy"' EXIT
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

echo "bootstrap-deployment: $("$(pg_bin)/postgres" --version), $(redis-server --version | cut -d' ' -f1-3) ready"
