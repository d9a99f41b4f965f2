#!/usr/bin/env bash
# Make sure a Redis server answers for the rate-limit tests: start a local one (in memory,
# loopback only) if redis-server is installed but not running. In CI a missing server is
# an error; on a laptop without one the Redis tests skip with a loud reason.
set -u
HOST=127.0.0.1
PORT="${REDIS_PORT:-6379}"

ready() { (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; }

if ! ready && command -v redis-server >/dev/null 2>&1; then
  redis-server --daemonize yes --bind 127.0.0.1 --port "$PORT" --save "" --appendonly no \
    --dir "${TMPDIR:-/tmp}" >/dev/null 2>&1 || true
fi

for _ in $(seq 1 20); do
  if ready; then echo "Redis answers on $HOST:$PORT"; exit 0; fi
  sleep 0.5
done

if [ -n "${CI:-}" ]; then
  echo "ERROR: no Redis server answers on $HOST:$PORT; CI needs one for the rate-limit tests." >&2
  exit 1
fi
echo "WARNING: ******** no Redis on $HOST:$PORT — Redis tests will be SKIPPED ********" >&2
exit 0
