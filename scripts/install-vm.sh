#!/bin/sh
# Installs what tests/vm boots: QEMU (qemu-system-x86, run under TCG) and a
# stock Debian kernel for the guest (linux-image-amd64, which puts
# /boot/vmlinuz-* and its modules under /lib/modules on the host). The guest
# runs Bulwark on a pure cgroup v2 hierarchy, which this host (cgroup v1
# hybrid) cannot offer itself. xz-utils unpacks the bzImage into the vmlinux
# QEMU boots faster under TCG (it is part of every Debian install anyway).
# systemd: the systemd cgroup driver test boots the host's own systemd as the
# guest's PID 1 (over a read-only 9p export of /); it is not started here.
#
# Idempotent: packages already present are not touched, so running it before
# every test run costs one dpkg query. Needs root and Debian's apt.
set -eu

. "$(dirname "$0")/lib.sh"
# Without recommends: no GUI, no UEFI firmware, no extra block drivers; the
# tests boot a kernel directly on the serial console with no devices.
install_packages qemu-system-x86 linux-image-amd64 busybox-static xz-utils systemd
