#!/usr/bin/env bash
# What learning costs a syscall-heavy workload, and what its learned profile
# costs next to the default: `spin getppid N` (raw getppid(2) in a loop on
# one locked thread, prints ns per call) under `bulwark run` (default
# profile), under `bulwark learn` (every call a seccomp notification answered
# with CONTINUE) and under `bulwark run --profile LEARNED`. ROUNDS rounds,
# interleaved; median and minimum per cell (a busy host only adds time).
#   flock /work/wt/bench.lock bench/learn.sh     (root; docs/learn.md quotes it)
#   N=200000 ROUNDS=5 by default
# A second table times `dd bs=1 count=DD` (DD=200000: 400 000 read/write
# calls of a real, dynamically linked program) on the Debian test rootfs
# (DEBIAN=DIR, default the cache scripts/test.sh builds) the same three ways,
# in seconds as dd reports them; skipped, saying why, without that rootfs.
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

DD=${DD:-200000}
DEBIAN=${DEBIAN:-$(ls -d /var/cache/bulwark-test/debian-*/ 2>/dev/null | head -n 1)}
if [ -z "$DEBIAN" ] || [ ! -x "$DEBIAN/bin/dd" ]; then
	echo "(dd table skipped: no Debian test rootfs; scripts/test.sh integration builds it, or set DEBIAN=DIR)"
	exit 0
fi
# dd's own figure ("... copied, 1.06 s, ..."), so container start-up is not in it.
ddsec() { sed -n 's/.*copied, \([0-9.e-]*\) s,.*/\1/p'; }
dd_cmd=(/bin/dd if=/dev/zero of=/dev/null bs=1 count="$DD")
bw learn -o "$tmp/dd.json" "$DEBIAN" -- "${dd_cmd[@]}" >/dev/null 2>&1
declare -A dd
for r in $(seq "$ROUNDS"); do
	dd[default]+="$(bw run "$DEBIAN" -- "${dd_cmd[@]}" 2>&1 | ddsec) "
	dd[learning]+="$(bw learn -o "$tmp/dd-again.json" "$DEBIAN" -- "${dd_cmd[@]}" 2>&1 | ddsec) "
	dd[learned]+="$(bw run --profile "$tmp/dd.json" "$DEBIAN" -- "${dd_cmd[@]}" 2>&1 | ddsec) "
done
echo
echo "| dd bs=1 count=$DD, $ROUNDS rounds | seconds, median | minimum |"
echo "|---|---|---|"
for k in default learning learned; do
	echo "${dd[$k]}" | tr ' ' '\n' | grep . | sort -g | awk -v k="$k" '
		{ v[NR] = $1 }
		END { if (NR == 0) { printf "| %s | failed | failed |\n", k; exit }
		      printf "| %s | %.2f | %.2f |\n", k, (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), v[1] }'
done
