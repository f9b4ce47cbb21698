#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
#
# Checks an installed zeropool the way its users will consume it:
#
#   tests/install/run.sh PREFIX WORKDIR
#
# PREFIX holds an install (cmake --install ... --prefix PREFIX); WORKDIR is
# emptied and receives the consumer builds. `make install-check` runs it
# after installing the release preset into build/install-prefix.
#
#  1. The install: both headers, libzeropool.a, libzeropool.so with its
#     soname link, the CMake package and zeropool.pc; the shared library
#     exports only zp_* symbols.
#  2. CMake: c/ (C11) and cpp/ (C++17, zeropool.hpp) configured with
#     find_package(zeropool VERSION) against PREFIX only, linked with
#     zeropool::zeropool (shared) and zeropool::zeropool_static; a version
#     the package does not provide is refused.
#  3. pkg-config: c/consumer.c compiled as C11 and as C++17 and
#     cpp/consumer.cpp as C++17, each linked shared (pkg-config --libs) and
#     static (libzeropool.a with the .pc's Libs.private and
#     Requires.private; pkg-config --static --libs is checked to list them).
#
# Every consumer must run and print "ok"; a static one must not need
# libzeropool.so, a shared one must. CC and CXX pick the compilers (cc, c++).
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 PREFIX WORKDIR" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
prefix=$(cd "$1" && pwd)
rm -rf "$2"
mkdir -p "$2"
work=$(cd "$2" && pwd)
CC=${CC:-cc}
CXX=${CXX:-c++}
WARN=(-Wall -Wextra -Wpedantic -Werror)

fail() {
  echo "install-check: FAILED: $*" >&2
  exit 1
}
step() { echo "==== install-check: $*"; }

# Runs a consumer; it must exit 0 and say "ok".
run_consumer() {
  local bin=$1 out
  out=$("$bin") || fail "$bin exited with $?"
  echo "  $out"
  [[ $out == *" ok" ]] || fail "$bin did not print ok"
}

# needs_shared BIN yes|no: whether BIN must have libzeropool.so as NEEDED.
needs_shared() {
  local bin=$1 want=$2 has=no
  if readelf -d "$bin" | grep -q 'NEEDED.*\[libzeropool\.so'; then has=yes; fi
  [ "$has" = "$want" ] ||
    fail "$bin: libzeropool.so needed: $has, expected $want"
}

# ---- 1. the install ---------------------------------------------------------

step "installed files in $prefix"
version=$(sed -n 's/^#define ZP_VERSION_STRING "\(.*\)"$/\1/p' \
  "$prefix/include/zeropool.h")
[ -n "$version" ] || fail "no ZP_VERSION_STRING in $prefix/include/zeropool.h"
[ -f "$prefix/include/zeropool.hpp" ] || fail "zeropool.hpp not installed"
static_lib=$(find "$prefix" -name libzeropool.a -print -quit)
[ -n "$static_lib" ] || fail "libzeropool.a not installed"
libdir=$(dirname "$static_lib")
major=${version%%.*}
for f in "libzeropool.so" "libzeropool.so.$major" "libzeropool.so.$version" \
  "cmake/zeropool/zeropoolConfig.cmake" \
  "cmake/zeropool/zeropoolConfigVersion.cmake" \
  "cmake/zeropool/zeropoolTargets.cmake" "pkgconfig/zeropool.pc"; do
  [ -e "$libdir/$f" ] || fail "$libdir/$f not installed"
