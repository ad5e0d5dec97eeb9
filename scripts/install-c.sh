#!/usr/bin/env bash
# Builds the C library and installs it under PREFIX, for pkg-config and CMake:
#   PREFIX/include/sessionstore.h and PREFIX/include/sessionstore.hpp (the C++17 wrapper)
#   PREFIX/lib/libsessionstore.so.VERSION (SONAME libsessionstore.so.0), with the symlinks
#     libsessionstore.so.0 (what programs load) and libsessionstore.so (what -lsessionstore
#     links against), and PREFIX/lib/libsessionstore.a
#   PREFIX/lib/pkgconfig/sessionstore.pc
#   PREFIX/lib/cmake/sessionstore/sessionstore-config.cmake and -config-version.cmake
#     (find_package(sessionstore): imported targets sessionstore::sessionstore, shared, and
#     sessionstore::sessionstore_static)
# Usage: scripts/install-c.sh PREFIX [cargo build options]
#   The options default to `--release --features capi` (the default stores: SQLite,
#   filesystem, memory); add stores with e.g. `--release --features capi,redis`.
# Then: export PKG_CONFIG_PATH=PREFIX/lib/pkgconfig
#       cc app.c $(pkg-config --cflags --libs sessionstore)
#   or: cmake -DCMAKE_PREFIX_PATH=PREFIX ...
set -euo pipefail
prefix=${1:?usage: scripts/install-c.sh PREFIX [cargo build options]}
shift
prefix=$(realpath -m "$prefix")
cd "$(dirname "$0")/.."

options=("$@")
((${#options[@]})) || options=(--release --features capi)
profile=debug
for option in "${options[@]}"; do
    [[ $option == --release ]] && profile=release
done
cargo build --lib "${options[@]}"

target=$(realpath "${CARGO_TARGET_DIR:-target}")/$profile
if ! nm -D --defined-only "$target/libsessionstore.so" | grep -qw sessionstore_version; then
    echo "install-c.sh: $target/libsessionstore.so has no C API: build with the capi feature" >&2
    exit 1
fi
version=$(sed -n 's/^#define SESSIONSTORE_VERSION "\(.*\)"$/\1/p' include/sessionstore.h)
# The system libraries a static link needs besides the archive (those of Rust's std).
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
libs_private=$(rustc --crate-type staticlib --crate-name probe --print native-static-libs \
    -o "$probe/libprobe.a" - </dev/null 2>&1 | sed -n 's/.*native-static-libs: //p')

install -d "$prefix/include" "$prefix/lib/pkgconfig" "$prefix/lib/cmake/sessionstore"
install -C -m 644 include/sessionstore.h include/sessionstore.hpp "$prefix/include/"
soname=$(readelf -d "$target/libsessionstore.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
if [[ $soname != libsessionstore.so.* ]]; then
    echo "install-c.sh: $target/libsessionstore.so has no SONAME libsessionstore.so.N" >&2
    exit 1
fi
install -C -m 755 "$target/libsessionstore.so" "$prefix/lib/libsessionstore.so.$version"
ln -sfn "libsessionstore.so.$version" "$prefix/lib/$soname"
ln -sfn "$soname" "$prefix/lib/libsessionstore.so"
install -C -m 644 "$target/libsessionstore.a" "$prefix/lib/"
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" -e "s|@LIBS_PRIVATE@|$libs_private|" \
    ffi/sessionstore.pc.in >"$prefix/lib/pkgconfig/sessionstore.pc"
# CMake wants the static library's system libraries as a list of names: -lm -ldl -> m;dl.
# shellcheck disable=SC2086 # one word per library on purpose
cmake_libs=$(printf '%s\n' $libs_private | sed -n 's/^-l//p' | paste -sd ';')
IFS=. read -r major minor _ <<<"$version"
for file in sessionstore-config.cmake sessionstore-config-version.cmake; do
    sed -e "s|@VERSION@|$version|" -e "s|@VERSION_MAJOR@|$major|" -e "s|@VERSION_MINOR@|$minor|" \
        -e "s|@SIZEOF_VOID_P@|$(($(getconf LONG_BIT) / 8))|" -e "s|@LIBS_PRIVATE@|$cmake_libs|" \
        "ffi/cmake/$file.in" >"$prefix/lib/cmake/sessionstore/$file"
done
echo "installed sessionstore $version ($profile) in $prefix"
