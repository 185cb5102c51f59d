#!/usr/bin/env bash
# The e2e tests drive Debian's chromium with Playwright (never `playwright install`): install it when missing.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "reason-iad: installing Debian's chromium for the browser tests" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "reason-iad: the e2e tests need chromium: sudo apt-get install chromium" >&2
fi
