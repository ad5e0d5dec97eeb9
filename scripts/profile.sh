#!/usr/bin/env bash
# Counts the library's own work per request in instructions, under callgrind (which counts
# them whatever the machine's load, where timings on a shared machine are noisy): the
# memory store's load and modified requests (examples/request_instructions.rs), 200 B,
# 2 KB and 20 KB. With a git revision, the same program also runs on that revision's code
# (a detached worktree under target/, built into the same target directory), side by side.
# Writes target/bench-report/instructions.md (the table) and, per tree, the
# callgrind_annotate summary of a 2 KB modified request (profile-<tree>.txt).
#
# AT_REST=encrypted counts the requests with a data key (a load decrypts, a save encrypts).
#
# PROFILER=perf samples the modified request natively instead (`perf record`, CPU clock,
# SHA and AES extensions in use, where callgrind runs their portable code), 2 KB and 20 KB,
# and writes each tree's wall time per request and `perf report` summary, functions of 1 %
# of the samples or more (target/bench-report/perf-<tree>-<payload>.txt).
#
# Usage: scripts/profile.sh [REVISION]   (e.g. scripts/profile.sh main)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
command -v valgrind >/dev/null || apt_install valgrind

# The baseline is built into the same target directory: only the crate itself is rebuilt.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
target=$CARGO_TARGET_DIR
out=target/bench-report
mkdir -p "$out" "$target/profile"
count=200
at_rest=${AT_REST:-plain}
requests=(load modified)
sizes=(200B 2KB 20KB)

# Builds the program from the tree at $1 and copies it to $target/profile/$2.
build() {
    (cd "$1" && cargo build --quiet --release --example request_instructions)
    cp "$target/release/examples/request_instructions" "$target/profile/$2"
}

# Instructions the program $1 executes for "$2 $3 $4".
instructions() {
    local file
    file=$(mktemp)
    valgrind --tool=callgrind --callgrind-out-file="$file" "$target/profile/$1" "$2" "$3" "$4" \
        "$at_rest" 2>&1 >/dev/null | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
    if [[ $2 == modified && $3 == 2KB && $4 != 0 ]]; then
        callgrind_annotate --inclusive=no "$file" 2>/dev/null | head -40 >"$out/profile-$1.txt"
    fi
    rm -f "$file"
}

# Instructions per request of the program $1.
per_request() {
    local base full
    base=$(instructions "$1" "$2" "$3" 0)
    full=$(instructions "$1" "$2" "$3" "$count")
    echo $(((full - base) / count))
}

trees=(current)
if [[ -n ${1:-} ]]; then
    rev=$(git rev-parse --short "$1")
    baseline="$target/profile-baseline"
    rm -rf "$baseline"
    git worktree prune
    git worktree add --detach --quiet "$baseline" "$rev"
    # The program is newer than most revisions: it only uses the public API.
    cp examples/request_instructions.rs "$baseline/examples/"
    say "building $rev"
    build "$baseline" "baseline"
    git worktree remove --force "$baseline"
    trees=(baseline current)
fi
say "building the current tree"
build . current

if [[ ${PROFILER:-callgrind} == perf ]]; then
    command -v perf >/dev/null || apt_install linux-perf
    for tree in "${trees[@]}"; do
        for size in 2KB 20KB; do
            # Wall time per request, unsampled, then the samples.
            start=$(date +%s%N)
            "$target/profile/$tree" modified "$size" 200000 "$at_rest"
            per_request=$((($(date +%s%N) - start) / 200000))
            data=$(mktemp)
            perf record --quiet -e cpu-clock -F 10000 -o "$data" \
                "$target/profile/$tree" modified "$size" 200000 "$at_rest" 2>/dev/null
            perf report -i "$data" --no-children --stdio --sort symbol --percent-limit 1 \
                2>/dev/null | grep -v '^$' |
                sed "1i # modified $size, $tree: $per_request ns per request (wall, unsampled)" \
                    >"$out/perf-$tree-$size.txt"
            rm -f "$data"
            say "$tree, modified $size: $per_request ns per request"
            grep -E '^ +[0-9]' "$out/perf-$tree-$size.txt"
        done
    done
    exit 0
fi

{
    echo "Instructions per request, memory store, at rest $at_rest (callgrind, $count requests)${rev:+; baseline $rev}"
    echo
    if [[ -n ${rev:-} ]]; then
        echo "| request | payload | baseline | current | current / baseline |"
        echo "|---|---|---|---|---|"
    else
        echo "| request | payload | instructions |"
        echo "|---|---|---|"
    fi
    for request in "${requests[@]}"; do
        for size in "${sizes[@]}"; do
            row="| $request | $size"
            figures=()
            for tree in "${trees[@]}"; do
                figures+=("$(per_request "$tree" "$request" "$size")")
                row+=" | ${figures[-1]}"
            done
            if ((${#figures[@]} == 2)); then
                row+=" | $(awk "BEGIN { printf \"%.2f\", ${figures[1]} / ${figures[0]} }")×"
            fi
            echo "$row |"
        done
    done
} | tee "$out/instructions.md"
