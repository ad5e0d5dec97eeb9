#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets/) for a bounded time with cargo-fuzz (libFuzzer,
# AddressSanitizer). The test command runs 60 s per target; for a longer campaign:
#   scripts/fuzz.sh 3600            # an hour per target
#   scripts/fuzz.sh 600 codec_decode # one target
# cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP=1 lets the machine's stable toolchain take
# them. New inputs go to fuzz/target/new-corpus (not committed); crashes to fuzz/artifacts.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(cookie_header codec_decode session_load store_url flask_config at_rest_envelope)

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz missing: installing it"
    cargo install --locked cargo-fuzz
fi
export RUSTC_BOOTSTRAP=1
cd fuzz
cargo fuzz build --debug-assertions
mkdir -p target/logs
for target in "${targets[@]}"; do
    new_corpus="target/new-corpus/$target"
    log="target/logs/$target.log"
    mkdir -p "$new_corpus"
    echo "fuzzing $target for ${seconds}s"
    if ! cargo fuzz run --debug-assertions "$target" "$new_corpus" "corpus/$target" -- \
        -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 >"$log" 2>&1; then
        tail -n 40 "$log"
        echo "fuzz target $target failed: see fuzz/$log and fuzz/artifacts/$target"
        exit 1
    fi
    grep -E '^stat::(number_of_executed_units|peak_rss_mb)' "$log" || true
done
echo "fuzzing: ${#targets[@]} targets, ${seconds}s each, no crashes"
