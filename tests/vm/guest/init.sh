#!/bin/busybox sh
# Stage one of the test VM's boot, PID 1 in the initramfs. The initramfs is
# the kernel's rootfs, which pivot_root(2) refuses to leave, and a container
# runtime pivots into every container. So everything is copied onto a tmpfs
# and switch_root makes that tmpfs the root before the checks run.
echo "BWVM INIT"
/bin/busybox mkdir -p /proc /newroot
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t tmpfs -o mode=755 tmpfs /newroot
for e in /*; do
	case "$e" in /proc | /newroot | /init) ;; *) /bin/busybox cp -a "$e" /newroot/ ;; esac
done
/bin/busybox mkdir -p /newroot/proc /newroot/sys /newroot/dev /newroot/tmp /newroot/run /newroot/var/lib
/bin/busybox --install -s /newroot/bin
/bin/busybox umount /proc
exec /bin/busybox switch_root /newroot /vm/run.sh
