#!/usr/bin/env bash
# Installs scim2-tester 0.5.2 and its command line, scim2-cli 0.6.0 (with the scim2-client and
# scim2-models they were checked with), into a venv for the SCIM conformance test
# (tests/cli/scim.rs runs `<venv>/bin/scim2 --url .../scim/v2 test` against a real serve).
#
# The venv lives at ${AUTHCTL_SCIM_VENV:-<repo>/target/scim-venv}. Safe to run repeatedly: when
# the venv already has them it does nothing and prints nothing.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec "$repo/scripts/python-venv.sh" scim-tester-setup "${AUTHCTL_SCIM_VENV:-$repo/target/scim-venv}" \
  "scim2-tester==0.5.2 scim2-cli==0.6.0 scim2-client==0.13.2 scim2-models==0.12.3" \
  'import importlib.metadata as m; assert m.version("scim2-tester") == "0.5.2" and m.version("scim2-cli") == "0.6.0"'
