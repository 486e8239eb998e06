#!/bin/sh
# Runs inside the test VM as PID 1 after switch_root (see init.sh): it makes
# the guest a pure cgroup v2 host, drives bulwark through both of its faces
# and reports one framed line per check on the serial console:
#
#   BWVM PASS <check> [detail]      BWVM FAIL <check> <why>
#   BWVM DATA <name> <one line>     (raw output the host test parses itself)
#   BWVM DONE                       (every check ran; nothing after it counts)
#
# The host test (tests/vm/cgroupv2_test.go) knows the full list of checks
# and fails on any FAIL or on a check that never reported, so a check that
# silently disappears (a typo, a crash of this script) is a failure too.
# Limits and expected values come from /vm/expect.env, written by the host
# test from the same constants it builds the bundles with.

export PATH=/bin:/usr/bin:/sbin:/usr/sbin
. /vm/expect.env
BW=/usr/local/bin/bulwark
CG=/sys/fs/cgroup

pass() { echo "BWVM PASS $*"; }
fail() { n=$1; shift; echo "BWVM FAIL $n $*" | tr '\n' ' '; echo; }
# expect NAME WANT GOT: equality check with both values in the report.
expect() {
	if [ "$2" = "$3" ]; then pass "$1" "$3"; else fail "$1" "want '$2' got '$3'"; fi
}
firstline() { head -n 1 "$1" 2>/dev/null; }
status() { "$BW" state "$1" 2>/dev/null | grep -o '"status": *"[a-z]*"' | grep -o '[a-z]*"$' | tr -d '"'; }
# wait_status ID STATUS: polls (bounded, 60 s) because start returns before
# the container's process has finished.
wait_status() {
	i=0
	while [ "$(status "$1")" != "$2" ]; do
		i=$((i + 1))
		[ $i -gt 600 ] && return 1
		sleep 0.1
	done
}
lines() { wc -l <"$1" | tr -d ' '; }

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
# The only cgroup mount there will be. cgroup_no_v1=all on the kernel command
# line keeps v1 hierarchies from being mounted by anyone.
mount -t cgroup2 -o nsdelegate cgroup2 $CG

echo "BWVM BOOTED $(uname -r)"

# --- the host itself --------------------------------------------------------
# /proc/mounts, not stat -f: busybox's stat does not name cgroup2's magic.
# The v1 mount attempt must fail: cgroup_no_v1=all is what makes this host
# pure v2, not merely the absence of v1 mounts.
fstype=$(awk '$2 == "/sys/fs/cgroup" { print $3 }' /proc/mounts)
v1=$(awk '$3 == "cgroup"' /proc/mounts)
mkdir -p /tmp/v1
if mount -t cgroup -o memory cgroup /tmp/v1 2>/dev/null; then v1mount=mounted; umount /tmp/v1; else v1mount=refused; fi
if [ "$fstype" = cgroup2 ] && [ -z "$v1" ] && [ $v1mount = refused ]; then
	pass host_pure_cgroup2 "/sys/fs/cgroup is $fstype, no v1 mounts, mounting v1 memory $v1mount"
else
	fail host_pure_cgroup2 "/sys/fs/cgroup is '$fstype', v1 mounts '$v1', mounting v1 memory $v1mount"
fi
# Delegate every controller the kernel offers to the subtree, one at a time
# so that one that fails does not keep the others off (the check below names it).
for c in cpu io memory pids cpuset hugetlb; do
	grep -qw $c $CG/cgroup.controllers && echo "+$c" >$CG/cgroup.subtree_control
done
on=$(cat $CG/cgroup.subtree_control)
missing=""
for c in cpu io memory pids cpuset hugetlb; do
	echo " $on " | grep -q " $c " || missing="$missing $c"
done
if [ -z "$missing" ]; then pass controllers_enabled "$on"; else fail controllers_enabled "missing:$missing (have: $on)"; fi

