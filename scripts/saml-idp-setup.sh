#!/usr/bin/env bash
# Installs the Python dependencies of the SAML IdP test helper (tests/saml/idp.py) into a venv:
# signxml 5.2.0, which pulls lxml and cryptography.
#
# The venv lives at ${AUTHCTL_SAML_VENV:-<repo>/target/saml-venv}; run the helper with
# <venv>/bin/python tests/saml/idp.py. Safe to run repeatedly: when the venv can already import
# signxml and lxml it does nothing and prints nothing.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${AUTHCTL_SAML_VENV:-$repo/target/saml-venv}"

ready() {
  [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import signxml, lxml' >/dev/null 2>&1
}

if ready; then
  exit 0
fi

if ! command -v python3 >/dev/null 2>&1; then
  echo "saml-idp-setup: python3 is not on PATH; install Python 3 with its venv module (on Debian/Ubuntu: apt-get install python3 python3-venv) and run this again." >&2
  exit 1
fi

# Debian splits ensurepip out of python3 into python3-venv; without it 'python3 -m venv' fails.
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "saml-idp-setup: 'python3 -m venv' is not available; install the Python venv module (on Debian/Ubuntu: apt-get install python3-venv) and run this again." >&2
  exit 1
fi

mkdir -p "$(dirname "$venv")"

# Several test processes may run this at once: serialize the install and re-check under the lock.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$venv.lock"
  flock 9
  if ready; then
    exit 0
  fi
fi

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
  if ! python3 -m venv "$venv"; then
    echo "saml-idp-setup: 'python3 -m venv $venv' failed; install the Python venv module (on Debian/Ubuntu: apt-get install python3-venv) and run this again." >&2
    exit 1
  fi
fi

echo "saml-idp-setup: installing signxml==5.2.0 into $venv" >&2
"$venv/bin/python" -m pip install -q --disable-pip-version-check signxml==5.2.0

if ! ready; then
  echo "saml-idp-setup: signxml/lxml still cannot be imported by $venv/bin/python after installing them." >&2
  exit 1
fi
