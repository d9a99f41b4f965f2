#!/usr/bin/env bash
# The PgBouncer tests start Debian's pgbouncer themselves (transaction pooling mode, in
# front of the test database); this only makes sure the binary is there.
set -eu
if [ -x /usr/sbin/pgbouncer ] || command -v pgbouncer >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's pgbouncer for the PgBouncer tests"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null
  # The package's own service is not needed: each test run starts its own pgbouncer.
  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now pgbouncer >/dev/null 2>&1 || true; fi
  exit 0
fi
if [ -n "${CI:-}" ]; then
  echo "ERROR: pgbouncer is missing; install Debian's pgbouncer package." >&2
  exit 1
fi
echo "WARNING: ******** pgbouncer missing — PgBouncer tests will be SKIPPED ********" >&2
