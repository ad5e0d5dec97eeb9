#!/usr/bin/env bash
# Fails when a C header differs from the one build.rs generates from the current sources.
# Usage: scripts/check-header.sh [HEADER]     (default: include/sessionstore.h)
# scripts/test.sh passes the header as it was committed (copied before any build rewrote it),
# so a commit whose include/sessionstore.h is stale fails the test command.
# build.rs (feature capi) writes a fresh copy to $OUT_DIR/sessionstore.h on every run; cargo's
# JSON messages say where that is.
set -euo pipefail
cd "$(dirname "$0")/.."
header=${1:-include/sessionstore.h}

generated=$(cargo build --all-features --lib --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    message = json.loads(line)
    if message.get("reason") == "build-script-executed" and "#sessionstore@" in message["package_id"]:
        print(message["out_dir"] + "/sessionstore.h")
')
if [[ ! -f $generated ]]; then
    echo "check-header.sh: cargo did not report the generated header" >&2
    exit 2
fi
if ! diff -u --label "generated from src/ffi.rs" --label "$header" "$generated" "$header"; then
    echo "check-header.sh: $header is stale: build with --features capi (build.rs rewrites" \
        "include/sessionstore.h) and commit it" >&2
    exit 1
fi
echo "$header matches the header generated from src/ffi.rs"
