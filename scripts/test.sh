#!/usr/bin/env bash
# Runs Bulwark's tests. With no target it runs every test: lint, unit and
# integration tests (real containers, as root), engine tests, VM tests and
# fuzz smoke runs. That is what CI runs.
#
#   scripts/test.sh [TARGET...]
#
#   all          the default: lint, every Go package (./...), fuzz smoke
#   quick        lint and unit tests; no containers, engines or VMs
#   lint         gofmt, goimports grouping, go vet, staticcheck
#   unit         every package except the three integration ones below
#   integration  ./tests: real containers through bin/bulwark
#   engines      ./tests/engines: Docker, Podman and containerd drive bulwark
#   engines-realsw  ./tests/engines' real Debian software (postgres, nginx, redis, python3)
#                through Docker, Podman and containerd under the floor, alone (3-6 min;
#                all runs it too, with the rest of ./tests/engines)
#   cri          ./tests/cri: containerd's CRI runs pods with bulwark (crictl)
#   critest      Kubernetes' CRI validation suite, bulwark vs runc (not in all)
#   cri17        a hostUsers: false pod through containerd 1.7, built from source (not in all)
#   usernet      ./tests' user-mode network tests alone (pasta, slirp4netns), ten
#                first-instruction runs per relay instead of three
#   fuse         ./tests' fuse-overlayfs tests alone (a rootless image run's snapshot where the
#                kernel refuses overlayfs)
#   vm           ./tests/vm: QEMU guests (pure cgroup v2, systemd driver, --isolation vm)
#   vmiso        ./tests/vm's VM isolation tests alone (TestIsolationVM*, TestOCIVM*)
#   vmnet        ./tests/vm's guest network tests alone (a bridge network into the guest)
#   conformance  the OCI runtime-tools validation suite (conformance/run.sh)
#   runc-bats    runc's own integration suite (bats) against bulwark, failing on
#                any failure runcbats/excluded.txt does not explain (not in all:
#                ~25-50 min on 2 cores)
#   killsweep    ./tests' kill-at-any-point tests with every command SIGKILLed every 12 ms
#                from 0 to 708 ms (BULWARK_KILL_SWEEP=dense; not in all: ~10 min on 2 cores)
#   fuzz         15 s of each fuzz target
#
# Each target installs only what it needs: setup.sh always, install-engines.sh
# for engines, install-cri.sh for cri, install-vm.sh for vm (all installs
# them all).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
export PATH="$PATH:$(go env GOPATH)/bin"

module=github.com/bulwark-sec/bulwark
# Lint tools at pinned versions, each in its own directory so a different
# version elsewhere on PATH is never the one that runs.
staticcheck_version=v0.8.2
goimports_version=v0.53.0

# tool NAME PACKAGE VERSION prints the path of NAME, installing it first.
tool() {
	local dir="_build/tools/$1@$3"
	if [ ! -x "$dir/$1" ]; then
		GOFLAGS= GOBIN="$(pwd)/$dir" go install "$2@$3"
	fi
	echo "$dir/$1"
}

# unit_pkgs lists every package but the four that start real containers,
# engines and VMs (./tests, ./tests/engines, ./tests/cri, ./tests/vm).
unit_pkgs() {
	go list ./... | grep -v -x -e "$module/tests" -e "$module/tests/engines" -e "$module/tests/cri" -e "$module/tests/vm"
}

