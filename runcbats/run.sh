#!/usr/bin/env bash
# Runs runc's own integration suite (tests/integration/*.bats) against
# Bulwark, or against runc built from the same source as a baseline, and
# fails on any failure not listed in runcbats/excluded.txt.
#
# usage: runcbats/run.sh [--runtime bulwark|runc] [FILE.bats...]
# env:   BULWARK          the bulwark binary (default ./bin/bulwark)
#        RUNC_BATS_SRC    a runc source tree to take the suite from (default:
#                         the module at $RUNC_BATS_VERSION from the Go proxy)
#        RUNC_BATS_VERSION  default v1.5.3
#        RUNC_BATS_OUT    work and output directory (default _build/runc-bats)
#        BULWARK_TEST_CACHE where the Debian image is cached (default
#                         /var/cache/bulwark-test)
#        RUNC_BATS_FILTER only the tests whose name matches this regex
#                         (bats -f)
#
# Needs root, Go, and apt and the Go module proxy reachable on first use; no
# other network: the busybox and Debian images runc's get-images.sh would
# download are built here (busybox-static, mmdebstrap).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
export PATH="$PATH:/usr/local/go/bin"

runtime=bulwark
files=()
while [ $# -gt 0 ]; do
	case $1 in
	--runtime)
		runtime=$2
		shift 2
		;;
	--runtime=*)
		runtime=${1#--runtime=}
		shift
		;;
	*)
		files+=("$1")
		shift
		;;
	esac
done
case $runtime in
bulwark | runc) ;;
*)
	echo "run.sh: --runtime is bulwark or runc, not $runtime" >&2
	exit 2
	;;
esac
if [ "$(id -u)" != 0 ]; then
	echo "run.sh: runc's suite creates containers, cgroups, mounts and loop devices; run as root" >&2
	exit 1
fi

version=${RUNC_BATS_VERSION:-v1.5.3}
out=${RUNC_BATS_OUT:-$repo/_build/runc-bats}
cache=${BULWARK_TEST_CACHE:-/var/cache/bulwark-test}
bulwark=$(readlink -f "${BULWARK:-$repo/bin/bulwark}")
mkdir -p "$out"

# bats runs the suite; jq and gawk are its helpers' tools; script gives it
# the terminal `runc run` of a terminal: true config needs; gcc builds the
# hooks_so test's libraries, libseccomp-dev the seccomp agent; criu makes
# runc's checkpoint tests run (Bulwark has no checkpoint: excluded).
need=(bats jq gawk bsdutils busybox-static mmdebstrap gcc libc6-dev libseccomp-dev pkg-config iproute2 util-linux criu)
missing=()
for p in "${need[@]}"; do
	dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "run.sh: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The suite's source. A module zip carries tests/integration and tests/cmd
# but no vendor/, so the helpers then build with -mod=mod from the proxy.
src=$out/src
if [ -n "${RUNC_BATS_SRC:-}" ]; then
	stamp="dir:$(readlink -f "$RUNC_BATS_SRC")"
else
	stamp="module:$version"
fi
if [ "$(cat "$src/.stamp" 2>/dev/null)" != "$stamp" ]; then
	rm -rf "$src"
	mkdir -p "$src"
	if [ -n "${RUNC_BATS_SRC:-}" ]; then
		cp -a "$RUNC_BATS_SRC/." "$src/"
	else
		dir=$(GOFLAGS= go mod download -json "github.com/opencontainers/runc@$version" | jq -r '.Dir // empty')
		if [ -z "$dir" ]; then
			echo "run.sh: go mod download github.com/opencontainers/runc@$version failed" >&2
			exit 1
		fi
		cp -a "$dir/." "$src/"
		chmod -R u+w "$src"
		# A module zip keeps no file modes: the suite runs its scripts
		# (get-images.sh) directly.
		find "$src" -name '*.sh' -exec chmod +x {} +
	fi
	echo "$stamp" >"$src/.stamp"
fi
mod=-mod=mod
[ -d "$src/vendor" ] && mod=-mod=vendor

