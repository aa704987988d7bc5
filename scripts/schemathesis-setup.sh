#!/usr/bin/env bash
# Installs schemathesis (the OpenAPI property-based tester that scripts/schemathesis.sh runs
# against a real `authctl serve`) into a venv: schemathesis 4.32.5 from PyPI, pinned exactly.
#
# The venv lives at ${AUTHCTL_SCHEMATHESIS_VENV:-<repo>/target/schemathesis-venv}; run the tool as
# <venv>/bin/schemathesis. Safe to run repeatedly: when the venv already has schemathesis 4.32.5 it
# does nothing and prints nothing.
set -euo pipefail

version=4.32.5
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${AUTHCTL_SCHEMATHESIS_VENV:-$repo/target/schemathesis-venv}"

ready() {
  [ -x "$venv/bin/python" ] && [ -x "$venv/bin/schemathesis" ] &&
    [ "$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null)" = "$version" ]
}

if ready; then
  exit 0
fi

if ! command -v python3 >/dev/null 2>&1; then
  echo "schemathesis-setup: python3 is not on PATH; install Python 3 with its venv module (on Debian/Ubuntu: apt-get install python3 python3-venv) and run this again." >&2
  exit 1
fi

# Debian splits ensurepip out of python3 into python3-venv; without it 'python3 -m venv' fails.
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "schemathesis-setup: 'python3 -m venv' is not available; install the Python venv module (on Debian/Ubuntu: apt-get install python3-venv) and run this again." >&2
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
    echo "schemathesis-setup: 'python3 -m venv $venv' failed; install the Python venv module (on Debian/Ubuntu: apt-get install python3-venv) and run this again." >&2
    exit 1
  fi
fi

echo "schemathesis-setup: installing schemathesis==$version into $venv" >&2
if ! "$venv/bin/python" -m pip install -q --disable-pip-version-check "schemathesis==$version"; then
  echo "schemathesis-setup: 'pip install schemathesis==$version' into $venv failed (is PyPI reachable? see pip's message above); fix that and run this again." >&2
  exit 1
fi

if ! ready; then
  echo "schemathesis-setup: $venv/bin/schemathesis is still missing or not version $version after installing it; delete $venv and run this again." >&2
  exit 1
fi
