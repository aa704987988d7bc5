#!/usr/bin/env bash
# Runs each cargo-fuzz target (fuzz/fuzz_targets) for FUZZ_SECONDS (default 60) from its seed
# corpus (fuzz/corpus/<target>); fails on a crash, whose input lands in fuzz/artifacts/.
# cargo-fuzz needs a nightly compiler and the cargo-fuzz command (cargo install cargo-fuzz);
# without either this says so and exits 0, so a machine without them skips the step.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-60}"
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "fuzz: no nightly toolchain (rustup toolchain install nightly); skipping the fuzz targets." >&2
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz: cargo-fuzz is not installed (cargo install cargo-fuzz); skipping the fuzz targets." >&2
  exit 0
fi
cd fuzz
for target in $(cargo +nightly fuzz list); do
  echo "fuzz: $target for ${seconds}s" >&2
  mkdir -p "corpus/$target"
  # A scratch copy of the corpus: what the run finds does not change the committed seeds.
  work="$(mktemp -d)"
  cp -r "corpus/$target/." "$work/"
  cargo +nightly fuzz run "$target" "$work" -- -max_total_time="$seconds" -max_len=4096
  rm -rf "$work"
done
