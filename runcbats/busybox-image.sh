#!/usr/bin/env bash
# Writes the busybox rootfs tarball runc's suite runs most tests in, from
# Debian's busybox-static: every applet linked in /bin, and the layout,
# users and groups of the Docker library's busybox image that
# tests/integration/get-images.sh downloads (the tests run as root, as
# uid 1000 or as nobody, and look up group names).
#
# usage: runcbats/busybox-image.sh OUT.tar.xz
set -euo pipefail
out=$1
busybox=${BUSYBOX:-/bin/busybox}
dir=$(mktemp -d "$(dirname "$out")/busybox-image.XXXXXX")
trap 'rm -rf "$dir"' EXIT
# No proc or sys, as in the Docker image: runc's mask tests replace /proc
# and /sys with symlinks.
mkdir -p "$dir"/{bin,etc,home,root,tmp,usr/sbin,usr/bin,var/spool/mail,var/www,dev}
# mktemp made it 0700: the tarball's "." becomes the rootfs's /, which
# every user in the container must be able to search.
chmod 0755 "$dir"
chmod 1777 "$dir/tmp"
chmod 0700 "$dir/root"
cp "$busybox" "$dir/bin/busybox"
for applet in $("$busybox" --list); do
	[ "$applet" = busybox ] || ln -s busybox "$dir/bin/$applet"
done
cat >"$dir/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
PASSWD
groups="root:0 daemon:1 bin:2 sys:3 adm:4 tty:5 disk:6 lp:7 mail:8 kmem:9 wheel:10 cdrom:11 dialout:18 floppy:19 video:28 audio:29 tape:32 www-data:33 operator:37 utmp:43 plugdev:46 staff:50 lock:54 netdev:82 users:100 nogroup:65534"
for g in $groups; do
	echo "${g%%:*}:x:${g#*:}:"
done >"$dir/etc/group"
tar --numeric-owner --owner=0 --group=0 -C "$dir" -cJf "$out.tmp" .
mv "$out.tmp" "$out"
