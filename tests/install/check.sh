#!/usr/bin/env bash
# check.sh BUILD_DIR: installs weft from BUILD_DIR into a temporary prefix,
# then builds and runs a consumer through pkg-config, shared and static.
set -euo pipefail
build=$1
here=$(cd "$(dirname "$0")" && pwd)
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
# shellcheck disable=SC2046
cc "$here/consumer.c" $(pkg-config --cflags --libs weft) -Wl,-rpath,"$prefix/lib" -o "$prefix/shared"
"$prefix/shared"
# shellcheck disable=SC2046
cc "$here/consumer.c" $(pkg-config --cflags weft) "$prefix/lib/libweft.a" $(pkg-config --libs-only-other --static weft) -lpthread -o "$prefix/static"
"$prefix/static"
# Only the API leaves the shared library.
if nm -D --defined-only "$prefix/lib/libweft.so" | awk '$2 == "T" {print $3}' | grep -v '^weft_'; then
  echo "non-API symbols exported" >&2
  exit 1
fi
echo "install: 1 passed, 0 failed"
