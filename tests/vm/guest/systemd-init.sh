#!/bin/busybox sh
# Stage one of the systemd VM's boot (tests/vm/systemd_test.go), PID 1 in the
# initramfs. The guest runs the host's own Debian userland, systemd included:
# QEMU exports the host's / read-only over virtio-9p, and this script puts a
# tmpfs-backed overlay on top of it so systemd can write /etc, /var and /run
# without a byte reaching the host. Then it hands PID 1 to systemd.
#
# The initramfs holds only busybox, the modules 9p and overlayfs need (Debian
# builds them as modules; /modules/order lists them dependencies first) and
# /vm: bulwark, the container rootfs, the bundles, the check script and the
# units that run it.
BB=/bin/busybox
die() {
	echo "BWVM FAIL stage1 $*"
	# No systemd yet to power off: poweroff -f is the only way out, and
	# the host test fails on the FAIL line (and on BWVM DONE missing).
	$BB poweroff -f
}

$BB mkdir -p /proc /sys /lower /rw /newroot
$BB mount -t proc proc /proc
$BB mount -t sysfs sysfs /sys
for m in $($BB cat /modules/order); do
	$BB insmod /modules/"$m" || die "insmod $m failed"
done
# The virtio PCI device is probed asynchronously after virtio_pci loads;
# mount fails with ENOENT until the 9p transport has seen the tag. Poll,
# bounded (the host test's timeout bounds the boot anyway).
i=0
until $BB mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot /lower 2>/dev/null; do
	i=$((i + 1))
	[ $i -gt 100 ] && die "mount of the host root over virtio-9p (tag hostroot) never succeeded"
	$BB sleep 0.1
done
$BB mount -t tmpfs -o mode=755 tmpfs /rw
$BB mkdir -p /rw/upper /rw/work
$BB mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot ||
	die "overlay over the 9p host root failed"
[ -x /newroot/lib/systemd/systemd ] || die "the shared host root has no /lib/systemd/systemd"

# Everything below lands in the tmpfs upper layer.
# The host may itself be a container: systemd would take /.dockerenv or
# /run/.containerenv for its own container's, and then read its options
# from its own argv instead of the kernel command line (systemd.unit= would
# be ignored and the whole default target booted). The host's /run is
# stale state of another machine: a fresh tmpfs hides it.
$BB rm -f /newroot/.dockerenv
$BB mount -t tmpfs -o mode=755,nosuid,nodev tmpfs /newroot/run
$BB cp -a /vm /newroot/
# The host's fstab could name disks this guest does not have; systemd would
# wait for them. The guest mounts nothing from fstab.
: >/newroot/etc/fstab
# A fresh machine-id per boot: systemd writes one to a writable /etc when
# it is empty, so the host's id (if any) is not reused.
: >/newroot/etc/machine-id
U=/newroot/etc/systemd/system
$BB mkdir -p $U
$BB cp /vm/units/* $U/
# The guest boots straight into bwvm.target (systemd.unit= on the kernel
# command line), which pulls in nothing but bwvm.service; these units would
# still be started by socket or path activation or by generators, and cost
# TCG time or print on the console the results travel on.
for u in getty.target serial-getty@ttyS0.service getty@tty1.service console-getty.service \
	systemd-networkd.service networking.service systemd-resolved.service systemd-timesyncd.service \
	apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer fstrim.timer logrotate.timer \
	docker.service docker.socket containerd.service podman.socket cron.service ssh.service \
	systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
	systemd-journald-audit.socket systemd-firstboot.service systemd-random-seed.service; do
	$BB ln -sf /dev/null $U/$u
done

# systemd mounts /proc, /sys, /dev and /run itself.
$BB umount /sys /proc
exec $BB switch_root /newroot /lib/systemd/systemd