# --- limits written from the spec (OCI face: create, inspect, start) --------
id=limits
d=$CG/bulwark/$id
if "$BW" create -b /bundles/limits $id >/tmp/limits.out 2>&1; then
	pass create_limits
	expect memory_max_set "$MEMORY_MAX" "$(firstline $d/memory.max)"
	expect pids_max_set "$PIDS_MAX" "$(firstline $d/pids.max)"
	expect cpu_max_set "$CPU_QUOTA $CPU_PERIOD" "$(firstline $d/cpu.max)"
	expect cpu_weight_set "$CPU_WEIGHT" "$(firstline $d/cpu.weight)"
	expect cpuset_cpus_set "$CPUSET_CPUS" "$(firstline $d/cpuset.cpus)"
	# The library writes io.bfq.weight when BFQ is loaded, io.weight
	# (converted) otherwise; either one must hold the spec's weight.
	if [ -f $d/io.bfq.weight ]; then
		expect io_weight_set "default $BLKIO_WEIGHT" "$(firstline $d/io.bfq.weight)"
	else
		expect io_weight_set "default $IO_WEIGHT" "$(firstline $d/io.weight)"
	fi
	expect hugetlb_max_set "$HUGETLB_MAX" "$(firstline $d/hugetlb.2MB.max)"
	expect unified_memory_high_set "$MEMORY_HIGH" "$(firstline $d/memory.high)"
	"$BW" start $id
	if wait_status $id stopped; then
		out=$(cat /tmp/limits.out)
		echo "BWVM DATA limits_out $(echo "$out" | tr '\n' '|')"
		if echo "$out" | grep -qx '0::/'; then pass cgroupns_root "0::/"; else fail cgroupns_root "/proc/self/cgroup: $out"; fi
		# mountinfo: root of the mount is "/" (the namespace root, which is
		# the container's cgroup), fstype cgroup2, mounted read-only; and
		# the files seen there are the container's own: memory.max is the
		# container's limit (the host root has no memory.max at all) and no
		# sibling "bulwark" directory is visible.
		mi=$(echo "$out" | grep '^MI ')
		inside_max=$(echo "$out" | grep '^MAX ' | cut -d' ' -f2)
		if echo "$mi" | grep -q ' / /sys/fs/cgroup ro,.* - cgroup2 ' &&
			[ "$inside_max" = "$MEMORY_MAX" ] && ! echo "$out" | grep -qx 'LS bulwark'; then
			pass cgroup_mount_own_subtree "$mi; memory.max=$inside_max"
		else
			fail cgroup_mount_own_subtree "$mi; memory.max=$inside_max"
		fi
		if echo "$out" | grep -q '^MKDIR .*Read-only file system'; then
			pass cgroup_mount_readonly "$(echo "$out" | grep '^MKDIR ')"
		else
			fail cgroup_mount_readonly "$(echo "$out" | grep '^MKDIR ')"
		fi
	else
		for c in cgroupns_root cgroup_mount_own_subtree cgroup_mount_readonly; do fail $c "container never stopped: $(cat /tmp/limits.out)"; done
	fi
	"$BW" delete $id
	if [ ! -e $d ]; then pass delete_removes_cgroup; else fail delete_removes_cgroup "$d still exists"; fi
else
	fail create_limits "$(cat /tmp/limits.out)"
fi

# --- no cgroup namespace: the container's own cgroup is bound instead -------
"$BW" run -b /bundles/nocgns nocgns >/tmp/nocgns.out 2>&1
rc=$?
out=$(cat /tmp/nocgns.out)
echo "BWVM DATA nocgns_out $(echo "$out" | tr '\n' '|')"
mi=$(echo "$out" | grep '^MI ')
if [ $rc = 0 ] && echo "$out" | grep -qx '0::/bulwark/nocgns' &&
	echo "$mi" | grep -q ' /bulwark/nocgns /sys/fs/cgroup ro,.* - cgroup2 ' &&
	echo "$out" | grep -qx "MAX $MEMORY_MAX" && echo "$out" | grep -q '^MKDIR .*Read-only file system'; then
	pass no_cgroupns_bind_own_subtree "$mi"
else
	fail no_cgroupns_bind_own_subtree "exit $rc: $(echo "$out" | tr '\n' '|')"
fi

