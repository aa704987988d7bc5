#!/usr/bin/env bash
# The session check against the HTTP ceiling: `authctl serve` answering an authenticated
# `GET /me`, and a bare axum server answering a constant (examples/bare_axum.rs), both release
# builds on free ports, measured alternately with wrk in the same run; prints requests/s and the
# ratio. Then `GET /me` latency while 16 clients flood `POST /login` with the correct password,
# and serve's resident memory when idle.
#
#   scripts/bench-me.sh [sqlite|postgres]   (postgres: AUTHCTL_TEST_POSTGRES_URL, default local)
#   env: ROUNDS (3), SECONDS_EACH (5), CONNECTIONS (32)
set -euo pipefail
cd "$(dirname "$0")/.."

backend=${1:-sqlite}
rounds=${ROUNDS:-3}
secs=${SECONDS_EACH:-5}
conns=${CONNECTIONS:-32}

if ! command -v wrk >/dev/null 2>&1; then
  echo "bench-me: installing wrk (Debian package)" >&2
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get install -y wrk >/dev/null
fi

cargo build --release --quiet --bin authctl --example bare_axum

dir=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
bare_port=$(free_port)
auth_port=$(free_port)

case "$backend" in
  sqlite) db_url="sqlite://$dir/authctl.db" ;;
  postgres)
    pg=${AUTHCTL_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
    psql "$pg" -qc "DROP DATABASE IF EXISTS authctl_bench_me" -c "CREATE DATABASE authctl_bench_me" >/dev/null
    db_url="${pg%/*}/authctl_bench_me"
    ;;
  *) echo "bench-me: the backend is sqlite or postgres, not $backend" >&2; exit 2 ;;
esac

target/release/examples/bare_axum "127.0.0.1:$bare_port" &
pids+=($!)
env -i PATH="$PATH" HOME="$dir" \
  AUTHCTL_DATABASE_URL="$db_url" AUTHCTL_STATE_DIR="$dir" \
  AUTHCTL_MAIL__TRANSPORT=file AUTHCTL_MAIL__DIR="$dir/mail" AUTHCTL_LOG=warn \
  target/release/authctl serve --bind "127.0.0.1:$auth_port" --public-url "http://127.0.0.1:$auth_port" \
  2>"$dir/serve.log" &
serve_pid=$!
pids+=("$serve_pid")
for _ in $(seq 200); do
  curl -sf "http://127.0.0.1:$auth_port/readyz" >/dev/null && curl -sf "http://127.0.0.1:$bare_port/" >/dev/null && break
  sleep 0.05
done

curl -sf -c "$dir/cookies" -H 'Content-Type: application/json' \
  -d '{"email":"bench@example.com","password":"bench-password-1","name":"Bench"}' \
  "http://127.0.0.1:$auth_port/signup" >/dev/null
cookie=$(awk '$6 ~ /authctl_session$/ {print $6"="$7}' "$dir/cookies")
[ -n "$cookie" ] || { echo "bench-me: signup gave no session cookie" >&2; exit 1; }
curl -sf -H "Cookie: $cookie" "http://127.0.0.1:$auth_port/me" >/dev/null
rss() { awk '/VmRSS/ {printf "%.1f MB", $2/1024}' "/proc/$serve_pid/status"; }
rss_before=$(rss)

rps() { awk '/Requests\/sec/ {print int($2)}'; }
echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), backend $backend"
echo "wrk -t1 -c$conns -d${secs}s, $rounds rounds, alternating"
bare_all=(); me_all=()
for i in $(seq "$rounds"); do
  b=$(wrk -t1 -c"$conns" -d"${secs}s" "http://127.0.0.1:$bare_port/" | rps)
  m=$(wrk -t1 -c"$conns" -d"${secs}s" -H "Cookie: $cookie" "http://127.0.0.1:$auth_port/me" | rps)
  echo "round $i: bare axum $b req/s, authctl GET /me $m req/s, ratio $(awk -v m="$m" -v b="$b" 'BEGIN {printf "%.3f", m/b}')"
  bare_all+=("$b"); me_all+=("$m")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
bm=$(median "${bare_all[@]}"); mm=$(median "${me_all[@]}")
echo "median: bare axum $bm req/s, authctl GET /me $mm req/s, ratio $(awk -v m="$mm" -v b="$bm" 'BEGIN {printf "%.3f", m/b}')"
h=$(wrk -t1 -c"$conns" -d"${secs}s" "http://127.0.0.1:$auth_port/healthz" | rps)
echo "authctl GET /healthz (middleware, no database): $h req/s"

# The session check while 16 clients hash passwords as fast as the server lets them.
wrk -t1 -c16 -d"$((secs + 4))s" -s benches/wrk/login.lua "http://127.0.0.1:$auth_port/login" >"$dir/flood" &
flood=$!
sleep 2
wrk -t1 -c4 -d"${secs}s" --latency -H "Cookie: $cookie" "http://127.0.0.1:$auth_port/me" >"$dir/me-under-flood"
wait "$flood"
p50=$(awk '$1 == "50%" {print $2}' "$dir/me-under-flood")
p99=$(awk '$1 == "99%" {print $2}' "$dir/me-under-flood")
logins=$(rps <"$dir/flood")
echo "GET /me while 16 clients flood POST /login: p50 $p50, p99 $p99 (logins: $logins/s)"

sleep 15
echo "serve RSS: $rss_before idle after one signup, $(rss) idle 15 s after the load"
