#!/usr/bin/env bash
# Installs the system libraries authctl's build needs (samael's xmlsec binding) when they are
# missing; `setup.sh test` also what the tests need (Debian's Chromium). Safe to run repeatedly:
# it does nothing when everything is present.
set -euo pipefail

# python3-venv: the SAML tests sign IdP responses with signxml in a venv (scripts/saml-idp-setup.sh),
# and schemathesis runs from one (scripts/schemathesis-setup.sh); curl drives its sign-in.
packages=(libxmlsec1-dev libxml2-dev libclang-dev pkg-config libssl-dev python3-venv curl)
# chromium: tests/browser/passkeys.py drives Debian's Chromium (/usr/bin/chromium) through
# Playwright (scripts/browser-setup.sh), which downloads no browser of its own.
if [ "${1:-}" = "test" ]; then
  packages+=(chromium)
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo is not on PATH; install the Rust toolchain from https://rustup.rs first." >&2
  exit 1
fi

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "setup: this is not a Debian/Ubuntu system; install the equivalents of: ${packages[*]} (xmlsec1, libxml2, libclang, pkg-config, OpenSSL headers) with your package manager, then run the command again." >&2
  # Only a warning when the libraries are visible to pkg-config anyway.
  if command -v pkg-config >/dev/null 2>&1 && pkg-config --exists xmlsec1 libxml-2.0; then
    exit 0
  fi
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "setup: installing missing system packages: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "setup: not root and sudo is missing; as root run: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
