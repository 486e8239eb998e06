#!/usr/bin/env bash
# Installs what building and testing Bulwark needs on Debian 12, then builds
# bin/bulwark. Idempotent; run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

# mmdebstrap: the Debian rootfs the real-software tests run (internal/testrootfs).
# containernetworking-plugins and iptables: `run --net bridge|NAME|macvlan:...` (pkg/network).
# uidmap (newuidmap/newgidmap, setuid): rootless runs map the ranges /etc/subuid grants (pkg/rootless).
# slirp4netns and passt: a rootless run's user-mode network (--net slirp|pasta).
# fuse-overlayfs (it brings fuse3): a rootless image run's snapshot where the kernel refuses overlayfs
# (--storage-driver, docs/rootless.md).
need=(gcc libc6-dev pkg-config libseccomp-dev busybox-static iproute2 runc crun kmod util-linux mmdebstrap containernetworking-plugins iptables uidmap slirp4netns passt fuse-overlayfs)
missing=()
for p in "${need[@]}"; do
	dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "setup: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! command -v go >/dev/null; then
	echo "setup: Go 1.26 or newer is required (expected at /usr/local/go/bin/go)" >&2
	exit 1
fi
go mod download
./scripts/build.sh bin/bulwark
echo "setup: built $(pwd)/bin/bulwark"
