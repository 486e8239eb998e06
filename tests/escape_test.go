package tests

// The escape suite: from inside containers, try each known breakout and
// record whether it was blocked, under Bulwark's default, under each
// profile, under runc's own default config and under a Docker-shaped config
// with and without the hardening floor. The default must block every
// attempt; the other columns assert what their threat model promises and
// record the rest. BULWARK_ESCAPE_WRITE=1 regenerates docs/escape.md.
//
// Every attempt is bounded and harmless even where it succeeds: host-global
// files are opened for writing and closed, never written; the "host disk"
// is a loop device on a 1 MiB file this test creates; the fork bomb, the
// memory bomb and the disk fill stop at fixed counts; the mounts happen in
// the container's own mount namespace.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/testrootfs"
	"github.com/bulwark-sec/bulwark/pkg/rootfs"
)

// Bounds of the resource attacks.
const (
	escapeForks    = 5000
	escapeMemMiB   = 2048 // at most; see memBombMiB
	escapeDiskMiB  = 200
	escapePtys     = 1000
	escapeScript   = "/escape.sh"
	escapeDir      = "/escape.d"
	escapeSuidPath = "/usr/local/bin/suid-ids"
	// escapeAttemptSecs bounds one attempt (tests/payloads/deadline): the
	// unbounded columns' fork and memory bombs and disk fills take seconds
	// on an idle host and minutes on a loaded two-core one. An attempt that
	// outlasts it is reported as a timeout, and the next one runs.
	escapeAttemptSecs = 180
	// escapeColumnTimeout bounds one configuration's whole script, far
	// above the sum of what the attempts take; the rows it did not reach
	// are reported as timed out, the rows before keep their results.
	escapeColumnTimeout = 30 * time.Minute
)

// escapeAttempt is one breakout. sh is a shell snippet whose last output
// line is the result token (an errno name, OK, or a payload's summary).
type escapeAttempt struct {
	key  string
	name string
	sh   string
	// judge decides from the token whether the attempt got through; valid
	// is false for a token it does not recognise (the payload broke), which
	// never counts as "blocked" where blocking is asserted. nil: allowed
	// exactly when the token is OK.
	judge func(tok string) (allowed bool, detail string, valid bool)
	// asUser runs the attempt in a container of its own as uid 1000.
	asUser bool
	// needs is a host path the attempt is about; a kernel without it makes
	// the row "n/a" (nothing to attack) instead of "blocked".
	needs string
	// why explains the attempt and how the default blocks it (docs).
	why string
	// open says why the attempt is known to get through the default: the
	// "*" expectation of a column does not cover it (recorded), and the
	// docs list it as open.
	open string
}

// errnoTok matches what a refused attempt prints: an errno name (with the
// step that failed, e.g. open:EPERM), EMPTY for a masked file, NOFILE when
// there was nothing to open, or how the process died (SIGSYS is seccomp's
// kill; Killed is the shell's report of a SIGKILL).
var errnoTok = regexp.MustCompile(`^([a-z_]+:)*(E[A-Z0-9]+|EMPTY|SIG[A-Z]+|NOFILE|Killed)$`)

// judgeOK: allowed when the token is OK, blocked for an errno-like token.
func judgeOK(tok string) (bool, string, bool) {
	if tok == "OK" {
		return true, "OK", true
	}
	return false, tok, errnoTok.MatchString(tok)
}

// judgeNumber finds the last match of re (one integer group) and calls it
// allowed when it reaches limit; the detail names what stopped it.
func judgeNumber(re *regexp.Regexp, limit int, unit string) func(string) (bool, string, bool) {
	return func(tok string) (bool, string, bool) {
		m := re.FindAllStringSubmatch(tok, -1)
		if m == nil {
			// Refused or killed before it could report a count.
			return false, tok, errnoTok.MatchString(tok)
		}
		n, _ := strconv.Atoi(m[len(m)-1][1])
		detail := fmt.Sprintf("%d/%d %s", n, limit, unit)
		if r := regexp.MustCompile(`"result":\s*"(\w+)"`).FindStringSubmatch(tok); r != nil && r[1] != "OK" {
			detail += " " + r[1]
		}
		return n >= limit, detail, true
	}
}

// memBombMiB is escapeMemMiB, or a quarter of the host's available memory
// when that is less (but at least 1 GiB): under runc's and Docker's defaults nothing limits the
// bomb, and it must not push a small host into its own OOM killer.
func memBombMiB() int {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return escapeMemMiB
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemAvailable:" {
			kib, err := strconv.Atoi(f[1])
			if err == nil {
				// Never below 1 GiB: the bomb must outgrow the
				// default's 512 MiB limit to prove it.
				return max(1024, min(escapeMemMiB, kib/1024/4))
			}
		}
	}
	return escapeMemMiB
}

