#!/usr/bin/env bash
# Installs Playwright for Python (tests/browser/passkeys.py) into a venv: playwright 1.65.2, which
# pulls greenlet and ships its Node driver. It downloads no browser (never 'playwright install'):
# the test drives Debian's Chromium at /usr/bin/chromium (apt-get install chromium).
#
# The venv lives at ${AUTHCTL_BROWSER_VENV:-<repo>/target/browser-venv}; run the test with
# <venv>/bin/python tests/browser/passkeys.py BASE_URL EMAIL PASSWORD. Safe to run repeatedly:
# when the venv can already import playwright it does nothing and prints nothing.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [ ! -x /usr/bin/chromium ]; then
  echo "browser-setup: /usr/bin/chromium is missing; install Debian's Chromium (apt-get install chromium) and run this again." >&2
  exit 1
fi

exec "$repo/scripts/python-venv.sh" browser-setup "${AUTHCTL_BROWSER_VENV:-$repo/target/browser-venv}" \
  playwright==1.65.2 'import playwright, playwright.sync_api'
