#!/usr/bin/env bash
# Runs the benchmarks of docs/BENCHMARKS.md (release build, every store feature) against the
# servers of scripts/services.sh, which it starts first when they are not running. The
# report suites' output (Markdown) is also written to target/bench-report/<suite>.md.
#
# Usage: scripts/bench.sh [SUITE] [-- CRITERION ARGS]
#   SUITE: ratios (default: the interleaved ratio table, library / raw driver, and the C ABI
#          / Rust API table), throughput (1-8 threads, distinct and shared sessions),
#          request_cycle (criterion: every store and request), components (criterion: the
#          library's own work, no server), capi (criterion: C ABI vs Rust API), python (the
#          Python package against Flask-Session 0.8 and redis-py on Redis, in the test
#          virtualenv, the package installed from a release build first), or all.
# Environment: BENCH_STORES=redis,postgres (default: every store), BENCH_QUICK=1 (short
#   runs), BENCH_SECONDS=N (throughput: seconds per configuration, default 1),
#   BENCH_BASELINE=REVISION (components: first runs the suite on that revision's code, in a
#   detached worktree under the target directory, then on the current tree, which criterion
#   compares with it: the "change" lines). The python suite takes its own flags after --
#   (--rounds N, --requests N, --redis URL).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

suite=${1:-ratios}
shift || true
[[ ${1:-} == -- ]] && shift
case $suite in
    all) suites=(ratios throughput request_cycle components capi python) ;;
    ratios | throughput | request_cycle | components | capi | python) suites=("$suite") ;;
    *)
        echo "unknown suite $suite" \
            "(ratios, throughput, request_cycle, components, capi, python, all)" >&2
        exit 2
        ;;
esac

scripts/services.sh
out=target/bench-report
mkdir -p "$out"
for name in "${suites[@]}"; do
    say "benchmark $name (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
    case $name in
        ratios | throughput)
            cargo bench --all-features --bench "$name" -- "$@" | tee "$out/$name.md"
            ;;
        python)
            python_package
            quick=()
            [[ -n ${BENCH_QUICK:-} ]] && quick=(--quick)
            "$VENV/bin/python" bindings/python/benchmarks/bench_session.py "${quick[@]}" "$@" |
                tee "$out/$name.md"
            ;;
        components)
            if [[ -n ${BENCH_BASELINE:-} ]]; then
                rev=$(git rev-parse --short "$BENCH_BASELINE")
                # Built into this tree's target directory: only the crate itself is rebuilt.
                export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
                baseline="$CARGO_TARGET_DIR/bench-baseline"
                rm -rf "$baseline"
                git worktree prune
                git worktree add --detach --quiet "$baseline" "$rev"
                say "components on $rev (the baseline)"
                (cd "$baseline" && cargo bench --all-features --bench components -- \
                    --save-baseline "$rev" "$@")
                git worktree remove --force "$baseline"
                say "components on the current tree, against $rev"
                cargo bench --all-features --bench components -- --baseline "$rev" "$@"
            else
                cargo bench --all-features --bench components -- "$@"
            fi
            ;;
        *) cargo bench --all-features --bench "$name" -- "$@" ;;
    esac
done
