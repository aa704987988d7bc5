#!/usr/bin/env bash
# Installs the Python dependencies of the SAML IdP test helper (tests/saml/idp.py) into a venv:
# signxml 5.2.0, which pulls lxml and cryptography.
#
# The venv lives at ${AUTHCTL_SAML_VENV:-<repo>/target/saml-venv}; run the helper with
# <venv>/bin/python tests/saml/idp.py. Safe to run repeatedly: when the venv can already import
# signxml and lxml it does nothing and prints nothing.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec "$repo/scripts/python-venv.sh" saml-idp-setup "${AUTHCTL_SAML_VENV:-$repo/target/saml-venv}" \
  signxml==5.2.0 'import signxml, lxml'
