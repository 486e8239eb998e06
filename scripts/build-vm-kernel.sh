#!/usr/bin/env bash
# Builds the minimal guest kernel for `--isolation vm` from Debian's
# linux-source package: tinyconfig plus what the guest agent needs
# (virtio-mmio with command-line devices, virtio-console, virtio-fs, 9p,
# virtio-net, PVH entry, seccomp, KVM guest support), everything built in, no modules,
# no ACPI, no PCI, no virtual terminals or input drivers, built with -O2
# rather than tinyconfig's -Os. Under TCG it reaches /init in a fraction of the stock
# kernel's time and lets QEMU's microvm machine boot (Debian's kernel has
# no CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES); docs/vm.md has the figures.
#
# The result is cached: OUT/vmlinux (an ELF QEMU enters at its PVH entry),
# OUT/config and OUT/stamp naming the source and the options (both lists
# below: changing either rebuilds); a
# second run with the same inputs does nothing. pkg/vm boots OUT/vmlinux
# when it is there and falls back to the stock /boot/vmlinuz-* otherwise.
#   scripts/build-vm-kernel.sh [OUT]   (default /var/cache/bulwark/vm/kernel)
# Needs: linux-source-6.1 build-essential flex bison bc libelf-dev
# (installed with apt-get when missing). About 10-20 CPU-minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/var/cache/bulwark/vm/kernel}
src_tar=$(ls /usr/src/linux-source-*.tar.xz 2>/dev/null | sort -V | tail -n1 || true)

need=()
[ -n "$src_tar" ] || need+=(linux-source)
for t in gcc make flex bison bc; do command -v "$t" >/dev/null || need+=("$t"); done
[ -e /usr/include/libelf.h ] || need+=(libelf-dev)
if [ ${#need[@]} -gt 0 ]; then
	pkgs=()
	for p in "${need[@]}"; do
		case $p in gcc | make) pkgs+=(build-essential) ;; *) pkgs+=("$p") ;; esac
	done
	echo "build-vm-kernel: installing ${pkgs[*]}" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >&2
	src_tar=$(ls /usr/src/linux-source-*.tar.xz | sort -V | tail -n1)
fi

# What the guest needs, on top of tinyconfig. Every line is a reason:
# the agent is a static Go binary (futex, epoll, timers, signalfd...),
# the payload gets seccomp and ids, the rootfs comes over virtio-fs or 9p
# on virtio-mmio devices that QEMU's microvm names on the command line,
# and a container with a network interface gets a virtio-net NIC.
# CC_OPTIMIZE_FOR_PERFORMANCE replaces tinyconfig's -Os: at -Os gcc inlines
# fixed-size memsets and memcpys as byte-wise rep stosb/movsb, which TCG
# runs one byte per step (freeing init memory alone cost ~0.3 s of boot).
fragment='
64BIT
CC_OPTIMIZE_FOR_PERFORMANCE
HYPERVISOR_GUEST
PVH
PARAVIRT
KVM_GUEST
CPU_MITIGATIONS
SMP
X86_MPPARSE
PRINTK
PRINTK_TIME
EARLY_PRINTK
TTY
SERIAL_8250
SERIAL_8250_CONSOLE
UNIX98_PTYS
BLK_DEV_INITRD
BINFMT_ELF
BINFMT_SCRIPT
PROC_FS
PROC_SYSCTL
SYSFS
DEVTMPFS
TMPFS
SHMEM
MULTIUSER
FUTEX
EPOLL
SIGNALFD
TIMERFD
EVENTFD
POSIX_TIMERS
FILE_LOCKING
ADVISE_SYSCALLS
MEMBARRIER
AIO
SYSVIPC
POSIX_MQUEUE
SECCOMP
SECCOMP_FILTER
HIGH_RES_TIMERS
NO_HZ_IDLE
NET
UNIX
INET
NETDEVICES
NET_CORE
VIRTIO_NET
VIRTIO_MENU
VIRTIO
VIRTIO_MMIO
VIRTIO_MMIO_CMDLINE_DEVICES
VIRTIO_CONSOLE
FUSE_FS
VIRTIO_FS
NET_9P
NET_9P_VIRTIO
9P_FS
KALLSYMS
'
# What olddefconfig would turn on that the guest never uses and that costs
# boot time under TCG (docs/vm.md): 256 legacy BSD pty pairs registered at
# boot (the agent uses /dev/pts), the virtual terminals (the console is the
# serial port; VT also pulled in the input layer, the i8042, PS/2 keyboard
# and mouse drivers, HID and the VGA console), and IPv6-in-IPv4 tunnels.
# Off is also less guest kernel to attack; nothing the agent or a payload
# needs is among them.
off='
CC_OPTIMIZE_FOR_SIZE
LEGACY_PTYS
VT
IPV6_SIT
'
version=$(basename "$src_tar" .tar.xz)
stamp="$version $(stat -c '%s %Y' "$src_tar") $(printf '%s\n-\n%s' "$fragment" "$off" | sha256sum | cut -c1-16)"
if [ -f "$out/vmlinux" ] && [ "$(cat "$out/stamp" 2>/dev/null)" = "$stamp" ]; then
	echo "build-vm-kernel: $out/vmlinux is up to date ($version)" >&2
	exit 0
fi

# The unpacked tree is kept until a build succeeds: a failed build is
# retried without unpacking a gigabyte again.
work="$out/src"
src_stamp="$version $(stat -c '%s %Y' "$src_tar")"
if [ "$(cat "$work/.bulwark-source" 2>/dev/null)" != "$src_stamp" ]; then
	rm -rf "$work"
	mkdir -p "$work"
	echo "build-vm-kernel: unpacking $src_tar" >&2
	tar -xf "$src_tar" -C "$work" --strip-components=1
	printf '%s\n' "$src_stamp" >"$work/.bulwark-source"
fi
cd "$work"
make -s tinyconfig
opts=()
for o in $fragment; do opts+=(--enable "$o"); done
for o in $off; do opts+=(--disable "$o"); done
scripts/config "${opts[@]}" --set-str INITRAMFS_SOURCE ""
make -s olddefconfig
# olddefconfig drops what a dependency refused: say so instead of booting
# a kernel that lacks it.
missing=()
for o in $fragment; do grep -q "^CONFIG_$o=y" .config || missing+=("$o"); done
if [ ${#missing[@]} -gt 0 ]; then
	echo "build-vm-kernel: the config lost ${missing[*]} (a dependency is off)" >&2
	exit 1
fi
for o in $off; do
	if grep -q "^CONFIG_$o=" .config; then
		echo "build-vm-kernel: CONFIG_$o is still on (something selects it)" >&2
		exit 1
	fi
done
start=$(date +%s)
make -s -j"$(nproc)" vmlinux
echo "build-vm-kernel: built in $(($(date +%s) - start)) s" >&2
objcopy --strip-debug vmlinux "$out/.vmlinux.tmp"
mv "$out/.vmlinux.tmp" "$out/vmlinux"
cp .config "$out/config"
printf '%s\n' "$stamp" >"$out/stamp"
cd /
rm -rf "$work"
echo "build-vm-kernel: $out/vmlinux ($version)" >&2
