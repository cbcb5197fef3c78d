#!/usr/bin/env bash
# Things the test suite needs beyond Python packages, installed or started if missing:
# a running PostgreSQL on 127.0.0.1:5432, Debian's chromium for the browser tests,
# openssl for the scanner's TLS test, and wrk for the benchmarks. Safe to run again: each
# step checks first.
set -euo pipefail

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
apt_updated=""
apt_install() {
  [ -n "$apt_updated" ] || { $SUDO apt-get update -qq; apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

command -v chromium >/dev/null 2>&1 || apt_install chromium
command -v wrk >/dev/null 2>&1 || apt_install wrk
# the scanner's broken-TLS test makes a throw-away self-signed certificate with the openssl
# CLI (collector/fixture_portals.py: self_signed_context); the `cryptography` package is not
# a dependency
command -v openssl >/dev/null 2>&1 || apt_install openssl
# the snippet's build check (tests/test_snippet_build.py): Debian's node and npm, then the
# terser pinned in snippet/package-lock.json (npm ci: exactly the locked versions)
command -v node >/dev/null 2>&1 || apt_install nodejs
command -v npm >/dev/null 2>&1 || apt_install npm
snippet_dir="$(cd "$(dirname "$0")/../snippet" && pwd)"
if [ ! -x "$snippet_dir/node_modules/.bin/terser" ] ||
   [ "$snippet_dir/package-lock.json" -nt "$snippet_dir/node_modules/.package-lock.json" ]; then
  (cd "$snippet_dir" && npm ci --no-audit --no-fund --loglevel=error)
fi

if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    apt_install postgresql
    # a cluster we just created for tests: let the suite connect as postgres from
    # 127.0.0.1 without a password (Debian's default is scram for TCP)
    ver=$(ls /etc/postgresql | sort -V | tail -n 1)
    hba="/etc/postgresql/$ver/main/pg_hba.conf"
    $SUDO sed -i '1i host all postgres 127.0.0.1/32 trust' "$hba"
  fi
  ver=$(ls /etc/postgresql | sort -V | tail -n 1)
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432
# the outage test runs its own throw-away server with these binaries
ls /usr/lib/postgresql/*/bin/initdb >/dev/null
