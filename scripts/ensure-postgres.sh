#!/usr/bin/env bash
# Make sure a PostgreSQL server answers for the tests: wait for it, start a local
# cluster if one is installed but stopped. In CI a missing server is an error; on a
# laptop without one the PostgreSQL tests skip with a loud reason.
set -u
HOST="${PGHOST:-127.0.0.1}"
PORT="${PGPORT:-5432}"

ready() { pg_isready -q -h "$HOST" -p "$PORT" 2>/dev/null; }

if ! command -v pg_isready >/dev/null 2>&1; then
  ready() { (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; }
fi

if ! ready && command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  for version in $(ls /etc/postgresql); do
    pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 || true
  done
fi

for _ in $(seq 1 30); do
  if ready; then echo "PostgreSQL answers on $HOST:$PORT"; exit 0; fi
  sleep 1
done

if [ -n "${CI:-}" ]; then
  echo "ERROR: no PostgreSQL server answers on $HOST:$PORT; CI needs one for the tests." >&2
  exit 1
fi
echo "WARNING: ******** no PostgreSQL on $HOST:$PORT — PostgreSQL tests will be SKIPPED ********" >&2
exit 0