# import_order fails on an import block whose groups are out of order:
# goimports -local separates the groups but does not reorder them.
import_order() {
	awk -v module="$module" '
		/^import \($/ { inblock = 1; max = 0; next }
		inblock && /^\)/ { inblock = 0; next }
		inblock {
			line = $0
			sub(/\/\/.*/, "", line)
			if (match(line, /"[^"]+"/) == 0) next
			path = substr(line, RSTART + 1, RLENGTH - 2)
			first = path
			sub(/\/.*/, "", first)
			class = index(first, ".") > 0 ? 1 : 0
			if (path == module || index(path, module "/") == 1) class = 2
			if (class < max) {
				printf "%s: import %s belongs before the group above it (order: std, third party, %s)\n", FILENAME, path, module
				bad = 1
			}
			if (class > max) max = class
		}
		END { exit bad }
	' "$@"
}

lint() {
	local files unformatted goimports staticcheck
	goimports=$(tool goimports golang.org/x/tools/cmd/goimports "$goimports_version")
	staticcheck=$(tool staticcheck honnef.co/go/tools/cmd/staticcheck "$staticcheck_version")
	mapfile -t files < <(git ls-files '*.go')
	echo "== gofmt"
	unformatted=$(gofmt -l "${files[@]}")
	if [ -n "$unformatted" ]; then echo "gofmt would change: $unformatted"; exit 1; fi
	echo "== goimports (std, third party, then $module)"
	unformatted=$("$goimports" -l -local "$module" "${files[@]}")
	if [ -n "$unformatted" ]; then echo "goimports -local $module would change: $unformatted"; exit 1; fi
	import_order "${files[@]}"
	echo "== go vet"
	go vet ./...
	echo "== staticcheck"
	"$staticcheck" ./...
}

unit() {
	echo "== unit tests"
	mapfile -t pkgs < <(unit_pkgs)
	go test -count=1 "${pkgs[@]}"
}

# debian_rootfs builds the Debian rootfs of the real-software tests, once
# per package list and apt sources, cached outside the checkout: a cold
# cache (several minutes) must not be built inside a test's timeout. Where
# it cannot be built the tests that need it skip and say why.
debian_rootfs() {
	echo "== Debian test rootfs"
	local rc=0
	go run ./internal/cmd/mkdebian || rc=$?
	case $rc in
	0) ;;
	3) echo "warning: no Debian test rootfs; the real-software tests will skip" ;;
	*) exit $rc ;;
	esac
}

# -p 1: the integration packages start real containers and engines; running
# packages one at a time keeps a 2-core machine from timing out daemons.
gotest_root() {
	go test -p 1 -count=1 -timeout 40m "$@"
}

# fuzz_one TARGET PKG fuzzes one target for 15 s. Go 1.26's fuzz
# coordinator can report "context deadline exceeded" at the end of a
# -fuzztime on a busy machine with no failing input at all (Go issue 75804,
# fixed in Go 1.27). Such a run, recognised by that message and by no new
# input written under testdata/fuzz, is run once more; a real failure
# writes its input and fails at once.
count_inputs() {
	if [ -d "$1" ]; then ls "$1" | wc -l; else echo 0; fi
}

fuzz_one() {
	local corpus="$2/testdata/fuzz/$1" before after out
	for attempt in 1 2; do
		before=$(count_inputs "$corpus")
		if out=$(go test -run '^$' -fuzz "^$1\$" -fuzztime 15s "$2" 2>&1); then
			echo "$out" | tail -n 2
			return 0
		fi
		after=$(count_inputs "$corpus")
		echo "$out"
		if [ "$attempt" = 1 ] && [ "$before" = "$after" ] && echo "$out" | grep -q 'context deadline exceeded'; then
			echo "fuzz: $1 stopped on Go's fuzztime deadline race with no failing input; running it again"
			continue
		fi
		return 1
	done
	return 1
}

fuzz() {
	echo "== fuzz smoke"
	for target in "FuzzLoadBundle ./pkg/oci" "FuzzParseMountOptions ./pkg/oci" "FuzzValidate ./pkg/seccomp" "FuzzUnmarshal ./internal/wire" "FuzzParseOCI ./pkg/audit" "FuzzParseDocker ./pkg/audit" "FuzzParseKubernetes ./pkg/audit" "FuzzUnpack ./pkg/image/unpack" "FuzzParse ./pkg/seccomp/killlog" "FuzzImageConfig ./pkg/userface" "FuzzIsUserRun ./cmd/bulwark" "FuzzGuestFrames ./internal/vmproto"; do
		set -- $target
		fuzz_one "$1" "$2"
	done
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(all)
for t in "${targets[@]}"; do
	case $t in
	all | quick | lint | unit | integration | network | usernet | fuse | engines | engines-realsw | cri | critest | cri17 | vm | vmiso | vmnet | conformance | runc-bats | killsweep | fuzz) ;;
	*)
		echo "test.sh: unknown target $t (all, quick, lint, unit, integration, network, usernet, fuse, engines, engines-realsw, cri, critest, cri17, vm, vmiso, vmnet, conformance, runc-bats, killsweep, fuzz)" >&2
		exit 2
		;;
	esac
done

