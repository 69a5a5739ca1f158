#!/usr/bin/env bash
# Build the Erlang peer benchmark program weftpeer-erlang (Erlang/OTP from Debian: erlang-nox).
#
#   bench/peers/erlang/build.sh [OUTPUT]     # default OUTPUT: bench/peers/erlang/weftpeer-erlang
#
# Compiles weftpeer.erl into OUTPUT.ebin/ (next to OUTPUT) and writes OUTPUT, an executable shell
# wrapper that starts erl on that directory and passes the command line through.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/weftpeer-erlang}"
case "$out" in
  /*) ;;
  *) out="$PWD/$out" ;;   # relative to the caller's directory, not to $here
esac

command -v erlc >/dev/null || { echo "build.sh: 'erlc' not found (Debian package erlang-nox)" >&2; exit 1; }
erl="$(command -v erl)" || { echo "build.sh: 'erl' not found (Debian package erlang-nox)" >&2; exit 1; }

ebin="$out.ebin"
mkdir -p "$ebin"
erlc -Werror -o "$ebin" "$here/weftpeer.erl"

# The wrapper finds OUTPUT.ebin next to itself (after resolving symlinks), so OUTPUT and its
# .ebin directory can be moved together.
cat >"$out.tmp" <<EOF
#!/usr/bin/env bash
# weftpeer-erlang: the Erlang/OTP peer of weft-bench (built by bench/peers/erlang/build.sh).
#   $(basename "$out") NAME [--workers W] [--n N]
#   $(basename "$out") --list
# All arguments go to weftpeer:main/0 (after -extra), which parses and validates them. This script
# only looks at them for the VM flags that must be fixed at start-up:
#   --workers W    -> +S W:W (W schedulers, all online); the caller pins CPUs with taskset
#   actor-memory N -> +P with room for N processes; actor-spawn D -> +P with room for 2^D - 1
set -uo pipefail

ebin="\$(dirname "\$(readlink -f "\$0")")/$(basename "$ebin")"

name= workers= n= prev=
for a in "\$@"; do
  case "\$prev" in
    --workers) workers="\$a"; prev=; continue ;;
    --n) n="\$a"; prev=; continue ;;
  esac
  case "\$a" in
    --workers=*) workers="\${a#*=}" ;;
    --n=*) n="\${a#*=}" ;;
    -*) ;;
    *) [ -n "\$name" ] || name="\$a" ;;
  esac
  prev="\$a"
done

# A positive decimal integer (at most 9 digits), printed without leading zeros; else nothing.
num() { [[ "\$1" =~ ^[0-9]{1,9}\$ ]] && [ "\$((10#\$1))" -ge 1 ] && echo "\$((10#\$1))"; }

flags=()
w="\$(num "\$workers")" && [ "\$w" -le 1024 ] && flags+=(+S "\$w:\$w")

# Process limit: the default (262144) is too small for these two. The VM rounds +P up to a power
# of two and touches the whole table, so it is sized to the run; at most erl's maximum.
need=
case "\$name" in
  actor-memory) need="\$(num "\${n:-1000000}")" ;;
  actor-spawn) d="\$(num "\${n:-20}")" && [ "\$d" -le 26 ] && need="\$(( (1 << d) - 1 ))" ;;
esac
if [ -n "\$need" ] && [ "\$((need + 65536))" -le 134217727 ]; then
  flags+=(+P "\$((need + 65536))")
fi
# Otherwise weftpeer reports that N does not fit the process limit (usage error).

# No crash dump (a 1M-process VM would write gigabytes into the caller's directory).
export ERL_CRASH_DUMP_SECONDS=0
exec "$erl" "\${flags[@]}" -noinput -pa "\$ebin" -s weftpeer main -extra "\$@"
EOF
chmod +x "$out.tmp"
mv "$out.tmp" "$out"
echo "built $out"
