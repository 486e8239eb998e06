#!/usr/bin/env bash
# Benchmarks Bulwark next to runc and crun in one run and regenerates
# docs/benchmarks.md. Needs root (containers, cgroups, mounts).
#   bench/run.sh                 full run, ~5 minutes on 2 cores
#   BENCH_QUICK=1 bench/run.sh   smoke run, ~1-2 minutes; writes
#                                bench/results/benchmarks-quick.md so a smoke
#                                run never replaces the published numbers
#   BENCH_OUT=FILE               write the report elsewhere
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"

if [ "$(id -u)" != 0 ]; then
	echo "bench/run.sh: must run as root" >&2
	exit 1
fi

notes=()

# Install only what is missing: apt-get update is slow and needs the network.
missing=()
command -v runc >/dev/null || missing+=(runc)
command -v crun >/dev/null || missing+=(crun)
command -v hyperfine >/dev/null || missing+=(hyperfine)
# The rootfs needs the static busybox; the dynamic one would not run there.
if ! [ -x /bin/busybox ] || ! file -L /bin/busybox 2>/dev/null | grep -q 'statically linked'; then
	missing+=(busybox-static)
fi
if [ ${#missing[@]} -gt 0 ]; then
	echo "bench: installing ${missing[*]}" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
	notes+=("installed with apt-get: ${missing[*]}")
fi
# Section 7 pulls and runs an image with Docker and Podman next to Bulwark:
# it starts a dockerd of its own (private data root and socket), so run
# nothing else that starts engines at the same time.
if ! command -v dockerd >/dev/null || ! command -v podman >/dev/null; then
	echo "bench: installing the container engines (scripts/install-engines.sh)" >&2
	if ./scripts/install-engines.sh >&2; then
		notes+=("installed the container engines with scripts/install-engines.sh")
	else
		notes+=("scripts/install-engines.sh failed: the image section may leave docker or podman out")
	fi
fi
command -v go >/dev/null || { echo "bench/run.sh: go not found (expected in /usr/local/go/bin)" >&2; exit 1; }

# On a v1 hybrid host crun refuses to start while any v1 controller sits on
# the cgroup2 hierarchy instead of its own v1 mount. Moving it to v1 is
# allowed as long as no cgroup2 subtree has it enabled.
# (cgroupfs files report size 0, so read the list instead of testing -s.)
on_v2=""
if [ "$(stat -f -c %T /sys/fs/cgroup)" != cgroup2fs ] && [ -r /sys/fs/cgroup/unified/cgroup.controllers ]; then
	on_v2=$(cat /sys/fs/cgroup/unified/cgroup.controllers)
fi
if [ -n "$on_v2" ]; then
	for c in $on_v2; do
		mkdir -p "/sys/fs/cgroup/$c"
		if mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c"; then
			echo "bench: mounted the $c v1 hierarchy at /sys/fs/cgroup/$c (crun needs every v1 controller on v1)" >&2
			notes+=("host fix: the $c controller was on cgroup2 of this v1 hybrid host, which makes crun refuse to start; the script mounted the $c v1 hierarchy at /sys/fs/cgroup/$c (left mounted: it is host configuration, not a bench container's mount)")
		else
			notes+=("the $c controller is on cgroup2 and could not be moved to v1; crun may fail")
		fi
	done
fi

out=docs/benchmarks.md
[ "${BENCH_QUICK:-}" = 1 ] && out=bench/results/benchmarks-quick.md
out=${BENCH_OUT:-$out}
mkdir -p "$(dirname "$out")"

tmp=$(mktemp -d /tmp/bulwark-bench-build.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# Measure only a bulwark built from this tree: a stale binary from an older
# commit would put wrong numbers under Bulwark's name.
bulwark=bin/bulwark
if [ -d cmd/bulwark ]; then
	if ./scripts/build.sh bin/bulwark 2>"$tmp/bulwark-build.log"; then
		notes+=("bulwark built from this tree ($(git rev-parse --short HEAD 2>/dev/null || echo '?'))")
	else
		echo "bench: building bulwark failed; benchmarking runc and crun only:" >&2
		cat "$tmp/bulwark-build.log" >&2
		notes+=("bulwark did not build from this tree ($(head -n1 "$tmp/bulwark-build.log")); left out")
		bulwark="$tmp/no-bulwark"
	fi
fi

CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$tmp/spin" ./bench/payload/spin
go build -o "$tmp/benchrun" ./bench/cmd/benchrun

BENCH_HOST_NOTES="$(printf '%s\n' "${notes[@]+"${notes[@]}"}")" \
	"$tmp/benchrun" -spin "$tmp/spin" -bulwark "$bulwark" \
	-docker-seccomp bench/profiles/docker-default.json \
	-busybox /bin/busybox -out "$out" -raw bench/results/raw.json "$@"
