#!/bin/sh
# Installs the container engines the tests in tests/engines drive Bulwark
# through: Debian's docker.io (dockerd + its managed containerd), podman,
# containerd (ctr and the containerd-shim-runc-v2 shim that execs the OCI
# runtime named by BinaryName / --runc-binary) and uidmap (podman wants
# newuidmap even as root when it probes user namespaces) and skopeo (an image
# copied to an OCI layout directory for bulwark load).
#
# Idempotent: packages already present are not touched, so running it before
# every test run costs one dpkg query. Needs root and Debian's apt.
set -eu

. "$(dirname "$0")/lib.sh"
# docker.io's recommends would pull in cgroupfs-mount and apparmor; the
# maintainer scripts must not start dockerd or containerd on the host.
install_packages --no-services docker.io podman containerd runc uidmap iptables skopeo
