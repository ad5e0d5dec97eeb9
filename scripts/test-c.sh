#!/usr/bin/env bash
# The C side of the test command (scripts/test.sh runs it after the cargo build):
#  1. the committed C header (include/sessionstore.h) matches the one build.rs generates
#     from src/ffi/, the check catches a stale header, the header compiles as C and C++, and
#     every function in it is called by a C test;
#  2. the library is installed with scripts/install-c.sh into target/c-prefix, and the C tests
#     and the libmicrohttpd example server are built against it through pkg-config
#     (tests/integration/http_contract.rs then drives the server over HTTP);
#  3. the C tests run natively, then under valgrind memcheck: any memory error or leaked
#     block fails; the README's C example is built and run under valgrind too.
# Usage: scripts/test-c.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
target=$(realpath "${CARGO_TARGET_DIR:-target}")
prefix=$target/c-prefix
out=$target/ffi

apt_install valgrind libmicrohttpd-dev pkg-config g++

say "the committed header is current"
scripts/check-header.sh

say "a stale header is caught"
mkdir -p "$out"
stale=$out/stale-sessionstore.h
sed 's/sessionstore_version(void)/sessionstore_version_renamed(void)/' include/sessionstore.h >"$stale"
if cmp -s "$stale" include/sessionstore.h; then
    say "could not make a stale copy of the header"
    exit 1
fi
if scripts/check-header.sh "$stale" >"$out/stale-check.log" 2>&1; then
    say "check-header.sh accepted a stale header"
    exit 1
fi
grep -q "is stale" "$out/stale-check.log"
say "ok: check-header.sh refused $stale"

say "the header compiles as C99 and as C++11"
cc -std=c99 -Wall -Wextra -Werror -pedantic -fsyntax-only -x c include/sessionstore.h
g++ -std=c++11 -Wall -Wextra -Werror -pedantic -fsyntax-only -x c++ include/sessionstore.h

say "every function of the header is called by a C test"
untested=0
for function in $(grep -oE '\bsessionstore_[a-z0-9_]+\(' include/sessionstore.h | tr -d '(' | sort -u); do
    if ! grep -q "\b$function(" ffi/tests/*.c; then
        say "no C test calls $function"
        untested=1
    fi
done
((untested == 0))

say "install into $prefix, build the C tests and the example server with pkg-config"
scripts/install-c.sh "$prefix" --all-features
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
pkg-config --cflags --libs sessionstore
make -C ffi --no-print-directory OUT="$out" all

say "the C tests, natively then under valgrind"
make -C ffi --no-print-directory OUT="$out" run valgrind

say "the README's C example builds with pkg-config and runs under valgrind"
sed -n '/^## C quick start/,/^## /p' README.md | sed -n '/^```c$/,/^```$/{//!p}' >"$out/readme_example.c"
# shellcheck disable=SC2046 # pkg-config prints several words on purpose
cc -std=c11 -Wall -Wextra -Werror -o "$out/readme_example" "$out/readme_example.c" \
    $(pkg-config --cflags --libs sessionstore) -Wl,-rpath,"$prefix/lib"
rm -f "$out"/sessions.db*
# The example exits right after freeing its manager, while the SQLite pool's helper threads
# are still ending: their thread stacks show as "possibly lost", so only definite leaks count.
(cd "$out" && valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=1 \
    ./readme_example) | tee "$out/readme_example.log"
grep -q "^visits: 1$" "$out/readme_example.log"
