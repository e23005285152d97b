#!/usr/bin/env bash
# Browser tests drive Debian's Chromium (never a browser downloaded by Playwright).
# Installs it when missing and we are root; otherwise the browser tests skip with a reason.
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian's chromium for the browser tests..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "could not install chromium: the browser tests will be skipped (or fail under CI=true)" >&2
else
  echo "no /usr/bin/chromium: install Debian's chromium package to run the browser tests" >&2
fi
exit 0
