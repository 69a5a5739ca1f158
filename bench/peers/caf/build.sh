#!/usr/bin/env bash
# Build the CAF peer benchmark program weftpeer-caf (C++17, CAF 0.17 from Debian's libcaf-dev).
#
#   bench/peers/caf/build.sh [OUTPUT]     # default OUTPUT: bench/peers/caf/weftpeer-caf
#
# A relative OUTPUT is taken relative to the caller's directory. CXX overrides the compiler (g++).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/weftpeer-caf}"
case "$out" in
  /*) ;;
  *) out="$PWD/$out" ;;   # relative to the caller's directory, not to $here
esac

cxx="${CXX:-g++}"
command -v "$cxx" >/dev/null || { echo "build.sh: '$cxx' not found (Debian package g++)" >&2; exit 1; }
[ -f /usr/include/caf/all.hpp ] || { echo "build.sh: CAF headers not found (Debian package libcaf-dev)" >&2; exit 1; }

mkdir -p "$(dirname "$out")"
"$cxx" -std=c++17 -O2 -Wall -Wextra -o "$out" "$here/weftpeer.cpp" -lcaf_core -pthread
echo "built $out"
