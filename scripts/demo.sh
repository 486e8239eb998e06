#!/usr/bin/env bash
# Sets everything up on a fresh Debian 12 machine (as root), builds Bulwark
# and the bundled demo rootfs, and runs a hardened container that reports its
# own security posture.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
./scripts/setup.sh
rootfs=_build/demo-rootfs
if [ ! -x "$rootfs/usr/local/bin/probe" ]; then
	echo "demo: building the demo rootfs (busybox-static + static probes) in $rootfs"
	go run ./internal/cmd/mkrootfs "$rootfs"
fi
echo
echo "demo: bulwark run $rootfs -- /usr/local/bin/probe -text"
echo
exec ./bin/bulwark run "$rootfs" -- /usr/local/bin/probe -text
