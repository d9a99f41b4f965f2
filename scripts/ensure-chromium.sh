#!/usr/bin/env bash
# Browser tests drive Debian's Chromium (Playwright never downloads its own browser).
set -eu
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the browser tests"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  exit 0
fi
if [ -n "${CI:-}" ]; then
  echo "ERROR: /usr/bin/chromium is missing; install Debian's chromium package." >&2
  exit 1
fi
echo "WARNING: ******** /usr/bin/chromium missing — browser tests will be SKIPPED ********" >&2
