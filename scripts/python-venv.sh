#!/usr/bin/env bash
# Makes sure a venv holds one pinned PyPI package, for the test tools (scripts/saml-idp-setup.sh,
# scripts/schemathesis-setup.sh):
#
#   scripts/python-venv.sh NAME VENV REQUIREMENT CHECK
#
# NAME prefixes messages; VENV is the venv's folder; REQUIREMENT is what pip installs (pinned,
# e.g. signxml==5.2.0; several, separated by spaces); CHECK is Python code that exits 0 once the venv is ready. Safe to run
# repeatedly and from several processes at once: when CHECK passes it does nothing and prints
# nothing.
set -euo pipefail

name="$1" venv="$2" requirement="$3" check="$4"

ready() {
  [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$check" >/dev/null 2>&1
}

if ready; then
  exit 0
fi

if ! command -v python3 >/dev/null 2>&1; then
  echo "$name: python3 is not on PATH; install Python 3 with its venv module (on Debian/Ubuntu: apt-get install python3 python3-venv) and run this again." >&2
  exit 1
fi

# Debian splits ensurepip out of python3 into python3-venv; without it 'python3 -m venv' fails.
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "$name: 'python3 -m venv' is not available; install the Python venv module (on Debian/Ubuntu: apt-get install python3-venv) and run this again." >&2
  exit 1
fi

mkdir -p "$(dirname "$venv")"

# Several processes may run this at once: serialize the install and re-check under the lock.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$venv.lock"
  flock 9
  if ready; then
    exit 0
  fi
fi

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
  if ! python3 -m venv "$venv"; then
    echo "$name: 'python3 -m venv $venv' failed; install the Python venv module (on Debian/Ubuntu: apt-get install python3-venv) and run this again." >&2
    exit 1
  fi
fi

echo "$name: installing $requirement into $venv" >&2
# shellcheck disable=SC2086 # several requirements are split on purpose
if ! "$venv/bin/python" -m pip install -q --disable-pip-version-check $requirement; then
  echo "$name: 'pip install $requirement' into $venv failed (is PyPI reachable? see pip's message above); fix that and run this again." >&2
  exit 1
fi

if ! ready; then
  echo "$name: $venv is still not ready after installing $requirement; delete $venv and run this again." >&2
  exit 1
fi
