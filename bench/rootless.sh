#!/usr/bin/env bash
# Rootless: the person's whole `bulwark run` of /bin/true as a user who is
# not root, with --net none, with a user-mode network publishing a port
# (--net pasta -p, --net slirp -p), and of an image from the user's store,
# next to rootless `podman run` doing the same (-p through its slirp4netns
# and rootlessport; podman 4.3 has no pasta). All traffic stays on this
# machine (nothing connects to the published ports; they are bound and
# given back). Writes bench/results/rootless.md, which bench/run.sh carries
# into docs/benchmarks.md.
#   flock /work/wt/bench.lock bench/rootless.sh     (BENCH_RUNS=N, default 20)
# Runs as a bench account of its own (bulwark-bench, made once, with a
# subordinate range of its own), so that no test's account is disturbed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"
[ "$(id -u)" = 0 ] || { echo "bench/rootless.sh: must run as root" >&2; exit 1; }
command -v hyperfine >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >&2; }
runs=${BENCH_RUNS:-20}
out=bench/results/rootless.md
mkdir -p bench/results
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

user=bulwark-bench
sub=1400000000:65536
if ! id "$user" >/dev/null 2>&1; then
	useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --user-group "$user"
fi
for f in /etc/subuid /etc/subgid; do
	grep -q "^$user:$sub\$" "$f" || { sed -i "/^$user:/d" "$f"; echo "$user:$sub" >>"$f"; }
done

./scripts/build.sh bin/bulwark
tmp=$(mktemp -d /tmp/bulwark-bench-rootless.XXXXXX)
chmod 755 "$tmp"
cp bin/bulwark bin/bulwark-tools "$tmp/"
home=$tmp/home
run=$tmp/run
mkdir -p "$home" "$run"
chmod 700 "$run"
as_user() {
	runuser -u "$user" -- env -i HOME="$home" XDG_RUNTIME_DIR="$run" USER="$user" \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}
