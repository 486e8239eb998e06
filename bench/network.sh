#!/usr/bin/env bash
# Networks: the start cost of `bulwark run --net bridge` (and with -p) next to
# --net none and to `podman run -p` (crun, podman's CNI bridge) on this host,
# and TCP throughput container -> container over the bulwark0 bridge and over
# macvlan on a dummy parent. All traffic stays on this machine. Writes
# bench/results/network.md, which bench/run.sh puts in docs/benchmarks.md.
#   flock /work/wt/bench.lock bench/network.sh     (BENCH_RUNS=N, default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"
[ "$(id -u)" = 0 ] || { echo "bench/network.sh: must run as root" >&2; exit 1; }
command -v hyperfine >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >&2; }
runs=${BENCH_RUNS:-30}
out=bench/results/network.md
mkdir -p bench/results

./scripts/build.sh bin/bulwark
tmp=$(mktemp -d /tmp/bulwark-bench-net.XXXXXX)
chmod 755 "$tmp"
root=$tmp/state
bw=(bin/bulwark --root "$root")
podman_had_bridge=$(ip link show cni-podman0 >/dev/null 2>&1 && echo 1 || echo 0)
cleanup() {
	"${bw[@]}" rm -f bench-srv >/dev/null 2>&1 || true
	ip link del bwbench0 >/dev/null 2>&1 || true
	[ "$podman_had_bridge" = 1 ] || ip link del cni-podman0 >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT

rootfs=$tmp/rootfs
mkdir -p "$rootfs"/{bin,proc,sys,dev,etc,tmp,usr/local/bin}
cp /bin/busybox "$rootfs/bin/"
for a in sh true sleep; do ln -s busybox "$rootfs/bin/$a"; done
CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$rootfs/usr/local/bin/tcpbench" ./bench/payload/tcpbench

# Warm the networks (bridge, rules, portmap's chains) outside the timings.
"${bw[@]}" run --net bridge -p 18200:80 "$rootfs" -- /bin/true

cmds=(-n "bulwark --net none" "${bw[*]} run --net none $rootfs -- /bin/true"
	-n "bulwark --net bridge" "${bw[*]} run --net bridge $rootfs -- /bin/true"
	-n "bulwark --net bridge -p" "${bw[*]} run --net bridge -p 18200:80 $rootfs -- /bin/true")
podman_note="podman left out (not installed, or BENCH_NO_PODMAN)"
if [ -z "${BENCH_NO_PODMAN:-}" ] && command -v podman >/dev/null; then
	# podman's default rlimits (nofile, nproc 1048576) exceed this sandbox's
	# hard limits; crun refuses a v1 hybrid host with controllers on v2
	# (bench/run.sh moves them), so runc stands in there.
	p="podman --root $tmp/podman --runroot $tmp/podman-run --cgroup-manager cgroupfs --events-backend none"
	popts="--rm --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --network bridge -p 18201:80 --rootfs $rootfs /bin/true"
	podman_note="podman run failed here with crun and runc"
	for rt in crun runc; do
		if $p run --runtime "$rt" $popts >/dev/null 2>"$tmp/podman.err"; then
			cmds+=(-n "podman run -p ($rt)" "$p run --runtime $rt $popts")
			podman_note="podman $(podman --version | awk '{print $3}') with $rt, its CNI bridge (cni-podman0), --rootfs (no image)"
			[ "$rt" = crun ] || podman_note="$podman_note; crun refused this host: $(head -c 200 "$tmp/podman-crun.err" | tr '\n' ' ')"
			break
		fi
		cp "$tmp/podman.err" "$tmp/podman-$rt.err"
	done
fi
hyperfine -N --warmup 3 --runs "$runs" --export-json "$tmp/start.json" "${cmds[@]}" >&2

# Throughput: a server container and a client container on one network.
throughput() { # NET -> MB/s
	"${bw[@]}" run -d --name bench-srv --net "$1" "$rootfs" -- /usr/local/bin/tcpbench serve 5201 >/dev/null
	local ip
	ip=$(for f in /run/bulwark-net/attach/*.json; do python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["ip"]) if r["id"]=="bench-srv" and r["root"]==sys.argv[2] else None' "$f" "$root"; done | grep -v None | head -n1)
	"${bw[@]}" run --net "$1" "$rootfs" -- /usr/local/bin/tcpbench send "$ip:5201" 5 | awk '/MB\/s/ {print $2}'
	"${bw[@]}" rm -f bench-srv >/dev/null
}
bridge_mbs=$(throughput bridge)
# A dummy parent, or one end of a veth pair where the kernel has no dummy.
ip link add bwbench0 type dummy 2>/dev/null || { ip link add bwbench0 type veth peer name bwbench0p && ip link set bwbench0p up; }
ip link set bwbench0 up && ip addr add 10.89.210.1/24 dev bwbench0
macvlan_mbs=$(throughput macvlan:bwbench0)

python3 - "$tmp/start.json" "$out" "$runs" "$bridge_mbs" "$macvlan_mbs" "$podman_note" "$(git rev-parse --short HEAD)" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" "$(date -u +%Y-%m-%d)" <<'PY'
import json, sys
src, out, runs, bmbs, mmbs, pnote, rev, ncpu, load, day = sys.argv[1:]
res = json.load(open(src))["results"]
base = next(r for r in res if r["command"] == "bulwark --net none")
lines = ["## 8. Networks (bench/network.sh)", "",
         f"`run` of /bin/true by network mode, {runs} runs each after 3 warm-ups (hyperfine -N), bulwark {rev} on {day}, {ncpu} cores, load {load} at the end. The networks were warmed first (bridge, rules). {pnote}.", "",
         "| command | mean ± sd | median | vs --net none |", "|---|---|---|---|"]
for r in res:
    lines.append(f"| {r['command']} | {r['mean']*1e3:.1f} ± {r['stddev']*1e3:.1f} ms | {r['median']*1e3:.1f} ms | {r['mean']/base['mean']:.2f}x |")
lines += ["", "TCP throughput, one connection for 5 s, container -> container on this host (tcpbench, bench/payload; iperf3 would need a dynamic rootfs):", "",
          "| path | MB/s |", "|---|---|", f"| bulwark0 bridge (veth) | {bmbs} |", f"| macvlan on a test parent (a dummy, or a veth end where the kernel has none) | {mmbs} |", ""]
open(out, "w").write("\n".join(lines))
PY
cat "$out"
