#!/usr/bin/env bash
# How long `authctl users list` takes on a SQLite database with N accounts (default 20,000):
# the whole listing through a pipe, one terminal page (--limit 100), and a page deep in the table
# (--after). Uses the built binary (cargo build --release first for release figures).
# Usage: scripts/bench-cli-list.sh [N] [path/to/authctl]
set -euo pipefail
n="${1:-20000}"
bin="${2:-target/release/authctl}"
bin="$(realpath "$bin")"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
cd "$dir"
for v in $(env | grep -o '^AUTHCTL_[A-Z_]*' || true); do unset "$v"; done
export XDG_CONFIG_HOME="$dir/xdg"
"$bin" migrate up >/dev/null 2>&1
python3 - "$n" <<'PY'
import sqlite3, sys, uuid, time
n = int(sys.argv[1])
db = sqlite3.connect("authctl.db")
base = int(time.time() * 1000) - n
rows = []
for i in range(n):
    # uuid v7 layout: 48-bit millisecond timestamp, version 7, random rest.
    ms = base + i
    rnd = uuid.uuid4().int & ((1 << 80) - 1)
    value = (ms << 80) | (0x7 << 76) | (rnd & ((1 << 76) - 1))
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    rows.append((str(uuid.UUID(int=value)), f"user{i:06d}@example.com", f"User {i}",
                 "2026-12-01 00:00:00+00:00", "2026-12-01 00:00:00+00:00", "2026-12-01 00:00:00+00:00"))
db.executemany("INSERT INTO users (id, email, name, email_verified_at, created_at, updated_at) VALUES (?,?,?,?,?,?)", rows)
db.commit()
PY
after="$("$bin" users list --limit 1 --after "$("$bin" users list -o json --limit $((n / 2)) 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["id"])')" -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')"
time_it() {
    local label="$1"; shift
    local best=999999
    for _ in 1 2 3 4 5; do
        local t0 t1
        t0=$(date +%s%N)
        "$@" >/dev/null 2>&1
        t1=$(date +%s%N)
        local ms=$(( (t1 - t0) / 1000000 ))
        (( ms < best )) && best=$ms
    done
    printf '%-48s %6d ms (best of 5)\n' "$label" "$best"
}
echo "users list on $n accounts, SQLite, $(nproc) cores"
time_it "users list -o json (every account, a pipe)" "$bin" users list -o json
time_it "users list (table, every account, a pipe)" "$bin" users list
time_it "users list --limit 100 (one terminal page)" "$bin" users list --limit 100
time_it "users list --limit 100 --after <middle id>" "$bin" users list --limit 100 --after "$after"
