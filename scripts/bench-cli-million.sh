#!/usr/bin/env bash
# The operator's look-ups on a big database: `authctl sessions list --user EMAIL` and
# `authctl users show EMAIL` with 1,000,000 sessions over 100,000 accounts in SQLite, wall time
# of the whole process, best of 5. The database is built once and kept in target/bench/ (about
# 400 MB; delete it to rebuild).
# Usage: scripts/bench-cli-million.sh [path/to/authctl]
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(realpath "${1:-target/release/authctl}")"
users=100000
per_user=10
dir="$(realpath -m target/bench/million)"
mkdir -p "$dir"
for v in $(env | grep -o '^AUTHCTL_[A-Z_]*' || true); do unset "$v"; done
export XDG_CONFIG_HOME="$dir/xdg" AUTHCTL_STATE_DIR="$dir" AUTHCTL_MAIL__TRANSPORT=file AUTHCTL_MAIL__DIR="$dir/mail"

if [ ! -f "$dir/ready" ]; then
  rm -f "$dir"/authctl.db*
  "$bin" migrate up >/dev/null 2>&1
  echo "building $users accounts with $per_user sessions each in $dir/authctl.db ..." >&2
  python3 - "$dir/authctl.db" "$users" "$per_user" <<'PY'
import os, sqlite3, sys, uuid, time
path, users, per_user = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
db = sqlite3.connect(path)
db.execute("PRAGMA synchronous = OFF")
base = int(time.time() * 1000) - users * per_user
def v7(ms):
    value = (ms << 80) | (0x7 << 76) | (uuid.uuid4().int & ((1 << 76) - 1))
    return str(uuid.UUID(int=(value & ~(0x3 << 62)) | (0x2 << 62)))
t = "2026-12-01 00:00:00+00:00"
later = "2099-01-01 00:00:00+00:00"
for start in range(0, users, 10000):
    us, ss = [], []
    for i in range(start, min(users, start + 10000)):
        uid = v7(base + i * per_user)
        us.append((uid, f"user{i:06d}@example.com", f"User {i}", t, t, t))
        for j in range(per_user):
            ss.append((v7(base + i * per_user + j), os.urandom(32).hex(), t, uid, "password",
                       "active", "127.0.0.1", "Mozilla/5.0 Firefox/120", "Firefox on Linux",
                       t, t, "2026-12-03 00:00:00+00:00", later))
    db.executemany("INSERT INTO users (id, email, name, email_verified_at, created_at, updated_at) VALUES (?,?,?,?,?,?)", us)
    db.executemany("INSERT INTO sessions (id, token_hash, token_issued_at, user_id, auth_method, state, ip, user_agent, device_name, created_at, authenticated_at, last_active_at, expires_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", ss)
    db.commit()
db.execute("ANALYZE")
db.commit()
PY
  touch "$dir/ready"
fi

time_it() {
  local label="$1"; shift
  local best=999999
  for _ in 1 2 3 4 5; do
    local t0 t1 ms
    t0=$(date +%s%N)
    "$@" >/dev/null
    t1=$(date +%s%N)
    ms=$(( (t1 - t0) / 1000000 ))
    (( ms < best )) && best=$ms
  done
  printf '%-52s %5d ms (best of 5)\n' "$label" "$best"
}
email=user050000@example.com
echo "$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from sessions").fetchone()[0])' "$dir/authctl.db") sessions, $users accounts, SQLite; $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
time_it "sessions list --user $email" "$bin" sessions list --user "$email"
time_it "sessions list --user $email -o json" "$bin" sessions list --user "$email" -o json
time_it "users show $email" "$bin" users show "$email"
time_it "users show $email -o json" "$bin" users show "$email" -o json