# --- memory.max enforced: a memory bomb is OOM-killed -----------------------
"$BW" run -b /bundles/membomb oom1 >/tmp/oom1.out 2>&1
expect oom_run_exit_137 137 "$?"
id=oom2
"$BW" create -b /bundles/membomb $id >/tmp/oom2.out 2>&1
"$BW" start $id
if wait_status $id stopped; then
	ev=$(grep '^oom_kill ' $CG/bulwark/$id/memory.events | cut -d' ' -f2)
	if [ "${ev:-0}" -gt 0 ]; then pass oom_kill_counted "memory.events oom_kill $ev"; else fail oom_kill_counted "memory.events: $(cat $CG/bulwark/$id/memory.events)"; fi
else
	fail oom_kill_counted "container never stopped"
fi
"$BW" delete --force $id

# --- pids.max enforced: a fork bomb stops at the limit ----------------------
"$BW" run -b /bundles/forkbomb fork1 >/tmp/fork.out 2>&1
rc=$?
# The payload indents its JSON; Go runtime threads count against pids.max
# too, so fewer forks than the limit succeed.
forked=$(tr -d ' \n' </tmp/fork.out | grep -o '"forked":[0-9]*' | cut -d: -f2)
if [ $rc = 0 ] && tr -d ' \n' </tmp/fork.out | grep -q '"result":"EAGAIN"' && [ "${forked:-0}" -gt 0 ] && [ "${forked:-999999}" -lt "$FORKBOMB_PIDS_MAX" ]; then
	pass forkbomb_stopped_at_limit "forked $forked of $FORKBOMB_N, limit $FORKBOMB_PIDS_MAX"
else
	fail forkbomb_stopped_at_limit "exit $rc: $(cat /tmp/fork.out)"
fi

# --- devices: the eBPF program is an allowlist ------------------------------
"$BW" run -b /bundles/devices dev1 >/tmp/dev.out 2>&1
echo "BWVM DATA devices_out $(tr '\n' '|' </tmp/dev.out)"
# c 1:1 is allowed for mknod only: the node is made, opening it is refused.
if grep -q '^MKNOD_MEM ok' /tmp/dev.out && grep -q '^OPEN_MEM .*Operation not permitted' /tmp/dev.out; then
	pass device_open_denied "$(grep '^OPEN_MEM' /tmp/dev.out)"
else
	fail device_open_denied "$(tr '\n' '|' </tmp/dev.out)"
fi
if grep -q '^MKNOD_DISK .*Operation not permitted' /tmp/dev.out; then
	pass device_mknod_denied "$(grep '^MKNOD_DISK' /tmp/dev.out)"
else
	fail device_mknod_denied "$(tr '\n' '|' </tmp/dev.out)"
fi
if grep -q '^NULL ok' /tmp/dev.out; then pass device_null_allowed; else fail device_null_allowed "$(tr '\n' '|' </tmp/dev.out)"; fi

