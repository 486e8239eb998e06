#!/bin/sh
# Installs what tests/cri drives Bulwark through: containerd from Debian
# (its CRI plugin, the runc shim), runc (the other handler the tests compare
# with), the CNI plugins (bridge, host-local, loopback in /usr/lib/cni), and
# builds crictl (and, with the argument critest, critest and the ginkgo CLI)
# from sigs.k8s.io/cri-tools through the Go module proxy into _build/tools,
# once per version.
#
# Idempotent: a second run costs one dpkg query and two file tests. Needs
# root and Debian's apt for the packages.
set -eu

cd "$(dirname "$0")/.."
. scripts/lib.sh
export PATH="$PATH:/usr/local/go/bin"

need=$(missing_packages containerd runc containernetworking-plugins)
if [ -n "$need" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "install-cri.sh: must run as root to install:$need" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# policy-rc.d keeps the maintainer scripts from starting containerd on
	# the host: the tests start their own with private roots and sockets.
	policy=/usr/sbin/policy-rc.d
	created_policy=0
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod +x "$policy"
		created_policy=1
	fi
	trap 'if [ "$created_policy" = 1 ]; then rm -f "$policy"; fi' EXIT
	apt-get install -y -qq --no-install-recommends $need >/dev/null
fi

# cri-tools' go.mod has no replace directives, so each tool builds from the
# module as the proxy serves it: crictl with go build; with the argument
# "critest" also critest (a Ginkgo suite, built with go test -c as
# cri-tools' own Makefile does) and the ginkgo CLI that critest --parallel
# runs, at the version cri-tools' go.mod names. Each is built once.
version=v1.37.0
dir="$(pwd)/_build/tools/cri-tools@$version"
src=
source_dir() {
	if [ -z "$src" ]; then
		src=$(GOFLAGS= go mod download -json "sigs.k8s.io/cri-tools@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	fi
	echo "$src"
}
mkdir -p "$dir"
if [ ! -x "$dir/crictl" ]; then
	(cd "$(source_dir)" && GOFLAGS= go build -o "$dir/crictl.tmp" ./cmd/crictl)
	mv "$dir/crictl.tmp" "$dir/crictl"
fi
if [ "${1:-}" = critest ]; then
	if [ ! -x "$dir/critest" ]; then
		(cd "$(source_dir)" && GOFLAGS= go test -c -o "$dir/critest.tmp" ./cmd/critest)
		mv "$dir/critest.tmp" "$dir/critest"
	fi
	if [ ! -x "$dir/ginkgo" ]; then
		ginkgo=$(sed -n 's/^[[:space:]]*github.com\/onsi\/ginkgo\/v2 \(v[^ ]*\)$/\1/p' "$(source_dir)/go.mod")
		GOFLAGS= GOBIN="$dir" go install "github.com/onsi/ginkgo/v2/ginkgo@$ginkgo"
	fi
fi
