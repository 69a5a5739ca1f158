#!/usr/bin/env bash
# Build the Go peer benchmark program weftpeer-go and, beside it, the HTTP hello server
# weftpeer-go-http (http.go, for bench/http.sh) (standard library only, no network).
#
#   bench/peers/go/build.sh [OUTPUT]     # default OUTPUT: bench/peers/go/weftpeer-go
#                                        # the server goes to OUTPUT-http
#
# GOPROXY=off guarantees no download is attempted. When the usual Go cache directories are not
# writable (e.g. HOME is read-only), GOCACHE/GOPATH go under ${TMPDIR:-/tmp}.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/weftpeer-go}"
case "$out" in
  /*) ;;
  *) out="$PWD/$out" ;;   # relative to the caller's directory, not to $here
esac

command -v go >/dev/null || { echo "build.sh: 'go' not found (Debian package golang-go)" >&2; exit 1; }

# Use a writable cache: the default one if it can be created/written, else one under /tmp.
writable_dir() { mkdir -p "$1" 2>/dev/null && [ -w "$1" ]; }
fallback="${TMPDIR:-/tmp}/weftpeer-go-$(id -u)"
if ! writable_dir "$(go env GOCACHE 2>/dev/null || echo /nonexistent)"; then
  export GOCACHE="$fallback/cache"
fi
gopath_first="$(go env GOPATH 2>/dev/null | cut -d: -f1)"
if ! writable_dir "${gopath_first:-/nonexistent}"; then
  export GOPATH="$fallback/gopath"
fi

export GOPROXY=off GOFLAGS=-mod=mod GO111MODULE=on CGO_ENABLED=0
mkdir -p "$(dirname "$out")"
cd "$here"
go build -trimpath -o "$out" .
echo "built $out"
# http.go has the "ignore" build constraint (it is its own main package): built by file name.
go build -trimpath -o "$out-http" http.go
echo "built $out-http"