# runc's test helpers (recvtty, seccompagent, ...) into tests/cmd/_bin,
# where helpers.bash looks for them.
bin=$src/tests/cmd/_bin
if [ ! -e "$bin/.built" ]; then
	echo "== building runc's test helpers"
	mkdir -p "$bin"
	(cd "$src" && GOFLAGS= go build "$mod" -tags seccomp -o "$bin/" ./tests/cmd/...)
	touch "$bin/.built"
fi
if [ "$runtime" = runc ]; then
	# The baseline: runc from the very source the tests come from.
	# Debian 12 has no libpathrs, runc's default build tag.
	if [ ! -x "$src/runc" ]; then
		echo "== building runc"
		(cd "$src" && GOFLAGS= go build "$mod" -tags seccomp -o runc .)
	fi
	binary=$src/runc
else
	binary=$bulwark
	if [ ! -x "$binary" ]; then
		echo "run.sh: no bulwark binary at $binary (scripts/build.sh builds it)" >&2
		exit 1
	fi
fi

# The images get-images.sh would download, built here under the names it
# looks for (it downloads only what is missing; tar finds the compression
# by content, so an uncompressed tar under its .tar.xz name is fine).
testdata=$src/tests/integration/testdata
arch=$(go env GOARCH)
if [ ! -e "$testdata/busybox-$arch.tar.xz" ]; then
	echo "== busybox image (busybox-static)"
	"$here/busybox-image.sh" "$testdata/busybox-$arch.tar.xz"
fi
if [ ! -e "$testdata/debian-$arch.tar.xz" ]; then
	# A minbase Debian 12, the counterpart of the slim image runc's tests
	# take (they run ionice, chrt, findmnt and the like from util-linux).
	deb=$cache/runc-bats-debian-bookworm-minbase.tar
	if [ ! -e "$deb" ]; then
		echo "== Debian image (mmdebstrap, a few minutes once)"
		mkdir -p "$cache"
		mmdebstrap --quiet --variant=minbase bookworm "$deb.tmp"
		mv "$deb.tmp" "$deb"
	fi
	ln -sf "$deb" "$testdata/debian-$arch.tar.xz"
fi

# Every temporary file of the suite under the work dir, never /tmp.
tmp=$out/tmp
rm -rf "$tmp"
mkdir -p "$tmp"
chmod 0755 "$tmp"
tap=$out/$runtime.tap
if [ ${#files[@]} -eq 0 ]; then
	targets=("$src/tests/integration")
else
	targets=()
	for f in "${files[@]}"; do targets+=("$src/tests/integration/$(basename "$f")"); done
fi
echo "== runc's integration suite ($stamp) against $runtime: $binary"
start=$SECONDS
# `script` gives bats a controlling terminal: runc spec's config has
# terminal: true and several tests run it in the foreground.
# script's stdin is a FIFO opened read-write, which never reaches EOF: at
# EOF script writes an end-of-file byte into its terminal, the runtime
# under test relays it to the container's, and the payload's output then
# starts with the "^@" its echo prints ("memory policy interleave without
# flags" compares the first line whole). Run from an interactive shell the
# stdin never ends either; run from a script or CI it often has.
mkfifo "$tmp/stdin"
filter=()
[ -n "${RUNC_BATS_FILTER:-}" ] && filter=(-f "$RUNC_BATS_FILTER")
set +e
(cd "$src" && TMPDIR=$tmp RUNC=$binary script -qefc "bats -t -T $(printf '%q ' "${filter[@]}" "${targets[@]}")" /dev/null <>"$tmp/stdin") | tee "$tap"
set -e
rm -rf "$tmp"
# helpers.bash removes its parent cgroup from the v1 hierarchies but not
# from a hybrid host's unified one; empty directories only.
for d in /sys/fs/cgroup/*/runc-cgroups-integration-test; do
	[ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
done
echo "== took $((SECONDS - start)) s; TAP in $tap"
exec "$here/verdict.sh" "$tap" "$here/excluded.txt" "$runtime"