func escapeAttempts(diskMaj, diskMin uint32) []escapeAttempt {
	memMiB := memBombMiB()
	sock := func(key, fam, args, why string) escapeAttempt {
		return escapeAttempt{key: key, name: "socket(" + fam + ", " + strings.Fields(args)[0] + ")", sh: "syscall socket " + fam + " " + args, why: why}
	}
	rareWhy := "blocked by seccomp (EAFNOSUPPORT): a rarely used socket family with a history of kernel CVEs; the default allows only AF_UNIX, AF_INET, AF_INET6 and AF_NETLINK and answers as a kernel without the family would. Where runc's column also says EAFNOSUPPORT, this kernel lacks the family"
	return []escapeAttempt{
		{key: "mount-tmpfs", name: "mount tmpfs", sh: "syscall mount none /mnt tmpfs 0 ''",
			why: "blocked by seccomp (EPERM): the default denies mount, umount2, fsopen, open_tree, move_mount and pivot_root outright; without it the missing CAP_SYS_ADMIN would refuse it too"},
		{key: "mount-bind", name: "bind-mount /", sh: "syscall mount / /mnt '' 'MS_BIND|MS_REC' ''",
			why: "blocked by seccomp (EPERM): a recursive bind of / is the first step of many escapes (reaching paths mounted over, remounting read-write); refused like any mount"},
		{key: "keyctl", name: "keyctl", sh: "syscall keyctl",
			why: "blocked by seccomp (EPERM): the kernel keyring is not namespaced, so keys of other containers and of the host are one lookup away; keyctl, add_key and request_key are denied (runc's default allows it)"},
		{key: "bpf", name: "bpf (map create)", sh: "syscall bpf",
			why: "blocked by seccomp (EPERM): eBPF is a rich source of local privilege escalations (the host's unprivileged_bpf_disabled also refuses it without CAP_BPF)"},
		{key: "userfaultfd", name: "userfaultfd", sh: "syscall userfaultfd",
			why: "blocked by seccomp (EPERM): userfaultfd lets an exploit stall the kernel mid-copy to win races"},
		{key: "io_uring", name: "io_uring_setup", sh: "syscall io_uring_setup",
			why: "blocked by seccomp (EPERM): io_uring does its work outside per-syscall filtering and has had many privilege escalations (runc's default allows it)"},
		{key: "perf", name: "perf_event_open", sh: "syscall perf_event_open",
			why: "blocked by seccomp (EPERM): perf events leak kernel addresses and have had privilege escalations (perf_event_paranoid refuses it too where no seccomp does: EACCES)"},
		{key: "open_by_handle_at", name: "open_by_handle_at (shocker)", sh: "syscall open_by_handle_at",
			why: "blocked by seccomp (EPERM): the 'shocker' escape, a file handle opens any inode of the filesystem outside the container's root; it also needs CAP_DAC_READ_SEARCH"},
		{key: "caps", name: "hold a capability Docker does not grant", sh: "c=$(grep CapEff /proc/self/status | cut -f2); m=$(( 0x$c & " + dangerousCapMask + " )); [ $m = 0 ] && echo none || printf 'held=%x\\n' $m",
			judge: func(tok string) (bool, string, bool) {
				if tok == "none" {
					return false, tok, true
				}
				if strings.HasPrefix(tok, "held=") {
					return true, tok, true
				}
				return judgeOK(tok)
			},
			why: "blocked by the empty capability set (none): DAC_READ_SEARCH (shocker), SYS_ADMIN, SYS_MODULE, SYS_RAWIO, SYS_PTRACE, SYS_BOOT, SYS_TIME, NET_ADMIN, MAC_ADMIN, SYSLOG, PERFMON and BPF each open a way out or into the kernel; held= is the mask of those in CapEff. --harden keeps only Docker's default capabilities (and those run.bulwark.allow names) whatever the config asks for: the docker+caps+harden column asks for them all"},
		{key: "ptrace", name: "ptrace a sibling process", sh: "sleep 30 & p=$!; r=$(syscall ptrace attach $p); kill -9 $p; echo $r",
			why: "blocked by seccomp (EPERM): ptrace reads and changes another process (with a runtime process in reach, an escape); runc's and Docker's defaults allow tracing a sibling of the same uid; --harden takes ptrace out of the engine's profile"},
		sock("raw", "AF_INET", "SOCK_RAW IPPROTO_ICMP", "blocked by capabilities (EPERM): raw IP sockets forge packets (ARP/DNS spoofing on a bridge) and need CAP_NET_RAW; the seccomp allows AF_INET, the empty capability set refuses SOCK_RAW"),
		sock("packet", "AF_PACKET", "SOCK_RAW ETH_P_ALL", "blocked by seccomp (EAFNOSUPPORT): packet sockets sniff and inject frames and have had privilege escalations (CVE-2017-7308, CVE-2020-14386); the family is refused, and CAP_NET_RAW is absent anyway"),
		sock("vsock", "AF_VSOCK", "SOCK_STREAM", rareWhy),
		sock("alg", "AF_ALG", "SOCK_SEQPACKET", rareWhy),
		sock("key", "AF_KEY", "SOCK_RAW 2", rareWhy),
		sock("bluetooth", "AF_BLUETOOTH", "SOCK_RAW 1", rareWhy),
		sock("appletalk", "AF_APPLETALK", "SOCK_DGRAM", rareWhy),
		sock("x25", "AF_X25", "SOCK_SEQPACKET", rareWhy),
		sock("tipc", "AF_TIPC", "4", rareWhy),
		sock("rds", "AF_RDS", "SOCK_SEQPACKET", rareWhy),
		sock("can", "AF_CAN", "SOCK_RAW 1", rareWhy),
		sock("xdp", "AF_XDP", "SOCK_RAW", rareWhy),
		{key: "blkdev", name: fmt.Sprintf("mknod b %d:%d + read (host disk)", diskMaj, diskMin),
			sh:  fmt.Sprintf("r=$(syscall blkread /dev/escape-disk %d %d); [ \"$r\" = EROFS ] && r=$(syscall blkread /tmp/escape-disk %d %d); echo $r", diskMaj, diskMin, diskMaj, diskMin),
			why: "blocked by capabilities and the user namespace (EPERM; /dev is read-only, so the node is attempted in /tmp): a block node made with mknod reads the host's disk whatever the mount options; no user namespace may make device nodes, and past that the devices cgroup refuses mknod and open of anything but the default character devices (the Docker columns' EPERM, with CAP_MKNOD)"},
		{key: "drop_caches", name: "open /proc/sys/vm/drop_caches for write", sh: "syscall openw /proc/sys/vm/drop_caches",
			why: "blocked by the user namespace (EACCES): most of /proc/sys is host-global; its files belong to the host's root, whom container root is not, and /proc/sys is a read-only path besides (runc's and Docker's EROFS)"},
		{key: "sysrq", name: "open /proc/sysrq-trigger for write", sh: "syscall openw /proc/sysrq-trigger", needs: "/proc/sysrq-trigger",
			why: "sysrq-trigger reboots or crashes the host; a read-only path owned by the host's root. n/a where the kernel has no sysrq"},
		{key: "core_pattern", name: "open /proc/sys/kernel/core_pattern for write", sh: "syscall openw /proc/sys/kernel/core_pattern",
			why: "blocked by the user namespace (EACCES): a core_pattern starting with | runs a program as host root on the next crash; owned by the host's root, and a read-only path (runc's EROFS)"},
		{key: "sysfs", name: "open /sys/kernel/mm/transparent_hugepage/enabled for write", sh: "syscall openw /sys/kernel/mm/transparent_hugepage/enabled",
			why: "blocked by a read-only mount (EROFS): sysfs attributes change host-wide kernel state; /sys is mounted read-only, and its host attributes belong to the host's root"},
		{key: "release_agent", name: "open a cgroup release_agent for write",
			sh:  "r=NOFILE; for f in /sys/fs/cgroup/*/release_agent /sys/fs/cgroup/release_agent; do [ -e \"$f\" ] || continue; r=$(syscall openw $f); [ \"$r\" = OK ] && break; done; echo $r",
			why: "blocked by the cgroup namespace (NOFILE): the release_agent of a cgroup v1 hierarchy runs as host root (CVE-2022-0492); a container sees only its own cgroup below the hierarchy's root, where the file does not exist"},
		{key: "cgroup_mount", name: "mount cgroup v1 (for its release_agent)",
			sh:  "r=$(syscall mount cgroup /mnt cgroup 0 memory); if [ \"$r\" = OK ]; then r=mounted:$(syscall openw /mnt/release_agent); syscall umount2 /mnt MNT_DETACH >/dev/null; fi; echo $r",
			why: "blocked by seccomp (EPERM): mounting a v1 hierarchy is the other way to a release_agent; a mount, so refused, and a v1 cgroup mount needs CAP_SYS_ADMIN in the host's user namespace anyway"},
		{key: "self_exe", name: "open /proc/self/exe for write", sh: "syscall openw /proc/self/exe",
			why: "blocked by the kernel (ETXTBSY; EACCES for uid 1000): CVE-2019-5736 overwrote the runtime through /proc/PID/exe; here it is the payload's own binary, a rootfs copy, which the kernel refuses to open for writing while it runs; the rootfs is read-only besides. The runtime's own binary is the subject of pkg/selfexe and its tests (exeattack)"},
		{key: "fdleak", name: "leaked fds / cwd outside the root", sh: "fdleak | tr -d ' \\n' | grep -o '\"escapes\":[0-9]*'",
			judge: judgeNumber(regexp.MustCompile(`"escapes":\s*(\d+)`), 1, "fds leading out"),
			why:   "blocked by the runtime (0 fds lead out): CVE-2024-21626, an fd or cwd the runtime left open on a host directory leads out of the root; the fdleak payload walks .. from every directory fd and the cwd"},
		{key: "userns", name: "unshare(CLONE_NEWUSER) to regain capabilities",
			sh: "r=$(syscall unshare 'CLONE_NEWUSER|CLONE_NEWNS'); if [ \"$r\" = OK ]; then echo unshare=OK,$(unshare -r -m sh -c 'echo caps=$(grep CapEff /proc/self/status | cut -f2),mount=$(syscall mount none /mnt tmpfs)' 2>&1 | tail -n 1); else echo $r; fi",
			// A successful unshare(CLONE_NEWUSER) is the escape to
			// judge: the kernel hands the caller a full capability set in
			// the new namespace. The busybox unshare -r part shows it
			// (CapEff, a tmpfs mount) where it can map root.
			judge: func(tok string) (bool, string, bool) {
				if strings.HasPrefix(tok, "unshare=OK") {
					return true, tok, true
				}
				return judgeOK(tok)
			},
			why: "blocked by seccomp (EPERM): a new user namespace gives back a full capability set (over the new namespaces), which opens kernel code written for root (mounts, netfilter); the namespace flags of unshare and clone are refused. Under runc the unshare succeeds (allowed), though busybox cannot then map root there"},
		{key: "setuid", name: "setuid-root binary run as uid 1000", sh: escapeSuidPath, asUser: true,
			judge: func(tok string) (bool, string, bool) {
				m := regexp.MustCompile(`euid=(\d+)`).FindStringSubmatch(tok)
				if m == nil {
					return judgeOK(tok)
				}
				return m[1] == "0", "euid=" + m[1], true
			},
			why: "blocked by nosuid and no_new_privs (euid=1000): a set-user-id root binary in the image makes an unprivileged user root; the test copies the ids payload as root:root 4755 into the rootfs; runc's default sets no_new_privs, Docker's does not (euid=0), --harden sets it"},
		{key: "tiocsti", name: "TIOCSTI on the container's tty", sh: "syscall tiocsti",
			why: "blocked by seccomp (EPERM): TIOCSTI pushes input into a terminal, a shell outside the container if it shares one; the payload tries it on a pty of its own made its controlling terminal. Docker's seccomp does not filter it, and this kernel has legacy_tiocsti=1; --harden adds the denial, also under Docker's profile, whose default action is the same EPERM"},
		{key: "tiocsti_hi", name: "TIOCSTI as 0xffffffff00005412", sh: "syscall tiocsti 0xffffffff00005412",
			why: "blocked by seccomp (EPERM): the kernel truncates the ioctl command to 32 bits, so a filter comparing all 64 would let this through; the default compares the low 32 bits only"},
		{key: "forkbomb", name: fmt.Sprintf("fork bomb (%d)", escapeForks), sh: fmt.Sprintf("forkbomb %d | tr -d ' \\n'", escapeForks),
			judge: judgeNumber(regexp.MustCompile(`"forked":\s*(\d+)`), escapeForks, "forks"),
			why:   "blocked by the pids cgroup (EAGAIN): a fork bomb starves the host of pids; the default's limit of 1024 stops it (the shell and the payload hold the rest); runc's and Docker's defaults have no limit, --harden adds one"},
		{key: "membomb", name: fmt.Sprintf("memory bomb (%d MiB)", memMiB), sh: fmt.Sprintf("n=$(membomb %d | grep -c '^allocated'); echo allocated $n", memMiB),
			judge: judgeNumber(regexp.MustCompile(`allocated[_a-z":]*\s+(\d+)`), memMiB, "MiB"),
			why:   "blocked by the memory cgroup (OOM kill inside the container): touching memory without bound pushes the host into its OOM killer; the default's 512 MiB limit kills the bomb, --harden adds a 1 GiB limit where the config has none; runc's and Docker's defaults set none"},
		{key: "diskfill_root", name: fmt.Sprintf("fill / (%d MiB)", escapeDiskMiB), sh: fmt.Sprintf("diskfill /escape-fill %d | tr -d ' \\n'", escapeDiskMiB),
			judge: judgeNumber(regexp.MustCompile(`"written_mib":\s*(\d+)`), escapeDiskMiB, "MiB"),
			why:   "blocked by a read-only rootfs (EROFS): writing to the rootfs fills the host's disk; dev's rootfs is writable by design"},
		{key: "diskfill_tmp", name: fmt.Sprintf("fill /tmp (%d MiB)", escapeDiskMiB), sh: fmt.Sprintf("diskfill /tmp/escape-fill %d | tr -d ' \\n'", escapeDiskMiB),
			judge: judgeNumber(regexp.MustCompile(`"written_mib":\s*(\d+)`), escapeDiskMiB, "MiB"),
			why:   "capped by the tmpfs size (ENOSPC at 64 MiB): the writable scratch space is a 64 MiB tmpfs, counted in the memory cgroup"},
		{key: "kallsyms", name: "/proc/kallsyms non-zero addresses", needs: "/proc/kallsyms",
			sh:    "n=$(head -n 200 /proc/kallsyms 2>/dev/null | grep -vc '^0000000000000000 '); echo nonzero=$n",
			judge: judgeNumber(regexp.MustCompile(`nonzero=(\d+)`), 1, "non-zero"),
			why:   "blocked by a masked path (no addresses): kernel symbol addresses defeat KASLR; /proc/kallsyms is masked, and the kernel shows zeros to anyone without CAP_SYSLOG in the host's user namespace"},
		{key: "kcore", name: "read /proc/kcore", sh: "syscall read /proc/kcore 16", needs: "/proc/kcore",
			why: "/proc/kcore is the kernel's memory; masked (EMPTY: /dev/null is mounted over it). n/a where the kernel has no /proc/kcore"},
		{key: "dev_exec", name: "drop a binary in /dev and run it",
			sh:  "r=$(syscall create /dev/planted); if [ \"$r\" = OK ]; then cat $(command -v syscall) > /dev/dropped; chmod 755 /dev/dropped; r=$(/dev/dropped getppid 2>&1 | tail -n 1); rm -f /dev/dropped; [ \"$r\" = OK ] || r=exec:EACCES; fi; echo $r",
			why: "blocked by a read-only, noexec /dev (EROFS): /dev is a tmpfs the runtime fills, and writable it is where a dropped binary runs despite a read-only rootfs and a noexec /tmp; after setup it is remounted read-only, nosuid and noexec, while /dev/shm, /dev/pts, /dev/mqueue and binds below /dev (Kubernetes' termination-log) keep their own flags. A program that maps /dev/zero privately with PROT_EXEC (an old JIT trick) now gets EPERM"},
		{key: "ptys", name: fmt.Sprintf("open %d ptys (pty exhaustion)", escapePtys), sh: fmt.Sprintf("syscall ptmxfill %d | head -n 1", escapePtys),
			judge: func(tok string) (bool, string, bool) {
				m := regexp.MustCompile(`opened=(\d+)`).FindStringSubmatch(tok)
				if m == nil {
					return judgeOK(tok)
				}
				n, _ := strconv.Atoi(m[1])
				return n > rootfs.DevptsMax, fmt.Sprintf("%d ptys", n), true
			},
			why: fmt.Sprintf("capped by devpts max= (ENOSPC at %d): every container's devpts draws from the host's kernel.pty.max less kernel.pty.reserve; without a per-instance max one container takes every pty on the host and no other container, nor an exec with a terminal, gets one", rootfs.DevptsMax)},
		{key: "softirqs", name: "read interrupt counters (/proc/softirqs, /sys/kernel/irq)", needs: "/proc/softirqs",
			sh: "n=$( (cat /proc/softirqs; cat /sys/kernel/irq/*/per_cpu_count) 2>/dev/null | wc -c); echo bytes=$n",
			judge: func(tok string) (bool, string, bool) {
				m := regexp.MustCompile(`bytes=(\d+)`).FindStringSubmatch(tok)
				if m == nil {
					return judgeOK(tok)
				}
				return m[1] != "0", m[1] + " bytes", true
			},
			why: "blocked by masked paths (no bytes): per-cpu interrupt counters time keystrokes, network and disk activity of the host and other containers; /proc/interrupts, /proc/softirqs and /sys/kernel/irq are masked. The intr line of /proc/stat carries the same counters and is not masked: ps, top and load monitors read /proc/stat"},
		{key: "procmem", name: "open a sibling's /proc/PID/mem for writing", sh: `sleep 30 & p=$!; r=$(sh -c "syscall openw /proc/$p/mem"); kill $p; echo $r`,
			why: "blocked by Landlock (EACCES): writing a sibling's memory through /proc/PID/mem takes only the same uid and a dumpable target, whatever seccomp says about ptrace, and the two processes here share one Landlock domain; the payload gets no write access beneath /proc. Landlock's rights add up along a path, so where the rootfs is writable (dev, the Docker columns under the floor) write access beneath / includes /proc, and there the container's procfs mount is read-only instead (EROFS); runc's and Docker's own columns, without Landlock, let it through; see \"/proc/PID/mem between processes of one container\" below"},
		{key: "vmwrite", name: "process_vm_writev to a sibling", sh: `sleep 30 & p=$!; r=$(sh -c "syscall process_vm_writev $p"); kill $p; echo $r`,
			why: "blocked by seccomp (EPERM): process_vm_writev writes another process's memory with the same ptrace attach-mode check as /proc/PID/mem, which a sibling of the same uid passes; the write goes to address 0, so where it is let through it faults and writes nothing (OK). Docker's profile allows it to every container; --harden takes it out"},
		{key: "procstat_intr", name: "read interrupt counters from /proc/stat's intr line", sh: `n=$(grep -c '^intr [0-9]* [0-9]' /proc/stat); [ "$n" = 1 ] && echo OK || echo EMPTY`, needs: "/proc/stat",
			open: "ps, top and load monitors read /proc/stat, which cannot be masked without breaking them",
			why:  "open in every column (OK): the intr line of /proc/stat carries the per-interrupt counters that masking /proc/interrupts, /proc/softirqs and /sys/kernel/irq hides (summed over CPUs, so coarser); ps, top and every load monitor read /proc/stat"},
		{key: "syslog", name: "syslog(READ_ALL) (dmesg)", sh: "syscall syslog",
			why: "blocked by seccomp (EPERM): the kernel log leaks addresses and host activity; dmesg_restrict refuses it without CAP_SYSLOG too"},
		// OK when container root is host root (uid 0 maps to host uid 0).
		{key: "hostroot", name: "container root is host root", sh: `read -r c h n < /proc/self/uid_map; if [ "$h" = 0 ]; then echo OK; else echo mapped; fi`,
			judge: func(tok string) (bool, string, bool) {
				if tok == "mapped" {
					return false, tok, true
				}
				return judgeOK(tok)
			},
			why: "blocked by the user namespace (mapped): container root is an unprivileged host uid, so whatever leaves the container's namespaces (a kernel bug, a bind of the wrong host path, an fd passed in) meets a uid that owns nothing on the host; --harden gives engine configs one from the pool, with the rootfs and volumes idmapped, as Kubernetes does for hostUsers: false"},
	}
}

