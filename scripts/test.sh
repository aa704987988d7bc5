#!/usr/bin/env bash
# Runs every test: unit tests, the HTTP tests and the CLI tests. With AUTHCTL_TEST_POSTGRES_URL
# set (e.g. postgres://postgres@127.0.0.1:5432/postgres) every HTTP test also runs on PostgreSQL,
# each in a database of its own; when it is set but PostgreSQL cannot be reached, this fails.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${AUTHCTL_TEST_POSTGRES_URL:-}" ]; then
  hostport=$(printf '%s' "$AUTHCTL_TEST_POSTGRES_URL" | sed -E 's#^[a-z]+://([^@/]*@)?([^/?]+).*#\2#')
  host=${hostport%:*}; port=${hostport##*:}; [ "$port" = "$hostport" ] && port=5432
  if ! (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
    echo "test: AUTHCTL_TEST_POSTGRES_URL is set but nothing answers on $host:$port; start PostgreSQL or unset it." >&2
    exit 1
  fi
fi

# The SAML tests' IdP (tests/saml/idp.py) signs with signxml from a venv under target/.
./scripts/saml-idp-setup.sh
# The SCIM conformance test runs scim2-tester from a venv under target/.
./scripts/scim-tester-setup.sh
# The browser test (tests/browser/passkeys.py) runs Playwright from a venv under target/.
./scripts/browser-setup.sh

status=0
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@" || status=$?
else
  cargo test --workspace --no-fail-fast "$@" || status=$?
fi

# The API keeps its own contract: schemathesis against a real `serve` (scripts/schemathesis.sh).
# The tests above built target/debug/authctl.
if [ "$#" -eq 0 ]; then
  ./scripts/schemathesis.sh target/debug/authctl || status=$?
fi
exit "$status"

