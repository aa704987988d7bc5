#!/usr/bin/env bash
# Schema-driven API test: runs schemathesis (property-based tests generated from /openapi.json)
# against a real `authctl serve` on a free loopback port, over a fresh SQLite database, signed in as
# a verified user, and fails when any response is a server error or disagrees with the document
# (status code, content type, body schema).
#
#   scripts/schemathesis.sh [AUTHCTL_BINARY]        # default: target/debug/authctl
#
# Steps: install schemathesis (scripts/schemathesis-setup.sh); start `authctl serve` in a temporary
# directory (database, key file and mail folder all in it, generous throttle limits, no token
# rotation during the run, a one-hour step-up window); sign up, open the mailed verification link,
# log in and step up with curl; then four schemathesis runs, each with a session cookie:
#   1. every operation except the three that end the session or the account (below);
#   2. GET /me/sessions + DELETE /me/sessions/{id}, on a fresh session (real ids, the current one
#      included, come from the list, so this run usually revokes its own session);
#   3. POST /logout, on a fresh session;
#   4. POST /me/delete, on a fresh stepped-up session (it schedules the account's deletion, which
#      ends every other session: so it runs last).
# Run 1 would otherwise lose its session within seconds and test nothing but 401s.
# Only 127.0.0.1 is ever contacted (proxies are ignored, redirects are not followed).
#
# Environment:
#   AUTHCTL_SCHEMATHESIS_MAX_EXAMPLES  test cases per operation and phase (default 200)
#   AUTHCTL_SCHEMATHESIS_SEED          the generation seed (default 1)
#   AUTHCTL_SCHEMATHESIS_WORKERS       concurrent workers for run 1 (default 2)
#   AUTHCTL_SCHEMATHESIS_REPORT_DIR    if set, JUnit and NDJSON reports of each run are written here
#   AUTHCTL_SCHEMATHESIS_KEEP          1: keep the temporary directory (server log, mails, database)
# Exits 0 when every run passes, 1 when any check failed, 2 when the set-up itself failed.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${1:-$repo/target/debug/authctl}"
max_examples="${AUTHCTL_SCHEMATHESIS_MAX_EXAMPLES:-200}"
seed="${AUTHCTL_SCHEMATHESIS_SEED:-1}"
workers="${AUTHCTL_SCHEMATHESIS_WORKERS:-2}"
report_dir="${AUTHCTL_SCHEMATHESIS_REPORT_DIR:-}"

fail() {
  echo "schemathesis: $*" >&2
  exit 2
}

case "$bin" in /*) ;; *) bin="$PWD/$bin" ;; esac
[ -x "$bin" ] || fail "$bin is not an executable authctl binary; build it (cargo build) or pass its path."
command -v curl >/dev/null 2>&1 || fail "curl is not on PATH; install it and run this again."
if [ -n "$report_dir" ]; then
  mkdir -p "$report_dir"
  report_dir="$(cd "$report_dir" && pwd)"
fi

"$repo/scripts/schemathesis-setup.sh" || exit 2
venv="${AUTHCTL_SCHEMATHESIS_VENV:-$repo/target/schemathesis-venv}"
st="$venv/bin/schemathesis"

# Never through a proxy: everything here is 127.0.0.1.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export NO_PROXY=127.0.0.1 no_proxy=127.0.0.1

dir="$(mktemp -d "${TMPDIR:-/tmp}/authctl-schemathesis.XXXXXX")"
server_pid=""
cleanup() {
  local rc=$?
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ "$rc" -eq 2 ] && [ -f "$dir/server.log" ]; then
    echo "schemathesis: the last lines of the server log:" >&2
    tail -n 40 "$dir/server.log" >&2 || true
  elif [ "$rc" -ne 0 ] && [ -f "$dir/server.log" ]; then
    echo "schemathesis: the server's warnings and errors (last 40):" >&2
    grep -E ' (WARN|ERROR) ' "$dir/server.log" | tail -n 40 >&2 || true
  fi
  if [ "${AUTHCTL_SCHEMATHESIS_KEEP:-0}" = 1 ]; then
    echo "schemathesis: kept $dir" >&2
  else
    rm -rf "$dir"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port="$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
mkdir -p "$dir/mail"

(
  cd "$dir"
  # A clean configuration: none of the caller's AUTHCTL_* settings (this script's own knobs
  # included, which the server would refuse as unknown keys) reach the server.
  for var in $(compgen -e | grep '^AUTHCTL_' || true); do unset "$var"; done
  export AUTHCTL_DATABASE_URL="sqlite://$dir/a.db?mode=rwc"
  export AUTHCTL_BIND="127.0.0.1:$port"
  export AUTHCTL_PUBLIC_URL="$base"
  export AUTHCTL_SECRET_KEY_FILE="$dir/authctl.key"
  export AUTHCTL_MAIL__TRANSPORT=file
  export AUTHCTL_MAIL__DIR="$dir/mail"
  # Generous limits: fuzzing sends thousands of wrong passwords and signups from one address.
  export AUTHCTL_THROTTLE__ACCOUNT_FREE_FAILURES=1000000
  export AUTHCTL_THROTTLE__IP_FREE_FAILURES=1000000
  export AUTHCTL_THROTTLE__SIGNUPS_PER_IP_PER_HOUR=0
  export AUTHCTL_VERIFICATION__IP_LIMIT_PER_HOUR=0
  export AUTHCTL_VERIFICATION__RESEND_INTERVAL=0s
  export AUTHCTL_PASSWORD_RESET__IP_LIMIT_PER_HOUR=1000000
  export AUTHCTL_PASSWORD_RESET__RESEND_INTERVAL=0s
  export AUTHCTL_SAML__LOGINS_PER_IP_PER_HOUR=0
  # One cookie for the whole run: no rotation by age, and one step-up lasts the run.
  export AUTHCTL_SESSION__ROTATION_INTERVAL=24h
  export AUTHCTL_STEP_UP__WINDOW=1h
  # No background jobs during the run.
  export AUTHCTL_SESSION__PRUNE_CRON=""
  export AUTHCTL_DELETION__SWEEP_CRON=""
  export AUTHCTL_DELETION__WEBHOOK_CRON=""
  export AUTHCTL_LOG=info NO_COLOR=1
  exec "$bin" serve
) >"$dir/server.log" 2>&1 &
server_pid=$!

ready=""
for _ in $(seq 300); do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    fail "authctl serve exited during start-up (its log follows)."
  fi
  if curl -fsS --noproxy '*' -o /dev/null "$base/readyz" 2>/dev/null; then
    ready=1
    break
  fi
  sleep 0.1
done
[ -n "$ready" ] || fail "authctl serve did not answer GET $base/readyz within 30 seconds."

# The account the runs are signed in as. Neither address nor password appears in the document's
# examples, so generated requests cannot log in as it, step it up or change its password.
email="schemathesis-owner@example.org"
password="owner-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"

# curl_json METHOD PATH [JSON] [COOKIE]: prints the response headers to $dir/headers, the body to
# $dir/body; fails the script on a non-2xx answer.
curl_json() {
  local method=$1 path=$2 body=${3:-} cookie=${4:-}
  local args=(-sS --noproxy '*' --max-redirs 0 -X "$method" -D "$dir/headers" -o "$dir/body" -w '%{http_code}')
  [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
  [ -n "$cookie" ] && args+=(-H "Cookie: $cookie")
  local code
  code="$(curl "${args[@]}" "$base$path")" || fail "$method $path: curl failed."
  case "$code" in
    2??) ;;
    *) fail "$method $path answered $code: $(head -c 500 "$dir/body")" ;;
  esac
}

session_cookie() {
  local value
  value="$(tr -d '\r' <"$dir/headers" | sed -n 's/^[Ss]et-[Cc]ookie: authctl_session=\([^;]*\).*/\1/p' | tail -n 1)"
  [ -n "$value" ] || fail "the answer set no authctl_session cookie."
  printf 'authctl_session=%s' "$value"
}

