#!/bin/sh
# Runs inside the ipvlan test VM as PID 1 after switch_root (see init.sh and
# tests/vm/ipvlan_test.go). The CI host's kernel has no ipvlan driver, so
# `bulwark run --net ipvlan:IFACE` is proven here, on Debian's stock kernel,
# whose ipvlan and dummy modules the initramfs loads. Same framing as
# cgroupv2.sh: BWVM PASS/FAIL <check>, BWVM DONE.
export PATH=/bin:/usr/bin:/sbin:/usr/sbin
BW=/usr/local/bin/bulwark
PARENT=bwtipv0
SUBNET=10.89.211.

pass() { echo "BWVM PASS $*"; }
fail() { n=$1; shift; echo "BWVM FAIL $n $*" | tr '\n' ' '; echo; }

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /var/lib
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
echo "BWVM BOOTED $(uname -r)"

for m in $(cat /modules/order); do
	insmod /modules/"$m" || fail insmod "$m"
done
ip link set lo up
# The parent: a dummy link with an address of its own, as a host's NIC.
if ip link add $PARENT type dummy && ip addr add ${SUBNET}1/24 dev $PARENT && ip link set $PARENT up; then
	pass parent_link "$(ip -o addr show dev $PARENT | awk '{print $4}' | head -n 1)"
else
	fail parent_link "ip link add $PARENT type dummy failed"
fi
links_before=$(ip -o link | wc -l)

# A server on ipvlan:PARENT, detached.
out=$("$BW" run -d --name srv --net ipvlan:$PARENT /rootfs -- /usr/local/bin/httpd -addr 0.0.0.0:80 2>&1)
rc=$?
if [ $rc = 0 ]; then pass run_detached_on_ipvlan; else fail run_detached_on_ipvlan "exit $rc: $out"; fi

# Its address and MAC, from inside: an address on the parent's subnet other
# than the parent's own, and the parent's MAC, which is what tells an ipvlan
# slave from a macvlan or veth (those get a MAC of their own).
addr=$("$BW" exec srv /usr/local/bin/netprobe addr eth0 2>/tmp/addr.err)
ip=${addr%% *}
mac=${addr##* }
case "$ip" in
${SUBNET}1) fail container_address "took the parent's own address: $addr" ;;
${SUBNET}*) pass container_address "$addr" ;;
*) fail container_address "want an address in ${SUBNET}0/24, got: $addr $(cat /tmp/addr.err)" ;;
esac
pmac=$(cat /sys/class/net/$PARENT/address)
if [ "$mac" = "$pmac" ]; then pass container_link_is_ipvlan "shares $PARENT's MAC $pmac"; else fail container_link_is_ipvlan "eth0 MAC '$mac', $PARENT's $pmac"; fi

# A second container on the same parent reaches the first by name (bounded
# retries: the server may still be starting to listen).
i=0
while :; do
	got=$("$BW" run --net ipvlan:$PARENT /rootfs -- /usr/local/bin/netprobe get http://srv/ 2>/tmp/get.err)
	[ "$got" = ok ] && break
	i=$((i + 1))
	[ $i -ge 20 ] && break
	sleep 0.5
done
if [ "$got" = ok ]; then pass reach_by_name; else fail reach_by_name "$got $(grep -v "cannot be idmapped" /tmp/get.err)"; fi

"$BW" rm -f srv >/tmp/rm.out 2>&1
rmrc=$?
links_after=$(ip -o link | wc -l)
list=$("$BW" list -q 2>&1)
leases=$(ls /run/bulwark-net/ipam/*/ 2>/dev/null | grep "^${SUBNET}")
netns=$(ls /run/bulwark-net/netns 2>/dev/null)
if [ $rmrc = 0 ] && [ "$links_before" = "$links_after" ] && [ -z "$list" ] && [ -z "$leases" ] && [ -z "$netns" ]; then
	pass no_leftovers
else
	fail no_leftovers "rm -f exit $rmrc: $(cat /tmp/rm.out); links $links_before -> $links_after; containers: $list; leases: $leases; netns: $netns"
fi

echo "BWVM DONE"
poweroff -f