./scripts/setup.sh
for t in "${targets[@]}"; do
	case $t in
	all)
		./scripts/install-engines.sh
		./scripts/install-cri.sh # CNI plugins and crictl for tests/cri
		./scripts/install-vm.sh # qemu + a Debian kernel for tests/vm (pure cgroup v2 guest)
		lint
		debian_rootfs
		echo "== go test"
		# With the engines' real software (engines-realsw): about 3 min
		# idle, the floor's claim that real programs run under it.
		BULWARK_ENGINES_REALSW=1 gotest_root ./...
		fuzz
		;;
	quick)
		lint
		unit
		;;
	lint) lint ;;
	unit) unit ;;
	integration)
		debian_rootfs
		echo "== integration tests"
		gotest_root ./tests/
		;;
	network)
		# Part of integration (and so of all) too: the networks alone.
		echo "== network tests"
		gotest_root -run '^TestNetwork' ./tests/
		;;
	usernet)
		# Part of integration too, with three runs where this has ten.
		echo "== user-mode network tests"
		BULWARK_USERNET_LOOPS=10 gotest_root -run '^(TestRootlessUserModeNetwork|TestUserModeNetwork)' ./tests/
		;;
	fuse)
		# Part of integration too.
		echo "== fuse-overlayfs tests"
		gotest_root -run '^TestRootlessFuseOverlay' ./tests/
		;;
	engines)
		./scripts/install-engines.sh
		./scripts/install-vm.sh # QEMU and a kernel for the bulwark-vm runtime's cases
		echo "== engine tests"
		gotest_root ./tests/engines/
		;;
	engines-realsw)
		# TestFloorRunsRealSoftware... skip unless asked: each imports the
		# Debian rootfs into its engine and runs four daemons.
		./scripts/install-engines.sh
		debian_rootfs
		echo "== real software through the engines under the floor"
		BULWARK_ENGINES_REALSW=1 gotest_root -v -run '^TestFloorRunsRealSoftware' ./tests/engines/
		;;
	cri)
		./scripts/install-cri.sh
		echo "== CRI tests"
		gotest_root ./tests/cri/
		;;
	critest)
		# TestCritest... skips unless asked: two full runs of the suite.
		./scripts/install-cri.sh critest
		echo "== critest (bulwark vs runc)"
		BULWARK_CRITEST=1 gotest_root -v -run '^TestCritest' ./tests/cri/
		;;
	cri17)
		# Debian's containerd 1.6 drops the CRI's user namespace options;
		# 1.7 is built once into _build/tools (minutes from a cold cache).
		./scripts/install-cri.sh containerd-1.7
		echo "== CRI tests with containerd 1.7"
		BULWARK_CRI17=1 gotest_root -v -run '^TestPodUserNamespaceContainerd17$' ./tests/cri/
		;;
	vm)
		./scripts/install-vm.sh
		echo "== VM tests"
		gotest_root ./tests/vm/
		;;
	vmiso)
		./scripts/install-vm.sh
		echo "== VM isolation tests"
		gotest_root -run '^(TestIsolationVM|TestOCIVM)' ./tests/vm/
		;;
	vmnet)
		./scripts/install-vm.sh
		./scripts/install-cri.sh # the CNI plugins behind --net bridge
		echo "== VM network tests"
		gotest_root -run '^TestIsolationVM(BridgeNetwork|NetworkWithout)' ./tests/vm/
		;;
	conformance)
		# TestConformanceSuite skips unless asked: it fetches the suite's
		# source through the module proxy.
		echo "== conformance"
		BULWARK_CONFORMANCE=1 gotest_root -run '^TestConformanceSuite$' ./tests/
		;;
	runc-bats)
		# runc's tests/integration from the Go module proxy (or
		# RUNC_BATS_SRC), its helpers, a busybox and a Debian image built
		# here, then bats against bin/bulwark (runcbats/README.md).
		echo "== runc's integration suite"
		runcbats/run.sh
		;;
	killsweep)
		# The default run kills each command at 7-25 points; this is the
		# sweep that found what those points keep fixed.
		echo "== kill-at-any-point tests, dense"
		BULWARK_KILL_SWEEP=dense gotest_root -run 'KilledAtAnyPoint' ./tests/
		;;
	fuzz) fuzz ;;
	esac
done
echo "== passed: ${targets[*]} (${SECONDS} s)"
