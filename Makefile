# The two set-up commands of the README. Both install missing system packages first.
.PHONY: setup serve test check completions bench fuzz

setup:
	./scripts/setup.sh

## Build, migrate and run `authctl serve` on http://127.0.0.1:3000 (SQLite file authctl.db, mail to the console).
serve: setup
	cargo run --release --bin authctl -- serve

## Run every test (SQLite always; PostgreSQL too when AUTHCTL_TEST_POSTGRES_URL is set).
test:
	./scripts/setup.sh test
	./scripts/test.sh

## What CI runs: formatting, clippy and every test.
check:
	./scripts/setup.sh test
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	./scripts/test.sh

## Run each fuzz target for FUZZ_SECONDS (60) seconds (needs nightly and cargo-fuzz; skips without).
fuzz:
	./scripts/fuzz.sh

## Regenerate the committed shell completions.
completions:
	cargo run --bin authctl -- completions --dir completions

## Benchmarks (numbers in README.md).
bench: setup
	cargo bench --bench hot_paths
	cargo bench --bench saml_login
	cargo bench --bench readyz_under_signups
	cargo bench --bench deletion_sweep
	cargo build --release && ./scripts/bench-cli-list.sh 20000 target/release/authctl
	./scripts/bench-cli-million.sh target/release/authctl
	./scripts/bench-me.sh sqlite
	./scripts/bench-me.sh postgres
