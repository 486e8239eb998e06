#!/usr/bin/env bash
# What learning costs a syscall-heavy workload, and what its learned profile
# costs next to the default: `spin getppid N` (raw getppid(2) in a loop on
# one locked thread, prints ns per call) under `bulwark run` (default
# profile), under `bulwark learn` (every call a seccomp notification answered
# with CONTINUE) and under `bulwark run --profile LEARNED`. ROUNDS rounds,
# interleaved; median and minimum per cell (a busy host only adds time).
#   flock /work/wt/bench.lock bench/learn.sh     (root; docs/learn.md quotes it)
#   N=200000 ROUNDS=5 by default
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
[ "$(id -u)" = 0 ] || { echo "bench/learn.sh: must run as root" >&2; exit 1; }
N=${N:-200000}
ROUNDS=${ROUNDS:-5}
tmp=$(mktemp -d)
root=$tmp/state
trap 'rm -rf "$tmp"' EXIT
scripts/build.sh "$tmp/bulwark" >&2
CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$tmp/spin" ./bench/payload/spin
rootfs=$tmp/rootfs
mkdir -p "$rootfs"/{bin,proc,sys,dev,tmp,etc}
cp "$tmp/spin" "$rootfs/bin/spin"
chmod 755 "$tmp" "$rootfs"
bw() { "$tmp/bulwark" --root "$root" "$@"; }
ns() { awk '$1 == "getppid" { print $3 }'; }

declare -A cells
for r in $(seq "$ROUNDS"); do
	cells[default]+="$(bw run "$rootfs" -- /bin/spin getppid "$N" | ns) "
	cells[learning]+="$(bw learn -o "$tmp/p.json" "$rootfs" -- /bin/spin getppid "$N" 2>/dev/null | ns) "
	cells[learned]+="$(bw run --profile "$tmp/p.json" "$rootfs" -- /bin/spin getppid "$N" | ns) "
done
allowed=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['observed']['syscalls']))" "$tmp/p.json")
echo "| getppid, $N calls, $ROUNDS rounds | ns per call, median | minimum |"
echo "|---|---|---|"
for k in default learning learned; do
	echo "${cells[$k]}" | tr ' ' '\n' | grep . | sort -n | awk -v k="$k" '
		{ v[NR] = $1 }
		END { printf "| %s | %.0f | %.0f |\n", k, (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), v[1] }'
done
echo "(learned profile: $allowed syscalls recorded; kernel $(uname -r), $(nproc) cores)"
