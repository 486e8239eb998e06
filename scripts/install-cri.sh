#!/bin/sh
# Installs what tests/cri drives Bulwark through: containerd from Debian
# (its CRI plugin, the runc shim), runc (the other handler the tests compare
# with), the CNI plugins (bridge, host-local, loopback in /usr/lib/cni), and
# builds crictl (and, with the argument critest, critest and the ginkgo CLI)
# from sigs.k8s.io/cri-tools through the Go module proxy into _build/tools,
# once per version; with critest it also unpacks Debian's dynamically linked
# busybox package (not installed) into _build/tools/busybox-dynamic.
#
# With the argument containerd-1.7 it also builds containerd v1.7 (cmd/containerd
# and its runc shim) from github.com/containerd/containerd through the Go
# module proxy into _build/tools/containerd@VERSION: Debian 12's containerd
# 1.6 drops the CRI's user namespace options (hostUsers: false), which 1.7
# passes to the runtime; TestPodUserNamespace uses it when it is there. The
# build takes about 20 minutes on a busy 2-core machine, once.
#
# Idempotent: a second run costs one dpkg query and two file tests. Needs
# root and Debian's apt for the packages.
set -eu

cd "$(dirname "$0")/.."
. scripts/lib.sh
export PATH="$PATH:/usr/local/go/bin"

install_packages --no-services containerd runc containernetworking-plugins

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
	# critest's images get Debian's dynamically linked busybox: the static
	# one's shell runs its applets without exec (FEATURE_SH_STANDALONE), so
	# masking /bin/ls (the MaskedPaths spec) cannot stop `sh -c ls`. Only
	# the package file is fetched and unpacked here, not installed: it
	# would replace the host's busybox-static.
	bbdir="$(pwd)/_build/tools/busybox-dynamic"
	if [ ! -x "$bbdir/bin/busybox" ]; then
		rm -rf "$bbdir.tmp" && mkdir -p "$bbdir.tmp"
		# apt's download sandbox user cannot write below _build.
		if ! (cd "$bbdir.tmp" && apt-get download -qq -o APT::Sandbox::User=root busybox); then
			apt-get update -qq
			(cd "$bbdir.tmp" && apt-get download -qq -o APT::Sandbox::User=root busybox)
		fi
		dpkg-deb -x "$bbdir.tmp"/busybox_*.deb "$bbdir.tmp"
		rm -rf "$bbdir" && mv "$bbdir.tmp" "$bbdir"
	fi
fi

# containerd 1.7 from its module. Its go.mod has no replace directives, but
# the module cache is read-only and go build needs go.sum entries it adds,
# so the source is copied. CGO off: the btrfs, devmapper and zfs
# snapshotters (cgo) are not needed, overlayfs is.
if [ "${1:-}" = containerd-1.7 ]; then
	cversion=v1.7.35
	cdir="$(pwd)/_build/tools/containerd@$cversion"
	if [ ! -x "$cdir/containerd" ] || [ ! -x "$cdir/containerd-shim-runc-v2" ]; then
		csrc=$(GOFLAGS= go mod download -json "github.com/containerd/containerd@$cversion" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
		work=$(mktemp -d)
		trap 'rm -rf "$work"' EXIT
		cp -r "$csrc/." "$work/" && chmod -R u+w "$work"
		mkdir -p "$cdir"
		(cd "$work" && GOFLAGS= CGO_ENABLED=0 go build -mod=mod -tags "no_btrfs no_devmapper no_zfs" -o "$cdir/containerd.tmp" ./cmd/containerd &&
			GOFLAGS= CGO_ENABLED=0 go build -mod=mod -o "$cdir/containerd-shim-runc-v2.tmp" ./cmd/containerd-shim-runc-v2)
		mv "$cdir/containerd-shim-runc-v2.tmp" "$cdir/containerd-shim-runc-v2"
		mv "$cdir/containerd.tmp" "$cdir/containerd"
	fi
fi
