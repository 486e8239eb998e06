#!/bin/sh
# Runs as bwvm.service under systemd as PID 1 in the systemd VM (see
# systemd-init.sh and tests/vm/systemd_test.go) and drives bulwark's systemd
# cgroup driver: every container here is created with --systemd-cgroup, so
# its cgroup is a transient scope that bulwark asks systemd for over D-Bus.
# One framed line per check on the serial console:
#
#   BWVM PASS <check> [detail]      BWVM FAIL <check> <why>
#   BWVM DONE                       (every check ran; nothing after it counts)
#
# The host test knows the full list of checks and fails on any FAIL and on
# any check that never reported. Numbers come from /vm/expect.env, written
# by the host test from the constants it builds the bundles with.

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
. /vm/expect.env
BW="/vm/bulwark --systemd-cgroup"
CG=/sys/fs/cgroup

pass() { echo "BWVM PASS $*"; }
fail() { n=$1; shift; echo "BWVM FAIL $n $*" | tr '\n' ' '; echo; }
expect() {
	if [ "$2" = "$3" ]; then pass "$1" "$3"; else fail "$1" "want '$2' got '$3'"; fi
}
status() { $BW state "$1" 2>/dev/null | grep -o '"status": *"[a-z]*"' | grep -o '[a-z]*"$' | tr -d '"'; }
initpid() { $BW state "$1" 2>/dev/null | grep -o '"pid": *[0-9]*' | grep -o '[0-9]*$'; }
# wait_status ID STATUS: bounded poll (60 s); kill returns before the
# container's init has died.
wait_status() {
	i=0
	while [ "$(status "$1")" != "$2" ]; do
		i=$((i + 1))
		[ $i -gt 600 ] && return 1
		sleep 0.1
	done
}
# prop UNIT PROPERTY: what systemd itself says about the unit, not what is
# in cgroupfs, so a limit bulwark wrote behind systemd's back would not pass.
prop() { systemctl show -p "$2" --value "$1" 2>&1; }
# The host test boots the guest twice: pure cgroup v2
# (systemd.unified_cgroup_hierarchy=1, the library's UnifiedManager) and
# systemd's hybrid layout (=0: v1 controllers plus a cgroup2 for systemd's
# own tracking, the library's LegacyManager). The checks are the same; these
# say where each one reads its numbers and which unit property holds them.
if grep -q 'systemd.unified_cgroup_hierarchy=0' /proc/cmdline; then
	V=1
	WANT_FS=tmpfs
	MYCG="1:name=systemd:/system.slice/bwvm.service"
	MEMPROP=MemoryLimit # v1's memory.limit_in_bytes
	WPROP=CPUShares
	WANT_W=$SD_CPU_SHARES
	FROZEN=FROZEN
	THAWED=THAWED
	memmax() { cat $CG/memory/system.slice/$1/memory.limit_in_bytes; }
	pidsmax() { cat $CG/pids/system.slice/$1/pids.max; }
	cpumax() { echo "$(cat $CG/cpu/system.slice/$1/cpu.cfs_quota_us) $(cat $CG/cpu/system.slice/$1/cpu.cfs_period_us)"; }
	cpuweight() { cat $CG/cpu/system.slice/$1/cpu.shares; }
	freezer() { cat $CG/freezer/system.slice/$1/freezer.state; }
	procs() { cat $CG/memory/system.slice/$1/cgroup.procs; }
	# The line of /proc/PID/cgroup that names the memory hierarchy.
	cgline() { grep ':memory:' | cut -d: -f2-; }
else
	V=2
	WANT_FS=cgroup2
	MYCG="0::/system.slice/bwvm.service"
	MEMPROP=MemoryMax
	WPROP=CPUWeight
	WANT_W=$SD_CPU_WEIGHT
	FROZEN="1 frozen 1"
	THAWED="0 frozen 0"
	memmax() { cat $CG/system.slice/$1/memory.max; }
	pidsmax() { cat $CG/system.slice/$1/pids.max; }
	cpumax() { cat $CG/system.slice/$1/cpu.max; }
	cpuweight() { cat $CG/system.slice/$1/cpu.weight; }
	freezer() { echo "$(cat $CG/system.slice/$1/cgroup.freeze) $(grep frozen $CG/system.slice/$1/cgroup.events)"; }
	procs() { cat $CG/system.slice/$1/cgroup.procs; }
	cgline() { grep '^0::' | cut -d: -f2-; }