done
soname=$(readelf -d "$libdir/libzeropool.so.$version" |
  sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libzeropool.so.$major" ] || fail "soname is '$soname'"
foreign=$(nm -D --defined-only "$libdir/libzeropool.so" |
  awk '{print $3}' | grep -v '^zp_' || true)
[ -z "$foreign" ] || fail "libzeropool.so exports more than zp_*: $foreign"
echo "  zeropool $version, libdir $libdir, soname $soname, only zp_* exported"

# ---- 2. CMake: find_package(zeropool) ----------------------------------------

for lang in c cpp; do
  for link in shared static; do
    static=OFF
    [ "$link" = static ] && static=ON
    build="$work/cmake-$lang-$link"
    step "CMake consumer: $lang, $link"
    cmake -S "$here/$lang" -B "$build" -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
      -DCONSUMER_STATIC=$static -DCONSUMER_VERSION="$version" \
      >"$build.log" 2>&1 || {
      cat "$build.log"
      fail "cmake configure ($lang, $link)"
    }
    found=$(sed -n 's/^zeropool_DIR:PATH=//p' "$build/CMakeCache.txt")
    [[ $found == "$prefix"/* ]] || fail "find_package found $found"
    cmake --build "$build" >>"$build.log" 2>&1 || {
      cat "$build.log"
      fail "cmake build ($lang, $link)"
    }
    bin="$build/consumer_$lang"
    run_consumer "$bin"
    if [ "$link" = static ]; then needs_shared "$bin" no; else
      needs_shared "$bin" yes
    fi
  done
done

step "CMake consumer: a version the package does not provide is refused"
bad_version="$((major + 1)).0"
if cmake -S "$here/c" -B "$work/cmake-bad-version" \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
  -DCONSUMER_VERSION="$bad_version" >"$work/cmake-bad-version.log" 2>&1; then
  fail "find_package(zeropool $bad_version) accepted zeropool $version"
fi
grep -q "compatible with requested version" "$work/cmake-bad-version.log" ||
  fail "find_package(zeropool $bad_version) failed for another reason"
echo "  find_package(zeropool $bad_version) refused, as it should"

# ---- 3. pkg-config -----------------------------------------------------------

export PKG_CONFIG_PATH="$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
step "pkg-config zeropool"
pc_version=$(pkg-config --modversion zeropool)
[ "$pc_version" = "$version" ] || fail "zeropool.pc says $pc_version"
pc_libdir=$(pkg-config --variable=libdir zeropool)
[ "$(cd "$pc_libdir" && pwd)" = "$libdir" ] ||
  fail "zeropool.pc: libdir $pc_libdir, installed in $libdir"
read -r -a cflags <<<"$(pkg-config --cflags zeropool)"
read -r -a libs <<<"$(pkg-config --libs zeropool)"
read -r -a full_static <<<"$(pkg-config --static --libs zeropool)"
[[ " ${full_static[*]} " == *" -pthread "* ]] ||
  fail "pkg-config --static --libs lacks -pthread: ${full_static[*]}"
if grep -q '^Requires.private:.*hwloc' "$libdir/pkgconfig/zeropool.pc"; then
  [[ " ${full_static[*]} " == *" -lhwloc "* ]] ||
    fail "pkg-config --static --libs lacks -lhwloc: ${full_static[*]}"
fi
# The static link takes the archive itself (not whichever -lzeropool
# resolves to), its Libs.private, and its Requires.private as they are
# installed (shared): `pkg-config --static` would also ask for the private
# libraries of hwloc, for a fully static link, and Debian's hwloc.pc lists
# -ludev there although libhwloc-dev does not bring libudev-dev.
read -r -a requires_private <<<"$(pkg-config --print-requires-private zeropool)"
read -r -a libs_private <<<"$(sed -n 's/^Libs.private: *//p' \
  "$libdir/pkgconfig/zeropool.pc")"
static_libs=("${libs[@]/#-lzeropool/-l:libzeropool.a}" "${libs_private[@]}")
if [ ${#requires_private[@]} -gt 0 ]; then
  read -r -a dep_libs <<<"$(pkg-config --libs "${requires_private[@]}")"
  static_libs+=("${dep_libs[@]}")
fi
echo "  cflags: ${cflags[*]}"
echo "  libs: ${libs[*]}"
echo "  static libs (--static): ${full_static[*]}"
echo "  static link: ${static_libs[*]}"

# pc_build NAME COMPILER LANGFLAGS... -- SOURCE: builds shared and static.
pc_build() {
  local name=$1 compiler=$2
  shift 2
  local -a langflags=()
  while [ "$1" != "--" ]; do
    langflags+=("$1")
    shift
  done
  local src=$2
  step "pkg-config consumer: $name, shared"
  "$compiler" "${langflags[@]}" "${WARN[@]}" "${cflags[@]}" "$src" \
    -o "$work/pc-$name-shared" "${libs[@]}" -Wl,-rpath,"$libdir" ||
    fail "pkg-config build ($name, shared)"
  run_consumer "$work/pc-$name-shared"
  needs_shared "$work/pc-$name-shared" yes
  step "pkg-config consumer: $name, static"
  "$compiler" "${langflags[@]}" "${WARN[@]}" "${cflags[@]}" "$src" \
    -o "$work/pc-$name-static" "${static_libs[@]}" ||
    fail "pkg-config build ($name, static)"
  run_consumer "$work/pc-$name-static"
  needs_shared "$work/pc-$name-static" no
}

pc_build c "$CC" -std=c11 -- "$here/c/consumer.c"
pc_build c-as-cxx "$CXX" -x c++ -std=c++17 -- "$here/c/consumer.c"
pc_build cpp "$CXX" -std=c++17 -- "$here/cpp/consumer.cpp"

step "all passed (zeropool $version in $prefix)"
