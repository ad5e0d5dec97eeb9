#!/usr/bin/env bash
# Compares a C header with the one build.rs generates from the current sources (src/ffi/,
# cbindgen.toml) and fails when they differ; with --update, writes the generated one to
# include/sessionstore.h instead (run it after changing the C API, then commit the header).
# Usage: scripts/check-header.sh [HEADER]     (default: include/sessionstore.h)
#        scripts/check-header.sh --update
# build.rs (feature capi) writes the generated header only to $OUT_DIR/sessionstore.h;
# cargo's JSON messages say where that is.
set -euo pipefail
cd "$(dirname "$0")/.."
committed=include/sessionstore.h
update=false
if [[ ${1:-} == --update ]]; then
    update=true
    header=$committed
else
    header=${1:-$committed}
fi

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
if $update; then
    if cmp -s "$generated" "$header"; then
        echo "$header is already current"
    else
        cp "$generated" "$header"
        echo "$header updated from src/ffi/: commit it"
    fi
    exit 0
fi
if ! diff -u --label "generated from src/ffi/" --label "$header" "$generated" "$header"; then
    echo "check-header.sh: $header is stale: run scripts/check-header.sh --update and commit" \
        "$committed" >&2
    exit 1
fi
echo "$header matches the header generated from src/ffi/"