fi
# scopedirs UNIT: every directory of the unit on any hierarchy.
scopedirs() { ls -d $CG/system.slice/$1 $CG/*/system.slice/$1 2>/dev/null | tr '\n' ' '; }
# gone UNIT: the transient unit was stopped and garbage-collected (a failed
# scope would stay loaded until reset-failed) and its cgroups removed.
gone() {
	echo "load=$(prop "$1" LoadState) active=$(prop "$1" ActiveState) dirs=$(scopedirs "$1")"
}
GONE="load=not-found active=inactive dirs="

echo "BWVM BOOTED $(uname -r)"

# --- the host: systemd is PID 1 on the layout asked for ------------------------
comm=$(cat /proc/1/comm)
fstype=$(awk '$2 == "/sys/fs/cgroup" { print $3 }' /proc/mounts)
# The manager's Version comes over D-Bus (systemctl as root uses PID 1's
# private socket, as the library does), so an answer proves the bus works.
ver=$(systemctl show -p Version --value 2>&1)
mycg=$(cat /proc/self/cgroup)
if [ "$comm" = systemd ] && [ -d /run/systemd/system ] && [ -n "$ver" ] && [ "$fstype" = $WANT_FS ] &&
	echo "$mycg" | grep -qx "$MYCG"; then
	pass systemd_pid1 "systemd $ver; cgroup v$V, /sys/fs/cgroup is $fstype; this script in $MYCG"
else
	fail systemd_pid1 "pid 1 '$comm' version '$ver', /run/systemd/system $([ -d /run/systemd/system ] && echo present || echo missing), /sys/fs/cgroup '$fstype', own cgroup '$mycg'"
fi

# --- a cgroupsPath the systemd driver cannot use ------------------------------
out=$($BW create -b /vm/bundles/bad sdbad 2>&1)
rc=$?
if [ $rc -ne 0 ] && echo "$out" | grep -q 'linux.cgroupsPath' && echo "$out" | grep -q 'slice:prefix:name' &&
	[ -z "$($BW list -q)" ]; then
	pass bad_path_names_field "exit $rc: $out"
else
	fail bad_path_names_field "exit $rc, containers '$($BW list -q)': $out"
fi

# --- a detached container in system.slice:bulwark:sd1 -------------------------
U=bulwark-sd1.scope
$BW run -d -b /vm/bundles/sd1 sd1 >/tmp/sd1.out 2>&1
rc=$?
expect run_detached "0 running" "$rc $(status sd1)"
[ $rc -eq 0 ] || cat /tmp/sd1.out
expect scope_active "active" "$(prop $U ActiveState)"
pid=$(initpid sd1)
expect init_in_scope ":/system.slice/$U" "$(cgline </proc/"$pid"/cgroup 2>&1 | sed 's/^memory//')"
# On v1 every hierarchy has its own cgroup: the init must be in the scope in
# each of them (the devices one above all, or it runs unconfined).
expect init_every_hierarchy_in_scope "" "$(grep -v "/system.slice/$U\$" /proc/"$pid"/cgroup | tr '\n' ' ')"
expect scope_in_slice "system.slice" "$(prop $U Slice)"
# Delegate=yes: the library asks for it so that systemd leaves the limits
# bulwark writes to the cgroup files alone.
expect scope_delegated "yes" "$(prop $U Delegate)"
# Both views must agree: the unit property (what systemd would restore on a
# daemon-reload) and the kernel's file (what is enforced).
expect memory_max_set "$SD_MEMORY $SD_MEMORY" "$(prop $U $MEMPROP) $(memmax $U)"
expect tasks_max_set "$SD_PIDS $SD_PIDS" "$(prop $U TasksMax) $(pidsmax $U)"
expect cpu_quota_set "$SD_CPU_QUOTA_PER_SEC $SD_CPU_QUOTA $SD_CPU_PERIOD" "$(prop $U CPUQuotaPerSecUSec) $(cpumax $U)"
expect cpu_weight_set "$WANT_W $WANT_W" "$(prop $U $WPROP) $(cpuweight $U)"
# The spec denies every device but the runtime's defaults; the library
# turns that into DevicePolicy=strict plus DeviceAllow entries.
expect device_policy_strict "strict" "$(prop $U DevicePolicy)"

# --- pause / resume through the freezer (cgroup.freeze, or v1 freezer.state) ---
$BW pause sd1
expect pause_freezes "paused $FROZEN" "$(status sd1) $(freezer $U)"
$BW resume sd1
expect resume_thaws "running $THAWED" "$(status sd1) $(freezer $U)"

# --- update goes through systemd too -----------------------------------------
out=$($BW update --memory "$UPDATE_MEMORY" --pids-limit "$UPDATE_PIDS" sd1 2>&1) || fail update_memory_max "update: $out"
expect update_memory_max "$UPDATE_MEMORY $UPDATE_MEMORY" "$(prop $U $MEMPROP) $(memmax $U)"
expect update_tasks_max "$UPDATE_PIDS $UPDATE_PIDS" "$(prop $U TasksMax) $(pidsmax $U)"
# The limits not named in the update stay as they were.
expect update_keeps_cpu "$SD_CPU_QUOTA_PER_SEC $WANT_W" "$(prop $U CPUQuotaPerSecUSec) $(prop $U $WPROP)"

# --- devices, exec, ps, stats --------------------------------------------------
# The bundle gives CAP_MKNOD and allows only mknod ("m") of c 1:1, so the
# device rules alone decide: /dev/null (a runtime default) works, opening
# the c 1:1 node and creating a disk node do not. Under the systemd driver
# two device programs guard the scope (systemd's DevicePolicy/DeviceAllow
# and the library's own eBPF program), and both must let the defaults in.
# /devprobe.sh in the rootfs (written by the host test) prints the three.
DEVOK="NULL=ok OPEN_MEM=not permitted MKNOD_DISK=not permitted"
expect exec_devices "$DEVOK" "$($BW exec sd1 sh /devprobe.sh 2>&1 | tr '\n' ' ' | sed 's/ $//')"
# exec's process joins the scope: ps (the scope's cgroup.procs) lists it
# next to the init while it runs.
$BW exec sd1 sleep 30 &
execpid=$!
i=0
while [ "$($BW ps -f json sd1 | tr -cd , | wc -c)" -lt 1 ] && [ $i -lt 300 ]; do i=$((i + 1)); sleep 0.1; done
expect ps_lists_exec "2 pids, 2 procs" "$($BW ps -f json sd1 | tr -cd , | wc -c | awk '{print $1 + 1}') pids, $(procs $U | wc -l | tr -d ' ') procs"
# kill --all reaches the exec'd process through the scope's cgroup; the
# init (sleep 1000, pid 1 of its namespace, no TERM handler) ignores TERM.
$BW kill --all sd1 TERM
wait $execpid 2>/dev/null
expect kill_all_reaches_exec "143 running" "$? $(status sd1)"
echo "BWVM DATA sd_stats $($BW events --stats sd1 2>&1 | head -n 1)"

# --- systemctl daemon-reload re-applies every unit's properties ---------------
# Whatever bulwark set only in cgroupfs and not as a unit property would be
# reset here (systemd rewrites the cgroup files from the unit and replaces
# its own device program).
systemctl daemon-reload
expect reload_keeps_limits "$UPDATE_MEMORY $UPDATE_PIDS $SD_CPU_QUOTA $SD_CPU_PERIOD $WANT_W" \
	"$(memmax $U) $(pidsmax $U) $(cpumax $U) $(cpuweight $U)"
expect reload_keeps_devices "$DEVOK" "$($BW exec sd1 sh /devprobe.sh 2>&1 | tr '\n' ' ' | sed 's/ $//')"

# --- kill, then delete: the scope goes away ------------------------------------
$BW kill sd1 KILL
if wait_status sd1 stopped; then pass kill_stops_container "stopped"; else fail kill_stops_container "status $(status sd1)"; fi
out=$($BW delete sd1 2>&1)
rc=$?
expect delete_removes_scope "0 $GONE" "$rc $(gone $U)"
[ $rc -eq 0 ] || echo "$out"

# --- delete --force of a running container -------------------------------------
U2=bulwark-sd2.scope
$BW run -d -b /vm/bundles/sd2 sd2 >/tmp/sd2.out 2>&1
before="$(status sd2) $(prop $U2 ActiveState)"
out=$($BW delete --force sd2 2>&1)
rc=$?
expect delete_force_removes_scope "running active 0 $GONE" "$before $rc $(gone $U2)"
[ $rc -eq 0 ] || echo "$out"

# --- run in the foreground with the default cgroupsPath ------------------------
# An empty cgroupsPath under --systemd-cgroup means system.slice:bulwark:<id>;
# the container has no cgroup namespace so it sees its real cgroup.
out=$($BW run -b /vm/bundles/default sddef 2>/tmp/sddef.err)
rc=$?
expect run_default_path "$SD_DEFAULT_EXIT :/system.slice/bulwark-sddef.scope" "$rc $(echo "$out" | cgline | sed 's/^memory//')"
# The same probe as exec_devices, run by the container's init itself: the
# process create put in the scope is confined too, not only exec's.
expect init_devices "$DEVOK" "$(echo "$out" | grep -E '^(NULL|OPEN_MEM|MKNOD_DISK)=' | tr '\n' ' ' | sed 's/ $//')"
[ $rc -eq "$SD_DEFAULT_EXIT" ] || cat /tmp/sddef.err
expect run_removes_scope "$GONE" "$(gone bulwark-sddef.scope)"

# --- the memory limit is enforced, and an OOM kill leaves no failed unit -------
# systemd marks a scope whose process the OOM killer chose as failed and keeps
# it loaded until reset-failed; delete must clear that too.
$BW run -b /vm/bundles/sdoom sdoom >/tmp/sdoom.out 2>&1
rc=$?
expect oom_exit_137 137 "$rc"
expect oom_leaves_no_failed_scope "$GONE failed=" "$(gone bulwark-sdoom.scope) failed=$(systemctl list-units --failed --plain --no-legend 'bulwark-*')"

# --- nothing left ---------------------------------------------------------------
units=$(systemctl list-units --all --plain --no-legend 'bulwark-*' | tr '\n' ' ')
dirs=$(scopedirs 'bulwark-*')
expect no_leftovers "containers= units= dirs=" "containers=$($BW list -q | tr '\n' ' ') units=$units dirs=$dirs"

echo "BWVM DONE"
