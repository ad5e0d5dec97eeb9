#!/usr/bin/env bash
# Runs every test of sessionstore: starts (installing when missing) the servers the tests
# need (scripts/services.sh), then formatting and lint checks, the unit, integration and doc
# tests against real servers, files and HTTP, the C API's tests (scripts/test-c.sh), the
# Python package's install and pytest tests, the demo's page in headless Chromium, the
# feature-subset builds, one run of each benchmark (no measurement), and a bounded run of
# every fuzz target (scripts/fuzz.sh).
# Usage: scripts/test.sh   (from anywhere; CI calls it via .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."

started=$(date +%s)
step() { printf '\n== %s (%ss)\n' "$1" "$(($(date +%s) - started))"; }

step "toolchain"
cargo --version
if ! cargo nextest --version >/dev/null 2>&1; then
    echo "cargo-nextest missing: installing it"
    cargo install --locked cargo-nextest
fi

step "services"
scripts/services.sh

step "formatting"
cargo fmt --check

step "clippy (all targets, all features)"
cargo clippy --all-targets --all-features -- -D warnings

step "feature subsets build on their own"
for features in memory filesystem sqlite memory,capi postgres mysql mongodb redis memcached; do
    cargo check --quiet --no-default-features --features "$features"
done

step "build tests and examples"
cargo build --all-features --all-targets

step "C API: header check, install, C tests under valgrind, example server"
scripts/test-c.sh

step "Python package: install into the test virtualenv (bindings/python)"
(source scripts/lib.sh && python_env && python_package dev)

step "tests"
cargo nextest run --all-features --no-fail-fast

step "Python package: pytest against real servers"
# Any non-zero status fails the run, pytest's 5 ("no tests collected") included.
"${VENV:-target/venv}/bin/python" -m pytest -p no:cacheprovider bindings/python/tests

step "the demo's page in a real browser: two devices, log out everywhere (tests/browser)"
(source scripts/lib.sh && apt_install chromium chromium-driver)
"${VENV:-target/venv}/bin/python" tests/browser/demo_devices.py \
    "${CARGO_TARGET_DIR:-target}/debug/examples/demo"

step "Python package: its benchmark once, short (bindings/python/benchmarks)"
"${VENV:-target/venv}/bin/python" bindings/python/benchmarks/bench_session.py --quick

step "doc tests"
cargo test --all-features --doc

step "benchmarks: each one once, against every store (docs/BENCHMARKS.md)"
cargo test --all-features --bench request_cycle --bench ratios --bench throughput \
    --bench components --bench capi --bench owners

step "fuzzing: every target for 60 s (scripts/fuzz.sh)"
scripts/fuzz.sh 60

step "done in $(($(date +%s) - started))s"