curl_json POST /signup "{\"email\":\"$email\",\"password\":\"$password\",\"name\":\"Schemathesis Owner\"}"

link=""
for _ in $(seq 300); do
  link="$(cat "$dir"/mail/*.eml 2>/dev/null | grep -o "$base/verify-email?token=[A-Za-z0-9_-]*" | head -n 1 || true)"
  [ -n "$link" ] && break
  sleep 0.1
done
[ -n "$link" ] || fail "no verification link to $base/verify-email arrived in $dir/mail within 30 seconds."
curl_json GET "${link#"$base"}"

# login_cookie [step-up]: a fresh session for the account (stepped up when asked).
login_cookie() {
  curl_json POST /login "{\"email\":\"$email\",\"password\":\"$password\"}"
  local cookie
  cookie="$(session_cookie)"
  if [ "${1:-}" = step-up ]; then
    curl_json POST /auth/confirm "{\"password\":\"$password\"}" "$cookie"
    cookie="$(session_cookie)"
  fi
  curl_json GET /me "" "$cookie"
  grep -q '"emailVerified":true' "$dir/body" || fail "GET /me does not show a verified address: $(head -c 500 "$dir/body")"
  printf '%s' "$cookie"
}

# run_schemathesis LABEL WORKERS COOKIE FILTER...: one schemathesis run; its exit code.
run_schemathesis() {
  local label=$1 nworkers=$2 cookie=$3
  shift 3
  local reports=()
  if [ -n "$report_dir" ]; then
    reports=(--report junit,ndjson --report-dir "$report_dir"
      --report-junit-path "$report_dir/$label.junit.xml"
      --report-ndjson-path "$report_dir/$label.ndjson")
  fi
  echo "=== schemathesis run '$label' ==="
  (
    cd "$dir"
    "$st" --no-color run "$base/openapi.json" \
      --url "$base" \
      --header "Cookie: $cookie" \
      --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
      --max-examples "$max_examples" \
      --seed "$seed" \
      --generation-database none \
      --workers "$nworkers" \
      --max-redirects 0 \
      --request-timeout 30 \
      --suppress-health-check all \
      --continue-on-failure \
      --output-sanitize false \
      "${reports[@]}" \
      "$@"
  )
}

rc=0
cookie="$(login_cookie step-up)" || exit 2
run_schemathesis main "$workers" "$cookie" \
  --exclude-name 'POST /logout' \
  --exclude-name 'POST /me/delete' \
  --exclude-name 'DELETE /me/sessions/{id}' || rc=1
cookie="$(login_cookie)" || exit 2
run_schemathesis sessions 1 "$cookie" \
  --include-name 'GET /me/sessions' \
  --include-name 'DELETE /me/sessions/{id}' || rc=1
cookie="$(login_cookie)" || exit 2
run_schemathesis logout 1 "$cookie" --include-name 'POST /logout' || rc=1
cookie="$(login_cookie step-up)" || exit 2
run_schemathesis delete 1 "$cookie" --include-name 'POST /me/delete' || rc=1

if ! kill -0 "$server_pid" 2>/dev/null; then
  echo "schemathesis: authctl serve died during the run." >&2
  rc=1
fi
if [ "$rc" -eq 0 ]; then
  echo "schemathesis: every run passed."
else
  echo "schemathesis: failures above." >&2
fi
exit "$rc"