// dangerousCapMask is the CapEff bits of DAC_READ_SEARCH (2), NET_ADMIN
// (12), SYS_MODULE (16), SYS_RAWIO (17), SYS_PTRACE (19), SYS_ADMIN (21),
// SYS_BOOT (22), SYS_TIME (25), MAC_ADMIN (33), SYSLOG (34), PERFMON (38)
// and BPF (39).
const dangerousCapMask = "0xc6026b1004"

// escapeColumn is one configuration the attempts run under.
type escapeColumn struct {
	name string
	desc string
	skip string
	// run returns the token of each attempt by key.
	run func(t *testing.T, e *env, as []escapeAttempt) map[string]string
	// expect maps attempt keys to "blocked" or "allowed"; "*" covers the
	// keys not listed. Keys not covered are recorded, not asserted.
	expect map[string]string
}

// expectFor is what column c asserts for attempt a: "blocked", "allowed",
// or "" (recorded). The "*" entry does not cover an attempt known to be
// open.
func (c escapeColumn) expectFor(a escapeAttempt) string {
	if w, ok := c.expect[a.key]; ok {
		return w
	}
	if a.open != "" {
		return ""
	}
	return c.expect["*"]
}

// writeEscapeFiles puts the attempt script and the setuid-root ids copy in
// a rootfs.
func writeEscapeFiles(t *testing.T, rootfs string, as []escapeAttempt) {
	t.Helper()
	var b strings.Builder
	b.WriteString("# one line per attempt: @@KEY TOKEN (the last line the attempt printed)\ncd /\n")
	if err := os.MkdirAll(filepath.Join(rootfs, escapeDir), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if a.asUser {
			continue
		}
		if err := os.WriteFile(filepath.Join(rootfs, escapeDir, a.key), []byte(a.sh+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		// A shell per attempt, in a process group of its own under a time
		// limit: one that dies, hangs or leaves a job behind does not take
		// the rest with it.
		fmt.Fprintf(&b, "r=$( deadline %d sh %s/%s 2>&1 | tail -n 1 ); echo \"@@%s $r\"\n", escapeAttemptSecs, escapeDir, a.key, a.key)
	}
	b.WriteString("exit 0\n")
	if err := os.WriteFile(filepath.Join(rootfs, escapeScript), []byte(b.String()), 0o755); err != nil {
		t.Fatal(err)
	}
	suid := filepath.Join(rootfs, escapeSuidPath)
	src, err := os.ReadFile(filepath.Join(rootfs, testrootfs.PayloadBinDir, "ids"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(suid, src, 0o755); err != nil {
		t.Fatal(err)
	}
	// Chown before chmod: chown clears the set-user-id bit.
	if err := os.Chown(suid, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(suid, 0o755|os.ModeSetuid); err != nil {
		t.Fatal(err)
	}
}

// parseEscape collects the @@KEY TOKEN lines of a script run.
func parseEscape(out string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, tok, ok := strings.Cut(strings.TrimPrefix(l, "@@"), " "); ok && strings.HasPrefix(l, "@@") {
			m[k] = strings.TrimSpace(tok)
		} else if ok && strings.HasPrefix(l, "@@") {
			m[k] = ""
		}
	}
	return m
}

// escapeResults parses a column's script run. A run killed at
// escapeColumnTimeout keeps the rows it finished; the others are marked as
// timed out rather than lost with the rest of the table.
func escapeResults(t *testing.T, as []escapeAttempt, r result) map[string]string {
	t.Helper()
	got := parseEscape(r.stdout)
	if r.timedOut {
		t.Errorf("the script ran out of its %s and was killed after %d of its rows", escapeColumnTimeout, len(got))
		for _, a := range as {
			if _, ok := got[a.key]; !ok && !a.asUser {
				got[a.key] = fmt.Sprintf("TIMEOUT of the whole script after %s", escapeColumnTimeout)
			}
		}
	} else if len(got) == 0 {
		t.Errorf("no results: %v", r)
	}
	return got
}

// tokenOf is the result of a command run as its own container: the last
// line it printed, or how it ended when it printed nothing.
func tokenOf(r result) string {
	out := strings.TrimSpace(r.stdout)
	if out == "" {
		if r.code != 0 {
			if r.code > 128 {
				return unix.SignalName(unix.Signal(r.code - 128))
			}
			return fmt.Sprintf("exit%d", r.code)
		}
		return "EMPTY-OUTPUT"
	}
	// Multi-line JSON summaries are judged as one line.
	if strings.HasSuffix(out, "}") {
		return strings.Join(strings.Fields(out), "")
	}
	ls := strings.Split(out, "\n")
	return strings.TrimSpace(ls[len(ls)-1])
}

// userFace runs the script through `bulwark run [flags] ROOTFS -- sh`, and
// the setuid attempt as --user 1000 in a second container.
func userFace(flags ...string) func(*testing.T, *env, []escapeAttempt) map[string]string {
	return func(t *testing.T, e *env, as []escapeAttempt) map[string]string {
		rootfs := userRootfs(t)
		writeEscapeFiles(t, rootfs, as)
		run := func(flags []string, cmd ...string) result {
			args := append(append([]string{"run", "--name", e.id()}, flags...), rootfs, "--")
			return e.bwWith(bwOpts{timeout: escapeColumnTimeout}, append(args, cmd...)...)
		}
		r := run(flags, "sh", escapeScript)
		got := escapeResults(t, as, r)
		for _, a := range as {
			if a.asUser {
				got[a.key] = tokenOf(run(append(append([]string(nil), flags...), "--user", "1000:1000"), a.sh))
			}
		}
		return got
	}
}

// learnedFace learns a profile from the script (and, merged in, from the
// uid 1000 attempts) under the default profile, then runs them all under
// it as userFace does.
func learnedFace(t *testing.T, e *env, as []escapeAttempt) map[string]string {
	rootfs := userRootfs(t)
	writeEscapeFiles(t, rootfs, as)
	prof := filepath.Join(t.TempDir(), "learned.json")
	if r := e.learn(prof, nil, rootfs, "sh", escapeScript); r.code != 0 {
		t.Fatalf("learning the escape script: %v", r)
	}
	for _, a := range as {
		if a.asUser {
			if r := e.learn(prof, []string{"--merge", "--user", "1000:1000"}, rootfs, a.sh); r.code != 0 {
				t.Fatalf("learning %s as uid 1000: %v", a.key, r)
			}
		}
	}
	return userFace("--profile", prof)(t, e, as)
}

// perAttempt runs each attempt as a container of its own: for strict,
// whose seccomp refuses fork, so a shell can run at most one command.
// Attempts that are one command run it directly; the others run under sh,
// which then cannot fork.
func perAttempt(flags ...string) func(*testing.T, *env, []escapeAttempt) map[string]string {
	return func(t *testing.T, e *env, as []escapeAttempt) map[string]string {
		rootfs := userRootfs(t)
		writeEscapeFiles(t, rootfs, as)
		got := map[string]string{}
		for _, a := range as {
			f := flags
			if a.asUser {
				f = append(append([]string(nil), flags...), "--user", "1000:1000")
			}
			var cmd []string
			if strings.ContainsAny(a.sh, "$|;&<>(){}'\"") {
				cmd = []string{"sh", "-c", a.sh}
			} else {
				cmd = strings.Fields(a.sh)
				if !strings.HasPrefix(cmd[0], "/") {
					cmd[0] = testrootfs.PayloadBinDir + "/" + cmd[0]
				}
			}
			r := e.userRun(nil, f, rootfs, cmd...)
			tok := tokenOf(r)
			if strings.Contains(r.stderr, "can't fork") {
				tok = "fork:EPERM"
			}
			got[a.key] = tok
		}
		return got
	}
}

// ociBundle runs the script in a bundle built from base, changed by
// mutate, under `bulwark [global] run -b`, then the setuid attempt with
// process.user 1000.
func ociBundle(global []string, mutate func(*specs.Spec)) func(*testing.T, *env, []escapeAttempt) map[string]string {
	return func(t *testing.T, e *env, as []escapeAttempt) map[string]string {
		var spec specs.Spec
		bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
			s.Process.Args = []string{"sh", escapeScript}
			mutate(s)
			spec = *s
		})
		writeEscapeFiles(t, filepath.Join(bundle, "rootfs"), as)
		run := func() result {
			return e.bwWith(bwOpts{timeout: escapeColumnTimeout}, append(append([]string(nil), global...), "run", "-b", bundle, e.id())...)
		}
		got := escapeResults(t, as, run())
		for _, a := range as {
			if a.asUser {
				p := *spec.Process
				p.User = specs.User{UID: 1000, GID: 1000}
				p.Args = []string{a.sh}
				spec.Process = &p
				testrootfs.WriteConfig(t, bundle, &spec)
				got[a.key] = tokenOf(run())
			}
		}
		return got
	}
}

const runcPath = "/usr/sbin/runc"

// runcSpec is the config `runc spec` writes.
func runcSpec(t *testing.T) specs.Spec {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command(runcPath, "spec", "-b", dir).CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v: %s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	return spec
}

// runcShaped replaces a bundle's config with runc's, keeping its rootfs
// and command, without a terminal.
func runcShaped(t *testing.T) func(*specs.Spec) {
	b, err := json.Marshal(runcSpec(t))
	if err != nil {
		t.Fatal(err)
	}
	return func(s *specs.Spec) {
		root, args := s.Root, s.Process.Args
		var rs specs.Spec
		if err := json.Unmarshal(b, &rs); err != nil {
			t.Fatal(err)
		}
		*s = rs
		s.Root.Path = root.Path
		s.Process.Args, s.Process.Terminal = args, false
	}
}

// dockerCapsHostUsers turns docker (dockerDefault) into `docker run
// --cap-add` of every capability the floor drops, with the seccomp rules
// dockerd adds for them, and the paths and flags of issue 11's holes 2 and
// 3: no readonlyPaths or maskedPaths, /sys read-write, the host's users.
func dockerCapsHostUsers(docker func(*specs.Spec)) func(*specs.Spec) {
	return func(s *specs.Spec) {
		docker(s)
		c := s.Process.Capabilities
		for _, set := range []*[]string{&c.Bounding, &c.Effective, &c.Permitted, &c.Inheritable} {
			*set = append(*set, "CAP_DAC_READ_SEARCH", "CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_MODULE", "CAP_SYS_RAWIO",
				"CAP_NET_ADMIN", "CAP_SYSLOG", "CAP_BPF", "CAP_PERFMON")
		}
		sc := *s.Linux.Seccomp
		sc.Syscalls = append(slices.Clone(sc.Syscalls), specs.LinuxSyscall{Action: specs.ActAllow, Names: []string{
			"open_by_handle_at", "name_to_handle_at", "mount", "umount2", "unshare", "setns", "pivot_root", "ptrace",
			"process_vm_readv", "process_vm_writev", "init_module", "finit_module", "delete_module", "iopl", "ioperm",
			"syslog", "bpf", "perf_event_open", "fanotify_init", "lookup_dcookie", "quotactl", "sethostname", "setdomainname"}})
		s.Linux.Seccomp = &sc
		s.Linux.ReadonlyPaths, s.Linux.MaskedPaths = nil, nil
		for i := range s.Mounts {
			if s.Mounts[i].Destination == "/sys" {
				s.Mounts[i].Options = slices.DeleteFunc(slices.Clone(s.Mounts[i].Options), func(o string) bool { return o == "ro" })
			}
		}
		hostUsers(s)
	}
}

// escapeFloorAllows are the rows a Docker-shaped config under the floor may
// let through although the default blocks them, and why it must.
var escapeFloorAllows = map[string]string{
	"diskfill_root": "Docker's rootfs is writable: it fills the engine's overlay upper directory on the host's disk (a quota is the engine's: --storage-opt size=)",
	"diskfill_tmp":  "Docker mounts no tmpfs on /tmp: /tmp is part of the writable rootfs",
}

// runcDefault runs the script under runc with the config `runc spec`
// writes, changed only to run the script without a terminal.
func runcDefault(t *testing.T, e *env, as []escapeAttempt) map[string]string {
	const runc = runcPath
	bundle := testrootfs.Bundle(t, nil)
	spec := runcSpec(t)
	writeEscapeFiles(t, filepath.Join(bundle, "rootfs"), as)
	root := t.TempDir()
	run := func(user specs.User, args ...string) result {
		spec.Process.Terminal = false
		spec.Process.User = user
		spec.Process.Args = args
		testrootfs.WriteConfig(t, bundle, &spec)
		id := e.id()
		t.Cleanup(func() { exec.Command(runc, "--root", root, "delete", "--force", id).Run() })
		cmd := exec.Command(runc, "--root", root, "run", "-b", bundle, id)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		r := result{}
		if err := runWithTimeout(cmd, escapeColumnTimeout); err != nil {
			r.code = -1
			if ee, ok := err.(*exec.ExitError); ok {
				r.code = ee.ExitCode()
			}
			r.timedOut = errors.Is(err, errTimedOut)
		}
		r.stdout, r.stderr = out.String(), errb.String()
		return r
	}
	got := escapeResults(t, as, run(specs.User{}, "sh", escapeScript))
	for _, a := range as {
		if a.asUser {
			got[a.key] = tokenOf(run(specs.User{UID: 1000, GID: 1000}, a.sh))
		}
	}
	return got
}

// dockerDefault is the config dockerd writes by default: harden_test.go's
// dockerShaped (Docker's 14 capabilities, no user namespace, no
// no_new_privs, a writable rootfs, no pids limit) with Docker's default
// seccomp profile instead of none.
func dockerDefault(t *testing.T) func(*specs.Spec) {
	b, err := os.ReadFile("../bench/profiles/docker-default.json")
	if err != nil {
		t.Fatal(err)
	}
	var sc specs.LinuxSeccomp
	if err := json.Unmarshal(b, &sc); err != nil {
		t.Fatal(err)
	}
	return func(s *specs.Spec) {
		dockerShaped(s)
		s.Linux.Seccomp = &sc
	}
}

// makeLoop attaches a loop device to a 1 MiB file holding marker.
func makeLoop(t *testing.T, marker string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(f, append([]byte(marker), make([]byte, 1<<20-len(marker))...), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "-f", "--show", f).CombinedOutput()
	if err != nil {
		t.Skipf("no loop device for the host-disk attempts (losetup: %v: %s)", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	return dev
}

func gpuNodes() []string {
	var nodes []string
	for _, g := range []string{"/dev/dri/*", "/dev/nvidia*"} {
		m, _ := filepath.Glob(g)
		nodes = append(nodes, m...)
	}
	return nodes
}

func TestEscapeSuite(t *testing.T) {
	e := newEnv(t)
	hostDisk := makeLoop(t, "BULWARK-HOST-DISK")
	grantedDisk := makeLoop(t, "BULWARK-GRANTED-DISK")
	var st unix.Stat_t
	if err := unix.Stat(hostDisk, &st); err != nil {
		t.Fatal(err)
	}
	as := escapeAttempts(unix.Major(st.Rdev), unix.Minor(st.Rdev))

	all := map[string]string{"*": "blocked"}
	except := func(m map[string]string) map[string]string {
		m["*"] = "blocked"
		return m
	}
	gpu := escapeColumn{name: "gpu", desc: "`--profile gpu` (the host's GPU nodes)", expect: all}
	if n := gpuNodes(); len(n) == 0 {
		gpu.skip = "no /dev/dri or /dev/nvidia* nodes on this host"
	} else {
		gpu.run = userFace("--profile", "gpu")
	}
	docker := dockerDefault(t)
	// The floor with an empty policy: the host's /etc/bulwark/policy.json
	// stays out of the table.
	harden := []string{"--harden", "--policy", emptyPolicy(t)}
	cols := []escapeColumn{
		{name: "default", desc: "`bulwark run ROOTFS -- ...`", run: userFace(), expect: all},
		{name: "webapp", desc: "`--profile webapp`", run: userFace("--profile", "webapp"), expect: all},
		{name: "database", desc: "`--profile database`", run: userFace("--profile", "database"), expect: all},
		// dev's rootfs is writable by design: a fill of / is its threat
		// model's accepted risk (mistakes, not abuse), so it is recorded.
		{name: "dev", desc: "`--profile dev`", run: userFace("--profile", "dev"), expect: except(map[string]string{"diskfill_root": "record"})},
		// netadmin grants NET_RAW in its own network namespace: raw and
		// packet sockets (capture, crafted frames) are its purpose and
		// must work there; its seccomp adds AF_PACKET and nothing else.
		{name: "netadmin", desc: "`--profile netadmin`", run: userFace("--profile", "netadmin"),
			expect: except(map[string]string{"raw": "allowed", "packet": "allowed", "caps": "allowed"})},
		// Learned from the suite itself under default (the setuid
		// attempt merged in as uid 1000): whatever the recording saw, the
		// learned profile may never let more through than its base.
		{name: "learned", desc: "`bulwark learn` from this script under default, then `run --profile learned.json`", run: learnedFace, expect: all},
		// Run by a user who is not root (tests/rootless_test.go): the
		// same defaults, but cgroup v1 cannot be delegated to a user, so
		// nothing caps the fork and memory bombs there (recorded; the
		// pid namespace still ends them with the container).
		{name: "rootless", desc: "`bulwark run ROOTFS -- ...` by a user who is not root", run: rootlessFace, expect: rootlessExpect()},
		{name: "strict", desc: "`--profile strict` (one container per attempt: its seccomp refuses fork)", run: perAttempt("--profile", "strict"), expect: all},
		{name: "rawdisk", desc: "`--profile rawdisk --device " + grantedDisk + "` (another loop device)", run: userFace("--profile", "rawdisk", "--device", grantedDisk), expect: all},
		gpu,
		// runc's own default: record, asserting only what runc's config
		// documents (no CAP_SYS_ADMIN, read-only /proc/sys, masked kcore,
		// devices cgroup).
		{name: "runc", desc: "`runc spec` under runc " + runcVersion(), run: runcDefault, expect: map[string]string{
			"mount-tmpfs": "blocked", "mount-bind": "blocked", "blkdev": "blocked", "core_pattern": "blocked",
			"sysrq": "blocked", "drop_caches": "blocked", "kcore": "blocked"}},
		// Docker's default: NET_RAW and no pids limit are what the floor
		// exists to fix, so they are asserted allowed here and blocked
		// with --harden.
		{name: "docker", desc: "Docker-shaped config (14 caps, docker-default.json seccomp, no userns) under bulwark", run: ociBundle(nil, docker),
			expect: map[string]string{"mount-tmpfs": "blocked", "mount-bind": "blocked", "keyctl": "blocked", "bpf": "blocked",
				"open_by_handle_at": "blocked", "blkdev": "blocked", "core_pattern": "blocked", "raw": "allowed", "packet": "allowed",
				"forkbomb": "allowed", "setuid": "allowed", "dev_exec": "blocked", "ptys": "blocked", "hostroot": "allowed"}},
		// The floor's promise: everything default blocks, except what
		// a writable rootfs must allow (asserted below, after the run).
		{name: "docker+harden", desc: "the same under `bulwark --harden`, which adds a user namespace from the pool", run: ociBundle(harden, docker),
			expect: except(map[string]string{"diskfill_root": "record", "diskfill_tmp": "record"})},
		// Issue 11's holes 1-3 in one config: `docker run --cap-add` of
		// every dangerous capability (with the seccomp rules dockerd then
		// writes), no readonlyPaths or maskedPaths, /sys read-write, and
		// annotated to keep the host's users, so that the user namespace
		// does not hide what the floor itself must refuse.
		{name: "docker+caps+harden", desc: "Docker-shaped config with `--cap-add` DAC_READ_SEARCH, SYS_ADMIN, SYS_PTRACE, SYS_MODULE, SYS_RAWIO, NET_ADMIN, SYSLOG, BPF, PERFMON (and dockerd's seccomp rules for them), no readonlyPaths or maskedPaths, /sys read-write, `run.bulwark.allow: host-users`, under `bulwark --harden`", run: ociBundle(harden, dockerCapsHostUsers(docker)),
			expect: except(map[string]string{"diskfill_root": "record", "diskfill_tmp": "record", "hostroot": "allowed"})},
	}
	if _, err := os.Stat(runcPath); err == nil {
		// The floor over the config runc itself would run (the runc
		// column), inserted after it.
		rc := escapeColumn{name: "runc+harden", desc: "the same `runc spec` config under `bulwark --harden`", run: ociBundle(harden, runcShaped(t)), expect: all}
		for i, c := range cols {
			if c.name == "runc" {
				cols = append(cols[:i+1], append([]escapeColumn{rc}, cols[i+1:]...)...)
				break
			}
		}
	}

	cells := map[string]map[string]string{}
	for _, c := range cols {
		cells[c.name] = map[string]string{}
		if c.skip != "" {
			t.Logf("column %s skipped: %s", c.name, c.skip)
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			got := c.run(t, e, as)
			for _, a := range as {
				tok, ok := got[a.key]
				judge := a.judge
				if judge == nil {
					judge = judgeOK
				}
				var allowed, valid bool
				detail := "no result"
				if ok {
					allowed, detail, valid = judge(tok)
				}
				cell := "blocked (" + detail + ")"
				if strings.HasPrefix(tok, "TIMEOUT") {
					// Neither blocked nor allowed: the attempt did not
					// finish in time on this host.
					cells[c.name][a.key] = "timeout (" + strings.ToLower(strings.TrimPrefix(tok, "TIMEOUT ")) + ")"
					if want := c.expectFor(a); want != "" {
						t.Errorf("%s: %s: want %s, got a timeout (%s)", c.name, a.name, want, tok)
					}
					continue
				}
				if _, err := os.Stat(a.needs); a.needs != "" && err != nil {
					// Nothing to attack: the result says nothing about
					// the configuration.
					cells[c.name][a.key] = "n/a (" + detail + ")"
					continue
				}
				if allowed {
					cell = "**allowed** (" + detail + ")"
				} else if !valid {
					cell = "? (" + detail + ")"
				}
				cells[c.name][a.key] = cell
				want := c.expectFor(a)
				switch {
				case want == "blocked" && (allowed || !valid):
					t.Errorf("%s: %s: want blocked, got %q", c.name, a.name, tok)
				case want == "allowed" && !allowed:
					t.Errorf("%s: %s: want allowed (the profile's purpose), got %q", c.name, a.name, tok)
				}
			}
		})
	}

	// Issue 11's "done when": a Docker-shaped config under the floor
	// blocks everything the default blocks, except what its writable
	// rootfs must allow (escapeFloorAllows); Docker's capabilities inside
	// the user namespace flip no row.
	if cells["default"] != nil && cells["docker+harden"] != nil {
		for _, a := range as {
			d, h := cells["default"][a.key], cells["docker+harden"][a.key]
			if !strings.HasPrefix(d, "blocked") || strings.HasPrefix(h, "blocked") || strings.HasPrefix(h, "n/a") || h == "" {
				continue
			}
			if _, ok := escapeFloorAllows[a.key]; !ok {
				t.Errorf("%s: blocked by default (%s) but not under the floor (%s), and not something a writable rootfs or Docker's capabilities in the user namespace must allow", a.name, d, h)
			}
		}
	}

	doc := escapeDoc(cols, as, cells)
	t.Log("\n" + doc)
	if os.Getenv("BULWARK_ESCAPE_WRITE") == "1" {
		if err := os.WriteFile("../docs/escape.md", []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func runcVersion() string {
	out, err := exec.Command(runcPath, "--version").Output()
	if err != nil {
		return ""
	}
	f := strings.Fields(strings.SplitN(string(out), "\n", 2)[0])
	return f[len(f)-1]
}

func escapeDoc(cols []escapeColumn, as []escapeAttempt, cells map[string]map[string]string) string {
	var b strings.Builder
	b.WriteString(`# Escape suite

Generated by ` + "`BULWARK_ESCAPE_WRITE=1 go test ./tests -run TestEscapeSuite`" + ` (tests/escape_test.go); do not edit by hand.

From inside a container, each known breakout is attempted and recorded as blocked or allowed, with the
errno or the payload's summary in brackets. One shell script per configuration runs every attempt
(tests/payloads: ` + "`syscall NAME ARGS`" + ` does one raw call and prints OK or the errno's name); the setuid attempt
runs in a second container as uid 1000. Every attempt is harmless if it succeeds: host-global files are
opened for writing and closed, never written; the "host disk" is a loop device on a 1 MiB file the test
creates and does not mention to the container (the script knows its major:minor, as an attacker scanning
/sys/dev/block would); fork bomb, memory bomb and disk fill stop at fixed counts. Each attempt runs in a
process group of its own under a limit of ` + strconv.Itoa(escapeAttemptSecs) + ` s (tests/payloads/deadline), sized for a loaded two-core host;
one that outlasts it is reported as "timeout" in its cell and the next attempt runs, and a configuration
whose whole script outlasts ` + escapeColumnTimeout.String() + ` keeps the rows it finished.

The default column must be blocked in every row (the test fails otherwise); the profiles must block every
row except what their threat model grants (netadmin must be able to open raw sockets in its own network
namespace, and packet sockets there, with NET_ADMIN and NET_RAW; dev's writable rootfs is recorded);
runc+harden, runc's own config under the floor, must block every row; docker+harden every row except
what a writable rootfs must allow (see "What the floor lets through" below, which the test checks against
the default column); docker+caps+harden the same, with container root left host root by its annotation.
runc's and Docker's columns assert only what those configs document (Docker's: NET_RAW, no pids limit
and no no_new_privs, all three blocked under --harden) and record the rest. "n/a" marks an attempt on
something this kernel does not have; "skipped" a configuration this host cannot run.

`)
	fmt.Fprintf(&b, "Host: kernel %s", kernelRelease())
	for _, s := range []string{"kernel/perf_event_paranoid", "kernel/kptr_restrict", "kernel/dmesg_restrict", "kernel/unprivileged_bpf_disabled", "vm/unprivileged_userfaultfd", "kernel/io_uring_disabled", "dev/tty/legacy_tiocsti"} {
		v, err := os.ReadFile("/proc/sys/" + s)
		if err == nil {
			fmt.Fprintf(&b, ", %s=%s", filepath.Base(s), strings.TrimSpace(string(v)))
		}
	}
	b.WriteString(". Results that depend on these (perf, bpf, userfaultfd, syslog under configs without a seccomp rule) may differ on other hosts.\n\n")

	b.WriteString("Columns:\n\n")
	for _, c := range cols {
		fmt.Fprintf(&b, "- **%s**: %s", c.name, c.desc)
		if c.skip != "" {
			fmt.Fprintf(&b, " (skipped: %s)", c.skip)
		}
		b.WriteString("\n")
	}
	b.WriteString("\n| attempt |")
	for _, c := range cols {
		fmt.Fprintf(&b, " %s |", c.name)
	}
	b.WriteString("\n|---|")
	for range cols {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, a := range as {
		fmt.Fprintf(&b, "| %s |", a.name)
		for _, c := range cols {
			cell := cells[c.name][a.key]
			if c.skip != "" {
				cell = "skipped"
			}
			fmt.Fprintf(&b, " %s |", cell)
		}
		b.WriteString("\n")
	}
	b.WriteString("\n## The attempts and what blocks them in the default\n\nEach line: what blocks it in the default (the errno it returns), the attack, and notes on the other columns.\n\n")
	for _, a := range as {
		fmt.Fprintf(&b, "- **%s** (`%s`): %s.\n", a.name, a.sh, a.why)
	}
	b.WriteString("\n## What the floor lets through that the default blocks\n\n")
	b.WriteString("Every row blocked in the default column is blocked in docker+harden too (the test fails otherwise), except these,\n")
	b.WriteString("which a Docker-shaped config's writable rootfs must allow:\n\n")
	keys := make([]string, 0, len(escapeFloorAllows))
	for k := range escapeFloorAllows {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		name := k
		for _, a := range as {
			if a.key == k {
				name = a.name
			}
		}
		fmt.Fprintf(&b, "- **%s**: %s.\n", name, escapeFloorAllows[k])
	}
	b.WriteString(escapeFloorCaps)
	b.WriteString(escapeHoles)
	b.WriteString(escapeOpen)
	b.WriteString(escapeWings)
	return b.String()
}

// escapeFloorCaps names what Docker's capabilities give container root
// under the floor's user namespace, and what its rootfs keeps locked.
const escapeFloorCaps = `
Docker's own capabilities inside the user namespace flip no row: CHOWN, DAC_OVERRIDE, FOWNER, FSETID, SETUID,
SETGID, SETPCAP, SETFCAP, KILL, NET_BIND_SERVICE, SYS_CHROOT and AUDIT_WRITE (NET_RAW and MKNOD are dropped by the
floor) are the namespace's, so container root may change the owners, modes and file capabilities of the
container's own files, switch among the container's own ids (within the 65536 the pool maps), signal the
container's own processes, bind ports below 1024 in its network namespace and chroot inside its rootfs; none of
them reaches a host file, process or kernel setting, since the host's ids and objects are not the namespace's.

The floor's user namespace comes with an idmapped rootfs, which the runtime mounts (an idmapped mount needs
privilege on the host) and the init attaches. Container root holding SYS_ADMIN in that namespace (a config that
asks for it, let through the floor by run.bulwark.allow) may clear a mount's read-only, nosuid, nodev or noexec
flag unless the kernel locked it, which it does on the mounts a mount namespace owned by a less privileged user
namespace copies from the host. So the runtime clones the rootfs on a thread inside the container's mount
namespace, where those flags are already locked, as it does for bind sources: a rootfs, or a mount under it,
that the host made read-only, nosuid, nodev or noexec stays so (TestHostMountFlagsOfTheRootfsStayLockedInAUserNamespace:
mount_setattr clearing each flag gets EPERM and nothing reaches the host directory). A clone taken from the
host's own table carried no locks, and container root remounted a read-only host rootfs writable and wrote
through it. An engine's overlay rootfs is mounted again over idmapped layers, a new mount the kernel does not
lock: the host overlay's read-only goes on the new superblock, which only the host may make writable, and its
nosuid, nodev and noexec are plain mount attributes. What the config itself asks for (root.readonly, the
floor's nosuid and nodev) is not the host's, and the kernel does not lock it, as in runc.
`

// escapeHoles maps issue 11's holes to where each is attacked.
const escapeHoles = `
## Issue 11's holes and where each is attacked

| hole | attacked by | under the floor |
|---|---|---|
| 1. floor kept CAP_DAC_READ_SEARCH (shocker) | rows "open_by_handle_at (shocker)" and "hold a capability Docker does not grant" in docker+caps+harden; TestHardenBlocksShockerWithDACReadSearchAndDockersProfile | blocked: only Docker's default capabilities kept, open_by_handle_at denied whatever the profile says |
| 1. (the same config's namespaces) | row "unshare(CLONE_NEWUSER) to regain capabilities" in docker+caps+harden | blocked: unshare, setns and clone's namespace flags denied unless SYS_ADMIN is annotated |
| 2. /proc/sys writable without a user namespace | rows core_pattern, drop_caches, sysrq-trigger in docker+caps+harden (no readonlyPaths, host users); TestHardenMakesProcSysReadOnlyWhenTheConfigDoesNot | blocked (EROFS) |
| 3. /sys read-write when asked | row "open /sys/kernel/mm/transparent_hugepage/enabled for write" in docker+caps+harden (/sys rw); TestHardenMountsSysReadOnlyUnlessAnnotated | blocked (EROFS) |
| 4. seccomp cache poisoning | from the host: TestSeccompCacheEntryReplacedByAnAllowAllProgramIsNotLoaded, TestUnsafeRootDirectoryIsRefused | refused |
| 5. OCI maps overlapping a live container's range | from the host: TestOCIMapsOverlappingALiveContainersRangeAreRefusedUnderTheFloor | refused |
| 6. /proc/PID/mem between processes of one container | rows "open a sibling's /proc/PID/mem for writing" and "process_vm_writev to a sibling"; tests/procmem_test.go | closed in every Landlock column: by Landlock where the rootfs is read-only (EACCES), by a read-only procfs mount where it is writable (EROFS); process_vm_writev by seccomp (below) |
| 7. interrupt counters | rows "read interrupt counters (/proc/softirqs, /sys/kernel/irq)" and "... from /proc/stat's intr line"; TestInterruptCountersAreMaskedEverywhereTheyLeak | masked; /proc/stat's intr line stays readable (ps, top) |
| 8. pty exhaustion | row "open 1000 ptys"; TestDevptsMaxLimitsPtysPerContainer | capped |
| 9. writable, executable /dev | row "drop a binary in /dev and run it"; TestDevIsReadOnlyAndNoexecAfterSetup | blocked |
| 10. install follows a planted symlink | from the host: pkg/install TestApplyDoesNotFollowAPlantedSymlinkAtTheTempName | refused |
| user namespace for engine containers | row "container root is host root" in docker+harden; tests/flooruserns_test.go, tests/engines floor_userns_test.go (Docker, Podman, containerd) | mapped to a pool range |
`

// escapeOpen explains the /proc/PID/mem rows: what closes them in which
// configuration, what stays open, and what else was tried.
const escapeOpen = `
## /proc/PID/mem between processes of one container

Opening another process's /proc/PID/mem for writing takes only the same uid and a dumpable target (ptrace's
attach-mode check), whatever seccomp says about the ptrace call itself. Measured on this host
(tests/procmem_test.go and the rows above):

- A process started by bulwark exec and the container's own processes cannot open each other's mem in every
  configuration with Landlock (the person face's and the floor's): each bulwark exec gets a Landlock domain of
  its own, and Landlock refuses ptrace access, which opening /proc/PID/mem, process_vm_readv/writev and
  pidfd_getfd ask for, to a task outside the caller's domain and the domains nested in it (EACCES; EROFS first
  where procfs is read-only, below). Reading another process's /proc/PID/stat (ps, top) works both ways.
- Between two processes of the payload, which share one domain and one uid, Landlock's ptrace rule allows it, so
  the payload gets no write access beneath /proc (pkg/landlock): where the rootfs is read-only (the default and
  every profile but dev) Landlock refuses opening a sibling's mem for writing (EACCES). Landlock's rights add up
  along a path, and no rule can take a right away beneath a directory that grants it: with a writable rootfs
  (dev, a Docker-shaped config under the floor) write access beneath / includes /proc, so there the init makes
  the container's procfs mount read-only after setup (pkg/containerinit, rootfs.ReadOnlyProc), and the kernel
  asks the mount for write access before it runs the ptrace check: the open fails with EROFS. The remount is not
  recursive (readonlyPaths and maskedPaths beneath /proc keep theirs).
- Either way the process's own /proc files are refused too (its mem, oom_score_adj, attr, the comm of another
  thread, clear_refs): /proc/self/mem is in the same thread group and the kernel's ptrace check lets it through,
  but the open never gets that far. /proc/self/fd/N still opens for writing (the magic link leads to the file's
  own mount, and Landlock checks the file the fd names); the runtime sets oom_score_adj before the payload
  starts. A payload that must write its /proc files is annotated run.bulwark.landlock-proc: rw: then procfs stays
  writable and its processes can write each other's memory again. Opening a sibling's mem for reading stays
  allowed (same uid, one domain); ps lists and reads the siblings in every configuration.
- Which real programs this stops was measured with strace -f on the host (every openat of a /proc file for
  writing), running in a chroot of the Debian test rootfs the workflows that tests/engines realsoftware_test.go
  runs through Docker, Podman and containerd under the floor: PostgreSQL 15 (initdb, postmaster, backends, a checkpoint, shutdown), nginx (master and
  workers), redis-server (with a forking BGSAVE) and python3's http.server write no /proc file, and all run
  under the floor. PostgreSQL with PG_OOM_ADJUST_FILE=/proc/self/oom_score_adj (its documentation's advice
  against Linux's OOM killer) opens it in every forked child; the floor refuses it (EROFS), postgres ignores
  that by design, and the children keep the postmaster's score, which the engine set. What does fail: a process
  setting its own oom_score_adj, coredump_filter or timerslack_ns, and glibc's pthread_setname_np naming
  another thread (/proc/self/task/TID/comm; a thread naming itself goes through prctl and works); programs
  known to do so are not in the test rootfs (Chrome's zygote, systemd as pid 1). Through Podman, which passes
  annotations, --annotation run.bulwark.landlock-proc=rw lets them (TestFloorRunsRealSoftwareUnderPodman/own
  /proc files), at the cost above; Docker 20.10 has no --annotation.
- process_vm_writev (and readv, pidfd_getfd, ptrace, kcmp, process_madvise) is refused by seccomp in the default,
  the profiles and under the floor, which takes it out of an engine's profile (row "process_vm_writev to a
  sibling").
- Configurations without Landlock (runc's and Docker's own configs under Bulwark without --harden) keep the
  kernel's rule: any process of the same uid writes a sibling's memory, as under runc.

What else was tried or considered on this kernel, and why it is not used:

- Yama with ptrace_scope 1 or more refuses attach-mode access to a process that is not a descendant. Yama is built
  into this kernel but not in its active LSM list (lockdown,capability,landlock,bpf), which only the host's boot
  command line (lsm=) changes; bulwark check reports a missing or zero ptrace_scope.
- The BPF LSM is in the active list (with lockdown in integrity mode), but this kernel refuses every program
  attached through a BPF trampoline: loading an LSM program (lsm/ptrace_access_check and lsm/file_open, as
  BPF_LSM_MAC and BPF_LSM_CGROUP) or a fentry, fexit or fmod_ret program on security_ptrace_access_check fails with
  EPERM for root holding every capability in the initial user namespace, with an empty verifier log, while
  tp_btf and kprobe-type programs load. The function tracer is refused the same way (writing "function" to
  tracefs's current_tracer, reading available_filter_functions: EPERM, and lockdown logs nothing), so the
  trampolines BPF LSM programs need are not available here. A ptrace_access_check program refusing attach mode
  to the container's uids would also let a process write its own /proc/self/mem (the kernel returns before the
  LSM hook for its own thread group) and cover a payload with run.bulwark.landlock-proc: rw; it is not shipped,
  since no host Bulwark is tested on can load it. (Such a program would key on the caller's host uid: the userns
  pool's ranges start at 100000 + k*65536, so the key is (uid - 100000) / 65536, not uid / 65536, which would
  straddle two containers; a container without a user namespace runs as host uids no key tells apart.)
- Landlock (ABI 7 here) has no scope for ptrace inside one domain (its scoping covers signals and abstract unix
  sockets), and a domain per process would have to be entered by the payload's own processes. Splitting the
  rootfs's write rule into one per top-level directory, to leave /proc out, would refuse writes to every file
  and directory the payload creates directly in / later. seccomp cannot filter open by path; PR_SET_DUMPABLE 0
  is undone by execve for any readable binary; the boot parameter proc_mem.force_override=never (not set here)
  only stops forced writes to read-only mappings, not writes to the stack or heap; and no procfs mount option
  removes the mem files.

Bulwark's own processes that enter a container (the init during setup, bulwark exec before its execve) are
non-dumpable until they exec the payload (internal/nsenter, as runc since CVE-2016-9962), so no container process
opens their mem, fd or exe at any point.
`

// escapeWings lists the attacks on the wings around the namespace core
// (images and the store, VM isolation, networks, the person face), each
// with the test that makes it and what it found.
const escapeWings = `
## The wings: images, VMs, networks, other users

Attacks on what was built around the namespace core, each by the party that wing must hold off (another user
of the host, a hostile image, a guest that owns its kernel, a neighbouring container). "fixed" names what the
attack did before the fix; its test now asserts the refusal.

| attack | by | result | test |
|---|---|---|---|
| read and plant files in a running container's image snapshot (data-root/containers/ID-HASH/rootfs, found from the id in ps), run its set-user-id files as the container root's host uid (Docker's CVE-2021-41091) | another local user | fixed: the snapshot directory was 0711, so anyone passed through to the overlay; it is now 0710 root:(the container root's host gid), and the other user gets EACCES | tests/wings_attack_test.go TestAnotherUserCannotReachARunningContainersSnapshot |
| open the raw disk (or any device) given to a user-namespaced container with --device through its node under /dev/bulwark/HASH (HASH from --root and the id in ps), after the container's root chmods the node 0666 through its bind (it owns the inode) | another local user, with the container's root | fixed: the node directory was 0711, so nobody wrote the test's loop device through it; it is now 0710 root:(the container root's host gid), and the other user gets EACCES | tests/wings_attack_test.go TestAnotherUserCannotOpenAContainersPrivateDeviceNode |
| plant a set-user-id or set-group-id binary where the container writes through an idmapped mount (a --writable or dev-profile ROOTFS, whose files the idmap keeps owned by host root on disk; an -v volume, owned by its directory's owner), for a local user to run on the host | the container's root, with another local user | fixed: the file landed on the host as root's (or the volume owner's) with its set-id bits, and a local user who could reach the path ran it as that owner (nobody got euid 0 from a --writable rootfs, euid 1234 from a volume of uid 1234; the rootfs path must be traversable by the container's unprivileged root, so it usually is by everyone). A container writing through such a mount now gets EPERM for set-id modes from chmod, fchmod, fchmodat(2), open, openat, creat and mknod, and ENOSYS for openat2 (its mode is in memory); no_new_privs already made the bits inert inside. Image snapshots (0710) and root-owned volumes (not idmapped) never needed it | tests/wings_attack_test.go TestContainerRootCannotPlantSetIDFilesThroughAnIdmappedMount; pkg/seccomp/profiles TestWithoutSetIDFilesRefusesOnlySetIDModes |
| read a floor container's rootfs and volumes, and plant files in its world-writable directories, through /run/bulwark-floor/HASH (HASH from the engine's state directory and the id in ps), around the engine's own 0700 directories | another local user | fixed: the directory was 0711 and held binds of the rootfs and volumes; it is now 0710 root:(the container root's host gid), EACCES for the other user | tests/wings_attack_test.go TestAnotherUserCannotReachAFloorContainersIdmappedRootfs |
| the same through a VM container's /run/bulwark-floor/vm-HASH (the payload's rootfs as the guest shares it, the exec socket's directory) | another local user | fixed the same way | tests/vm TestOCIVMUserNamespace |
| write to the guest's serial console without end, to fill the host's disk (QEMU wrote it to console.log in the run directory, on the state root's filesystem, outside the container's limits) | a guest that owns its kernel | fixed: 2 MiB written by the guest made a 2 MiB console.log; QEMU now writes the console to a socket whose last 64 KiB the host keeps in memory (for the error report of a guest that dies), and QEMU's stderr is bounded the same way | tests/vm TestOCIVMGuestConsoleFloodStaysOffTheHostDisk; pkg/vm TestTailKeepsOnlyTheEnd |
| a failure message (KindFail) carrying terminal escapes, or a megabyte of text, into the error the runtime prints (bulwark run --isolation vm, bulwark exec) | a guest that owns its kernel | fixed: the guest's bytes were printed raw and whole (the test's OSC retitle and clear-screen reached the error as they were); they are now cut at 1 KiB and control bytes shown as \\xNN, as ps already did for commands | pkg/vm TestHostileGuestFramesEndTheRunBounded (also: a length past MaxFrame, ready twice, a host-bound kind, a mark with escapes, a short exit status, half a frame then silence: each ends the run with an error naming it, within the boot's deadline); FuzzGuestFrames over every host-side parser |
| replace the exec socket in the run directory with a symlink to a host socket (docker.sock), so that bulwark exec and ps, host root, connect there and hand it the person's process and stdin | the container's root (QEMU's monitor, after a QEMU escape) | fixed: connect followed the symlink (the test's host socket got the connection); the name is now opened O_PATH|O_NOFOLLOW, must be a socket, and is connected to through that descriptor: "not a socket" | pkg/vmcontainer TestExecDoesNotFollowASymlinkAtTheSocket |
| a guest's frames out of order or malformed: ready twice, a host-bound kind (C), a length past MaxFrame, half a frame and silence, a short exit status, a boot mark with escapes | a guest that owns its kernel | held: each ends the run with an error naming the frame (half a frame: the boot's deadline) | pkg/vm TestHostileGuestFramesEndTheRunBounded |
| the process list (ps) with escapes in a command, or never answering | a guest that owns its kernel | held: commands shown through vmproto.Printable, the request bounded at 30 s | pkg/vmcontainer TestSafeCommandDefusesTerminalControls |
| spoof the neighbours on a shared bridge from a VM guest's NIC: frames with another source MAC, IPv4 from a neighbour's or the gateway's address, ARP naming another sender address or MAC (gratuitous ARP for the gateway), IPv6 from another address, IPv6 router advertisements and redirects, a neighbour advertisement for another's address, VLAN-tagged frames, an ethertype of its own, and a forged packet addressed to the tap itself for the namespace to forward | a guest that owns its kernel | fixed: pkg/vmnet redirected every frame the guest's NIC sent, unchanged, out of the container's veth (each forged frame of the test arrived behind it; a namespace container cannot send them, having no raw or packet socket); the tap's ingress now redirects only frames with the NIC's MAC and, for IPv4, ARP and IPv6, one of its addresses as source (ARP's sender, an advertisement's target; IPv6 also link-local and ::, carrying TCP, UDP or ICMPv6 but router advertisements and redirects); the rest ends on the tap's own stack, which has IPv6 disabled, strict reverse path filtering, no forwarding and no ARP answers | pkg/vmnet TestBridgeCarriesOnlyTheGuestsOwnFrames |
| rmi '../x', '/etc/passwd', 'sha256:../../x', a name with escapes; run --name '../x', '..', 'a/b', a name with escapes | a person's own typing, or a script fed hostile names | held: no such image (names are looked up, never joined into store paths), invalid container ID naming the byte | by hand (bulwark rmi, bulwark run --name) |

Left open by that fix: the guest may use any link-local (fe80::/64) source and advertise any link-local
target, so it can still answer for a neighbour's link-local address (not its global ones); IPv6 with extension
headers (MLD reports) is not carried; and a broadcast with a forged source reaches the namespace's own sockets
when the namespace's reverse path filter is loose (conf/all/rp_filter 2). Docker is no better on docker0 for its
own containers (its default capabilities include NET_RAW). A guard for every member of a bulwark bridge (CNI's
bridge macspoofchk plus nftables rules per lease on the host's side of the veth) is not built.
`

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "?"
	}
	return unix.ByteSliceToString(u.Release[:])
}
