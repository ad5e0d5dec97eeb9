#!/usr/bin/env bash
# The C and C++ side of the test command (scripts/test.sh runs it after the cargo build):
#  1. the committed C header (include/sessionstore.h) matches the one build.rs generates
#     from src/ffi/, the check catches a stale header, the header compiles as C and C++, and
#     every function in it is called by a C test; the C++ header (include/sessionstore.hpp)
#     compiles as C++17 and C++20, uses every C function, and each of its public functions
#     is called by the C++ test;
#  2. the library is installed with scripts/install-c.sh into target/c-prefix, and the C and
#     C++ tests and the example servers (libmicrohttpd, cpp-httplib) are built against it
#     through pkg-config (tests/integration/http_contract.rs then drives the servers over HTTP);
#  3. the C and C++ tests run natively, then under valgrind memcheck: any memory error or
#     leaked block fails; the C++ tests also run built with AddressSanitizer and UBSan; the
#     README's C example is built and run under valgrind too;
#  4. a CMake project (ffi/tests/cmake-consumer) finds the installed package with
#     find_package(sessionstore), links the shared and the static library, and runs.
# Usage: scripts/test-c.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
target=$(realpath "${CARGO_TARGET_DIR:-target}")
prefix=$target/c-prefix
out=$target/ffi

apt_install valgrind libmicrohttpd-dev pkg-config g++ libcpp-httplib-dev cmake

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

say "the C++ header compiles as C++17 and C++20 and wraps every C function"
for std in c++17 c++20; do
    g++ -std=$std -Wall -Wextra -Werror -pedantic -fsyntax-only -Iinclude -x c++ include/sessionstore.hpp
done
for function in $(grep -oE '\bsessionstore_[a-z0-9_]+\(' include/sessionstore.h | tr -d '(' | sort -u); do
    # The C++ header copies the last error into its exception instead.
    [[ $function == sessionstore_last_error_copy ]] && continue
    if ! grep -q "\b$function\b" include/sessionstore.hpp; then
        say "include/sessionstore.hpp does not use $function"
        untested=1
    fi
done
((untested == 0))

say "every public function of the C++ header is called by the C++ test"
# The functions declared in the header's classes and namespace, outside `namespace detail`
# and `private:` sections, one per line as the header is written.
cpp_functions=$(sed -e '/^namespace detail {/,/^} \/\/ namespace detail/d' \
    -e '/^private:/,/^\(public:\|};\)/d' include/sessionstore.hpp |
    grep -E '^(inline |    [a-zA-Z~])' | grep -vE '^\s*(return|detail::|if|for|throw)\b' |
    grep -oE '^[^(]*\(' | grep -oE '\b[a-z_]+\($' | tr -d '(' | sort -u)
[[ $(wc -w <<<"$cpp_functions") -gt 40 ]] || { say "found too few C++ functions: $cpp_functions"; exit 1; }
for function in $cpp_functions; do
    if ! grep -qE "(\.|::|->)$function\b" ffi/tests/test_cpp.cpp; then
        say "the C++ test does not call $function"
        untested=1
    fi
done
((untested == 0))

say "install into $prefix (SONAME libsessionstore.so.0 and its symlinks), build the C and C++ tests and the example servers with pkg-config"
scripts/install-c.sh "$prefix" --all-features
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
pkg-config --cflags --libs sessionstore
readelf -d "$prefix/lib/libsessionstore.so" | grep -F '(SONAME)' | grep -qF '[libsessionstore.so.0]'
[[ $(readlink "$prefix/lib/libsessionstore.so") == libsessionstore.so.0 ]]
make -C ffi --no-print-directory OUT="$out" all
# Linked through the symlink libsessionstore.so, the tests load libsessionstore.so.0.
readelf -d "$out/test_api" | grep -F '(NEEDED)' | grep -qF '[libsessionstore.so.0]'

say "the C and C++ tests, natively then under valgrind; the C++ tests with ASan and UBSan"
make -C ffi --no-print-directory OUT="$out" run valgrind sanitize

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

say "a CMake project finds the installed package and links the shared and the static library"
consumer=$out/cmake-consumer
rm -rf "$consumer"
cmake -S ffi/tests/cmake-consumer -B "$consumer" -DCMAKE_PREFIX_PATH="$prefix" >"$out/cmake-consumer.log"
cmake --build "$consumer" >>"$out/cmake-consumer.log"
"$consumer/consumer" | tee "$out/cmake-consumer-run.log"
"$consumer/consumer_static" | tee -a "$out/cmake-consumer-run.log"
[[ $(grep -c "visits: 2$" "$out/cmake-consumer-run.log") == 2 ]]

say "the README's C++ example builds with pkg-config and runs under valgrind"
sed -n '/^## C++ quick start/,/^## /p' README.md | sed -n '/^```cpp$/,/^```$/{//!p}' >"$out/readme_example.cpp"
# shellcheck disable=SC2046 # pkg-config prints several words on purpose
g++ -std=c++17 -Wall -Wextra -Werror -o "$out/readme_example_cpp" "$out/readme_example.cpp" \
    $(pkg-config --cflags --libs sessionstore) -Wl,-rpath,"$prefix/lib"
rm -f "$out"/sessions.db*
(cd "$out" && valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=1 \
    ./readme_example_cpp) | tee "$out/readme_example_cpp.log"
grep -q "^visits: 1, user: nobody$" "$out/readme_example_cpp.log"