# --- a long-running container: stats, freezer, update, kill --all ----------
id=ticker
d=$CG/bulwark/$id
"$BW" create -b /bundles/ticker $id >/tmp/tick.out 2>&1
"$BW" start $id
i=0
while [ "$(lines /tmp/tick.out)" -lt 2 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
stats=$("$BW" events --stats $id 2>&1)
echo "BWVM DATA events_stats $stats"
if echo "$stats" | grep -q '"pids":{"current":[1-9]' && echo "$stats" | grep -q "\"limit\":$MEMORY_MAX"; then
	pass events_stats_v2 "$(echo "$stats" | grep -o '"pids":{[^}]*}')"
else
	fail events_stats_v2 "$stats"
fi

"$BW" pause $id
st=$(status $id)
frozen=$(grep '^frozen ' $d/cgroup.events | cut -d' ' -f2)
if [ "$st" = paused ] && [ "$(cat $d/cgroup.freeze)" = 1 ] && [ "$frozen" = 1 ]; then
	pass pause_freezes "state $st, cgroup.freeze 1, frozen $frozen"
else
	fail pause_freezes "state $st, cgroup.freeze $(cat $d/cgroup.freeze), frozen $frozen"
fi
a=$(lines /tmp/tick.out)
sleep 2
b=$(lines /tmp/tick.out)
if [ "$a" = "$b" ]; then pass paused_counter_stops "$a lines before and after 2 s"; else fail paused_counter_stops "$a lines, then $b while paused"; fi
"$BW" resume $id
st=$(status $id)
i=0
while [ "$(lines /tmp/tick.out)" = "$b" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
c=$(lines /tmp/tick.out)
if [ "$st" = running ] && [ "$(cat $d/cgroup.freeze)" = 0 ] && [ "$c" -gt "$b" ]; then
	pass resume_thaws "state $st, counter $b -> $c"
else
	fail resume_thaws "state $st, cgroup.freeze $(cat $d/cgroup.freeze), counter $b -> $c"
fi

"$BW" update --memory "$UPDATE_MEMORY" $id
expect update_memory_max "$UPDATE_MEMORY" "$(firstline $d/memory.max)"
"$BW" update --cpu-share "$UPDATE_CPU_SHARES" $id
expect update_cpu_weight "$UPDATE_CPU_WEIGHT" "$(firstline $d/cpu.weight)"

# kill --all must go through cgroup.kill: the function tracer records
# whether the kernel's handler of that file ran during the kill.
T=/sys/kernel/tracing
traced=0
if echo cgroup_kill_write >$T/set_ftrace_filter 2>/dev/null && echo function >$T/current_tracer; then
	echo >$T/trace
	traced=1
fi
"$BW" kill --all $id KILL
krc=$?
if [ $traced = 1 ]; then
	hits=$(grep -c 'cgroup_kill_write' $T/trace)
	echo nop >$T/current_tracer
	echo >$T/set_ftrace_filter
fi
if wait_status $id stopped && [ -z "$(cat $d/cgroup.procs)" ] && [ $traced = 1 ] && [ "$hits" -gt 0 ]; then
	pass kill_all_uses_cgroup_kill "cgroup_kill_write traced $hits time(s); cgroup.procs empty"
else
	fail kill_all_uses_cgroup_kill "kill exit $krc, traced $traced, hits ${hits:-?}, state $(status $id), procs $(cat $d/cgroup.procs 2>&1 | tr '\n' ' ')"
fi
"$BW" delete $id
if [ ! -e $d ]; then pass delete_after_kill_removes_cgroup; else fail delete_after_kill_removes_cgroup "$d still exists"; fi

# --- the user face: bulwark run ROOTFS -- CMD -------------------------------
# stdout only: bulwark may warn on stderr (a tmpfs rootfs cannot be
# idmapped before Linux 6.3), which is not what this check is about.
out=$("$BW" run --memory "$USER_MEMORY" --pids-limit "$USER_PIDS" /rootfs -- sh -c 'cat /proc/self/cgroup; cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max' 2>/tmp/user.err)
rc=$?
want=$(printf '0::/\n%s\n%s' "$USER_MEMORY_BYTES" "$USER_PIDS")
if [ $rc = 0 ] && [ "$out" = "$want" ]; then
	pass user_face_limits "$(echo "$out" | tr '\n' ' ')"
else
	fail user_face_limits "exit $rc: $(echo "$out" | tr '\n' '|') stderr: $(tr '\n' '|' </tmp/user.err)"
fi
"$BW" run --memory "$USER_MEMORY" /rootfs -- membomb 1024 >/tmp/uoom.out 2>&1
expect user_face_oom_exit_137 137 "$?"

# --- rootless: limits in a cgroup v2 subtree delegated by hand ---------------
# A user with subordinate ids runs the user face without root. From the root
# cgroup (nothing delegated) the run says what is missing once and runs
# without limits; from a leaf below a directory root chowned to the user
# (what systemd's Delegate=yes does for user@UID.service) the limits are in
# the container's own cgroup there, and a fork bomb stops at pids.max.
mkdir -p /etc /home/bwuser /run/user/1000
grep -q '^root:' /etc/passwd 2>/dev/null || echo 'root:x:0:0:root:/root:/bin/sh' >>/etc/passwd
echo 'bwuser:x:1000:1000::/home/bwuser:/bin/sh' >>/etc/passwd
grep -q '^root:' /etc/group 2>/dev/null || echo 'root:x:0:' >>/etc/group
echo 'bwuser:x:1000:' >>/etc/group
echo 'bwuser:200000:65536' >/etc/subuid
echo 'bwuser:200000:65536' >/etc/subgid
chmod 4755 /usr/bin/newuidmap /usr/bin/newgidmap
cp -a /rootfs /home/bwuser/rootfs
printf 'cat /proc/self/cgroup /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max\n' >/home/bwuser/rootfs/limits.sh
chown -R 1000:1000 /home/bwuser /run/user/1000
chmod 700 /run/user/1000
# as_user CGROUP ARGS...: bulwark ARGS as bwuser, started from CGROUP.
as_user() {
	sh -c 'echo $$ >"$0/cgroup.procs" && exec su bwuser -c "$1"' "$CG/$1" \
		"HOME=/home/bwuser XDG_RUNTIME_DIR=/run/user/1000 PATH=$PATH $BW $(shift; echo "$*")"
}
out=$(as_user "" run --memory "$USER_MEMORY" --pids-limit "$USER_PIDS" /home/bwuser/rootfs -- cat /proc/self/cgroup 2>/tmp/rl.err)
rc=$?
if [ $rc = 0 ] && [ "$(grep -c 'cgroup limits not enforced' /tmp/rl.err)" = 1 ] && grep -q 'no cgroup v2 subtree is delegated to uid 1000' /tmp/rl.err; then
	pass rootless_undelegated_says_so "$(tr '\n' ' ' </tmp/rl.err)"
else
	fail rootless_undelegated_says_so "exit $rc: $(echo "$out" | tr '\n' '|') stderr: $(tr '\n' '|' </tmp/rl.err)"
fi
mkdir $CG/bwuser $CG/bwuser/shell
for f in "" /cgroup.procs /cgroup.subtree_control /cgroup.threads /shell /shell/cgroup.procs /shell/cgroup.subtree_control /shell/cgroup.threads; do
	chown 1000:1000 "$CG/bwuser$f"
done
out=$(as_user bwuser/shell run --name rl1 --memory "$USER_MEMORY" --pids-limit "$USER_PIDS" /home/bwuser/rootfs -- sh /limits.sh 2>/tmp/rl.err)
rc=$?
want=$(printf '0::/\n%s\n%s' "$USER_MEMORY_BYTES" "$USER_PIDS")
if [ $rc = 0 ] && [ "$out" = "$want" ] && ! grep -q 'not enforced' /tmp/rl.err; then
	pass rootless_delegated_limits "$(echo "$out" | tr '\n' ' ')"
else
	fail rootless_delegated_limits "exit $rc: $(echo "$out" | tr '\n' '|') stderr: $(tr '\n' '|' </tmp/rl.err)"
fi
as_user bwuser/shell run --pids-limit "$FORKBOMB_PIDS_MAX" /home/bwuser/rootfs -- forkbomb "$FORKBOMB_N" >/tmp/rlfork.out 2>&1
rc=$?
forked=$(tr -d ' \n' </tmp/rlfork.out | grep -o '"forked":[0-9]*' | cut -d: -f2)
if [ $rc = 0 ] && tr -d ' \n' </tmp/rlfork.out | grep -q '"result":"EAGAIN"' && [ "${forked:-0}" -gt 0 ] && [ "${forked:-999999}" -lt "$FORKBOMB_PIDS_MAX" ]; then
	pass rootless_forkbomb_stopped_at_limit "forked $forked of $FORKBOMB_N, limit $FORKBOMB_PIDS_MAX"
else
	fail rootless_forkbomb_stopped_at_limit "exit $rc: $(tr '\n' ' ' </tmp/rlfork.out)"
fi
left=$(find $CG/bwuser -mindepth 1 -type d ! -path $CG/bwuser/shell)
if [ -z "$left" ]; then pass rootless_cgroups_removed; else fail rootless_cgroups_removed "$left"; fi
rmdir $CG/bwuser/shell $CG/bwuser

# --- nothing left behind ----------------------------------------------------
left=$(find $CG -mindepth 1 -type d)
list=$("$BW" list -q 2>&1)
if [ -z "$left" ] && [ -z "$list" ]; then pass no_leftovers; else fail no_leftovers "cgroups: $left; containers: $list"; fi

echo "BWVM DONE"
poweroff -f
