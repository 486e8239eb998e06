#!/bin/sh
# Runs inside the network test VM as PID 1 after switch_root (see init.sh and
# tests/vm/ipvlan_test.go). The CI host's kernel has neither an ipvlan nor a
# dummy driver, so `bulwark run --net ipvlan:IFACE` and `--net macvlan:IFACE`
# on a dummy parent are proven here, on Debian's stock kernel, whose modules
# the initramfs loads; so is `--net dedicated:IFACE` with a dummy interface. Same framing as cgroupv2.sh: BWVM PASS/FAIL <check>,
# BWVM DONE.
export PATH=/bin:/usr/bin:/sbin:/usr/sbin
BW=/usr/local/bin/bulwark

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

# check_mode MODE PARENT SUBNET: a dummy parent with an address of its own,
# as a host's NIC; a detached server container on MODE:PARENT; a second
# container that reaches it by name; rm -f leaves nothing.
check_mode() {
	mode=$1 parent=$2 subnet=$3
	if ip link add "$parent" type dummy && ip addr add "${subnet}1/24" dev "$parent" && ip link set "$parent" up; then
		pass "${mode}_parent_link" "$(ip -o addr show dev "$parent" | awk '{print $4}' | head -n 1)"
	else
		fail "${mode}_parent_link" "ip link add $parent type dummy failed"
	fi
	links_before=$(ip -o link | wc -l)

	out=$("$BW" run -d --name "srv-$mode" --net "$mode:$parent" /rootfs -- /usr/local/bin/httpd -addr 0.0.0.0:80 2>&1)
	rc=$?
	if [ $rc = 0 ]; then pass "${mode}_run_detached"; else fail "${mode}_run_detached" "exit $rc: $out"; fi

	# Its address and MAC, from inside: an address on the parent's subnet
	# other than the parent's own; an ipvlan slave shares the parent's MAC,
	# a macvlan gets one of its own, which is what tells them apart.
	addr=$("$BW" exec "srv-$mode" /usr/local/bin/netprobe addr eth0 2>/tmp/addr.err)
	ip=${addr%% *}
	mac=${addr##* }
	case "$ip" in
	"${subnet}1") fail "${mode}_container_address" "took the parent's own address: $addr" ;;
	"${subnet}"*) pass "${mode}_container_address" "$addr" ;;
	*) fail "${mode}_container_address" "want an address in ${subnet}0/24, got: $addr $(cat /tmp/addr.err)" ;;
	esac
	pmac=$(cat "/sys/class/net/$parent/address")
	case "$mode:$mac" in
	"ipvlan:$pmac") pass "${mode}_link_kind" "shares $parent's MAC $pmac" ;;
	macvlan:"$pmac") fail "${mode}_link_kind" "eth0 has $parent's MAC $pmac: not a macvlan" ;;
	macvlan:??:??:??:??:??:??) pass "${mode}_link_kind" "own MAC $mac, $parent's $pmac" ;;
	*) fail "${mode}_link_kind" "eth0 MAC '$mac', $parent's $pmac" ;;
	esac

	# Bounded retries: the server may still be starting to listen.
	i=0
	while :; do
		got=$("$BW" run --net "$mode:$parent" /rootfs -- /usr/local/bin/netprobe get "http://srv-$mode/" 2>/tmp/get.err)
		[ "$got" = ok ] && break
		i=$((i + 1))
		[ $i -ge 20 ] && break
		sleep 0.5
	done
	if [ "$got" = ok ]; then pass "${mode}_reach_by_name"; else fail "${mode}_reach_by_name" "$got $(grep -v "cannot be idmapped" /tmp/get.err)"; fi

	"$BW" rm -f "srv-$mode" >/tmp/rm.out 2>&1
	rmrc=$?
	links_after=$(ip -o link | wc -l)
	list=$("$BW" list -q 2>&1)
	leases=$(ls /run/bulwark-net/ipam/*/ 2>/dev/null | grep "^${subnet}")
	netns=$(ls /run/bulwark-net/netns 2>/dev/null)
	if [ $rmrc = 0 ] && [ "$links_before" = "$links_after" ] && [ -z "$list" ] && [ -z "$leases" ] && [ -z "$netns" ]; then
		pass "${mode}_no_leftovers"
	else
		fail "${mode}_no_leftovers" "rm -f exit $rmrc: $(cat /tmp/rm.out); links $links_before -> $links_after; containers: $list; leases: $leases; netns: $netns"
	fi
}

check_mode ipvlan bwtipv0 10.89.211.
check_mode macvlan bwtmac0 10.89.212.

# dedicated:IFACE moves a dummy interface into the container and back.
ip link add bwtded0 type dummy
dmac=$(cat /sys/class/net/bwtded0/address)
out=$("$BW" run -d --name ded --net dedicated:bwtded0 /rootfs -- sleep 600 2>&1)
rc=$?
inside=$("$BW" exec ded ip -o link 2>/dev/null | tr '\n' ' ')
moved=no
if [ $rc = 0 ] && [ ! -e /sys/class/net/bwtded0 ] && echo "$inside" | grep -q "$dmac"; then
	pass dedicated_moved_in "MAC $dmac inside"
	moved=yes
else
	fail dedicated_moved_in "exit $rc: $out; inside: $inside; on the host: $(ls /sys/class/net | tr '\n' ' ')"
fi
"$BW" rm -f ded >/tmp/rm.out 2>&1
back=$(cat /sys/class/net/bwtded0/address 2>/dev/null)
if [ $moved = no ]; then
	fail dedicated_moved_back "never moved in"
elif [ "$back" = "$dmac" ]; then pass dedicated_moved_back; else fail dedicated_moved_back "bwtded0 '$back' after rm: $(cat /tmp/rm.out)"; fi

echo "BWVM DONE"
poweroff -f