cleanup() {
	as_user podman unshare rm -rf "$home/.local/share/containers" >/dev/null 2>&1 || true
	# Rootless podman's pause process, which this script's podman started.
	if [ -s "$run/libpod/tmp/pause.pid" ]; then kill -KILL "$(cat "$run/libpod/tmp/pause.pid")" 2>/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT

rootfs=$home/rootfs
mkdir -p "$rootfs"/{bin,proc,sys,dev,etc,tmp}
cp /bin/busybox "$rootfs/bin/"
for a in sh true sleep; do ln -s busybox "$rootfs/bin/$a"; done
chown -R "$user:$user" "$home" "$run"

bw="$tmp/bulwark"
p="podman --events-backend none --cgroup-manager cgroupfs"
# The image: the rootfs imported by podman and saved as a docker-archive,
# loaded into bulwark's store from that file: one image in both stores.
# Owned by root in the image, as images are.
tar -C "$rootfs" --owner=0 --group=0 --numeric-owner -cf "$home/rootfs.tar" .
chown "$user:$user" "$home/rootfs.tar"
as_user $p import -q "$home/rootfs.tar" localhost/bench-rootless:1 >/dev/null
as_user $p save -q -o "$home/img.tar" localhost/bench-rootless:1
as_user "$bw" load -q -i "$home/img.tar" >/dev/null
img=localhost/bench-rootless:1

# Warm everything outside the timings (the seccomp cache, podman's storage).
as_user "$bw" run --net pasta -p 18300:80 "$rootfs" -- /bin/true
as_user "$bw" run "$img" -- /bin/true

cmds=(-n "bulwark --net none" "$bw run --net none $rootfs -- /bin/true"
	-n "bulwark --net pasta -p" "$bw run --net pasta -p 18300:80 $rootfs -- /bin/true"
	-n "bulwark --net slirp -p" "$bw run --net slirp -p 18301:80 $rootfs -- /bin/true")
podman_note="rootless podman left out (not installed, or BENCH_NO_PODMAN)"
podman_rt=""
if [ -z "${BENCH_NO_PODMAN:-}" ] && command -v podman >/dev/null; then
	# crun refuses a v1 hybrid host with controllers on cgroup2; runc runs.
	popts="--rm --ulimit nofile=1024:1024 --ulimit nproc=1024:1024"
	podman_note="rootless podman run failed here with crun and runc"
	for rt in crun runc; do
		if as_user $p run --runtime "$rt" $popts --network slirp4netns -p 18302:80 --rootfs "$rootfs" /bin/true >/dev/null 2>"$tmp/podman-$rt.err"; then
			podman_rt=$rt
			podman_note="podman $(podman --version | awk '{print $3}') rootless with $rt (slirp4netns, rootlessport for -p; no cgroup on this v1 host)"
			[ "$rt" = crun ] || podman_note="$podman_note; crun refused this host: $(grep -v '^$' "$tmp/podman-crun.err" | tail -n1 | head -c 160)"
			break
		fi
	done
	if [ -n "$podman_rt" ]; then
		cmds+=(-n "podman run -p (slirp4netns)" "$p run --runtime $podman_rt $popts --network slirp4netns -p 18302:80 --rootfs $rootfs /bin/true")
	fi
fi
as_user hyperfine -N --warmup 3 --runs "$runs" --export-json "$home/net.json" "${cmds[@]}" >&2

icmds=(-n "bulwark run IMAGE" "$bw run $img -- /bin/true")
if [ -n "$podman_rt" ]; then
	icmds+=(-n "podman run IMAGE" "$p run --runtime $podman_rt $popts --network none $img /bin/true")
fi
as_user hyperfine -N --warmup 3 --runs "$runs" --export-json "$home/img.json" "${icmds[@]}" >&2
left=$(pgrep -u "$user" -l | grep -c -E 'pasta|slirp4netns|bulwark' || true)

python3 - "$home/net.json" "$home/img.json" "$out" "$runs" "$podman_note" "$(git rev-parse --short HEAD)" "$(nproc)" "$load_before" "$(cut -d' ' -f1-3 /proc/loadavg)" "$(date -u +%Y-%m-%d)" "$left" <<'PY'
import json, sys
net, img, out, runs, pnote, rev, ncpu, lb, la, day, left = sys.argv[1:]
def rows(src, base_name):
    res = json.load(open(src))["results"]
    base = next(r for r in res if r["command"] == base_name)
    return [f"| {r['command']} | {r['mean']*1e3:.1f} ± {r['stddev']*1e3:.1f} ms | {r['median']*1e3:.1f} ms | {r['mean']/base['mean']:.2f}x |" for r in res]
busy = max(float(lb.split()[0]), float(la.split()[0])) > float(ncpu)
lines = ["## 9. Rootless runs and user-mode networks (bench/rootless.sh)", "",
         f"The person's whole `run` of /bin/true as a user who is not root (an account with a subordinate range, no cgroup on this v1 host), {runs} runs each after 3 warm-ups (hyperfine -N), bulwark {rev} on {day}, {ncpu} cores, load {lb} before and {la} after" + (" (a busy host: other work shared the cores, so the absolute times are high and noisy; compare rows of one table)" if busy else "") + f". {pnote}. A pasta or slirp4netns run includes the relay's start and its readiness before the payload starts, and its end. Relays of the bench account left after the runs: {left}.", "",
         "| command (rootless) | mean ± sd | median | vs first row |", "|---|---|---|---|"]
lines += rows(net, "bulwark --net none")
lines += ["", "An image from the user's store (a busybox image imported by podman, saved as a docker-archive and loaded by bulwark: the same image in both stores), no network:", "",
          "| command (rootless) | mean ± sd | median | vs first row |", "|---|---|---|---|"]
lines += rows(img, "bulwark run IMAGE")
lines.append("")
open(out, "w").write("\n".join(lines))
PY
cat "$out"
