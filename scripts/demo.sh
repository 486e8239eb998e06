#!/usr/bin/env bash
# Sets everything up on a fresh Debian 12 machine (as root), builds Bulwark
# and the bundled demo image, and runs a hardened container from it that
# reports its own security posture. The image is built here and loaded as
# `docker save IMAGE | bulwark load` would load one: no registry is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
./scripts/setup.sh
rootfs=_build/demo-rootfs
archive=_build/demo-image.tar
image=bulwark.local/demo:1
if [ ! -x "$rootfs/usr/local/bin/probe" ] || [ ! -s "$archive" ]; then
	echo "demo: building the demo image (busybox-static + static probes) in $archive"
	go run ./internal/cmd/mkrootfs -image "$archive" -name "$image" "$rootfs"
fi
echo "demo: bulwark load -i $archive"
./bin/bulwark load -q -i "$archive"
echo
echo "demo: bulwark run $image -- /usr/local/bin/probe -text"
echo
exec ./bin/bulwark run "$image" -- /usr/local/bin/probe -text
