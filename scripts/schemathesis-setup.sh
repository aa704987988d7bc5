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
exec "$repo/scripts/python-venv.sh" schemathesis-setup \
  "${AUTHCTL_SCHEMATHESIS_VENV:-$repo/target/schemathesis-venv}" "schemathesis==$version" \
  "import importlib.metadata as m, sys; sys.exit(m.version('schemathesis') != '$version')"
