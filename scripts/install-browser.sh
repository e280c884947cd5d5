#!/usr/bin/env bash
# Installs what the console's browser tests drive: Debian's chromium (/usr/bin/chromium),
# when it is missing. Playwright (a dev dependency) launches it; no browser is downloaded.
# Run as root on Debian (CI, the developers' machines); elsewhere it says what to install.
set -euo pipefail

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "install-browser: apt-get install chromium (for the console's browser tests)"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core; } \
        >/tmp/install-browser-apt.log 2>&1 \
        || { echo "install-browser: apt-get failed, see /tmp/install-browser-apt.log" >&2; exit 2; }
    exit 0
fi
echo "install-browser: $CHROMIUM is missing: install Debian's 'chromium' package (as root)" >&2
exit 2
