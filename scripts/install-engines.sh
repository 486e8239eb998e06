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
need=$(missing_packages docker.io podman containerd runc uidmap iptables skopeo)
if [ -z "$need" ]; then
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "install-engines.sh: must run as root to install:$need" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# --no-install-recommends keeps out services we do not want started (e.g. the
# docker.io recommends pull in cgroupfs-mount, apparmor); policy-rc.d stops
# the maintainer scripts from starting dockerd/containerd on the host: the
# tests start their own daemons with private roots and sockets.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod +x "$policy"
	created_policy=1
fi
trap 'if [ "$created_policy" = 1 ]; then rm -f "$policy"; fi' EXIT
apt-get install -y -qq --no-install-recommends $need >/dev/null
