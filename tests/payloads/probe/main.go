// probe reports the security posture of the process it runs as: identity,
// user namespace maps, capabilities, no_new_privs, seccomp, Landlock,
// rlimits, open fds, cgroup and mounts. Tests run it inside a container and
// assert on the JSON; the README demo uses -text.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/tests/payloads/internal/payload"
)

// capNames is indexed by capability number (linux/capability.h).
var capNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

type capSet struct {
	Hex   string   `json:"hex"`
	Names []string `json:"names"`
}

type rlimit struct {
	Cur string `json:"cur"`
	Max string `json:"max"`
}

type landlock struct {
	// ABI is the Landlock ABI version, or 0 when Error says why not.
	ABI   int    `json:"abi"`
	Error string `json:"error,omitempty"`
	// Restricted cannot be read back from the kernel for the calling
	// process, so it is always "unknown"; tests check enforcement by
	// attempting the access instead.
	Restricted string `json:"restricted"`
}

type fdInfo struct {
	FD     int    `json:"fd"`
	Target string `json:"target"`
}

type mountEntry struct {
	Mountpoint string `json:"mountpoint"`
	FSType     string `json:"fstype"`
	Source     string `json:"source"`
	Options    string `json:"options"`
}

type report struct {
	UID            int               `json:"uid"`
	GID            int               `json:"gid"`
	EUID           int               `json:"euid"`
	EGID           int               `json:"egid"`
	Groups         []int             `json:"groups"`
	UIDMap         string            `json:"uid_map"`
	GIDMap         string            `json:"gid_map"`
	Caps           map[string]capSet `json:"caps"`
	NoNewPrivs     int               `json:"no_new_privs"`
	Seccomp        int               `json:"seccomp"`
	SeccompFilters int               `json:"seccomp_filters"`
	Hostname       string            `json:"hostname"`
	Cwd            string            `json:"cwd"`
	Rlimits        map[string]rlimit `json:"rlimits"`
	Umask          string            `json:"umask"`
	Env            []string          `json:"env"`
	MountTmpfs     string            `json:"mount_tmpfs"`
	Landlock       landlock          `json:"landlock"`
	FDs            []fdInfo          `json:"fds"`
	Cgroup         []string          `json:"cgroup"`
	Mounts         []mountEntry      `json:"mounts"`
}

func main() {
	text := flag.Bool("text", false, "print a human-readable table")
	flag.Bool("json", true, "print JSON (the default)")
	mountTarget := flag.String("mount-target", "/mnt", "where to attempt the tmpfs mount (empty: skip)")
	flag.Parse()

	r := collect(*mountTarget)
	if *text {
		printText(r)
		return
	}
	payload.PrintJSON(r)
}

func collect(mountTarget string) *report {
	r := &report{
		UID: os.Getuid(), GID: os.Getgid(), EUID: os.Geteuid(), EGID: os.Getegid(),
		Caps: map[string]capSet{}, Rlimits: map[string]rlimit{},
		Env: os.Environ(),
	}
	r.Groups, _ = os.Getgroups()
	if r.Groups == nil {
		r.Groups = []int{}
	}
	r.UIDMap = readTrim("/proc/self/uid_map")
	r.GIDMap = readTrim("/proc/self/gid_map")

	status := procStatus()
	for _, set := range []string{"Inh", "Prm", "Eff", "Bnd", "Amb"} {
		hex := status["Cap"+set]
		r.Caps[set] = capSet{Hex: hex, Names: decodeCaps(hex)}
	}
	r.NoNewPrivs, _ = strconv.Atoi(status["NoNewPrivs"])
	r.Seccomp, _ = strconv.Atoi(status["Seccomp"])
	r.SeccompFilters, _ = strconv.Atoi(status["Seccomp_filters"])
	// Reading Umask from status avoids the set-and-restore race of umask(2).
	r.Umask = status["Umask"]

	r.Hostname, _ = os.Hostname()
	if cwd, err := os.Getwd(); err == nil {
		r.Cwd = cwd
	} else {
		r.Cwd = "error: " + payload.ErrnoName(err)
	}
	for name, res := range map[string]int{"NOFILE": unix.RLIMIT_NOFILE, "NPROC": unix.RLIMIT_NPROC} {
		var l unix.Rlimit
		if err := unix.Getrlimit(res, &l); err != nil {
			r.Rlimits[name] = rlimit{Cur: payload.ErrnoName(err)}
			continue
		}
		r.Rlimits[name] = rlimit{Cur: limitString(l.Cur), Max: limitString(l.Max)}
	}

	r.MountTmpfs = "skipped"
	if mountTarget != "" {
		err := unix.Mount("none", mountTarget, "tmpfs", 0, "")
		if err == nil {
			// The probe observes; it must not leave the mount behind.
			_ = unix.Unmount(mountTarget, unix.MNT_DETACH)
		}
		r.MountTmpfs = payload.ErrnoName(err)
	}

	r.Landlock = probeLandlock()
	r.FDs = listFDs()
	r.Cgroup = readLines("/proc/self/cgroup")
	r.Mounts = readMounts()
	return r
}

func limitString(v uint64) string {
	if v == unix.RLIM_INFINITY {
		return "unlimited"
	}
	return strconv.FormatUint(v, 10)
}

func probeLandlock() landlock {
	l := landlock{Restricted: "unknown"}
	v, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if errno != 0 {
		l.Error = payload.ErrnoName(errno)
		return l
	}
	l.ABI = int(v)
	return l
}

func procStatus() map[string]string {
	m := map[string]string{}
	for _, line := range readLines("/proc/self/status") {
		k, v, ok := strings.Cut(line, ":")
		if ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

func decodeCaps(hex string) []string {
	names := []string{}
	v, err := strconv.ParseUint(hex, 16, 64)
	if err != nil {
		return names
	}
	for i := 0; i < 64; i++ {
		if v&(1<<uint(i)) == 0 {
			continue
		}
		if i < len(capNames) {
			names = append(names, capNames[i])
		} else {
			names = append(names, fmt.Sprintf("CAP_%d", i))
		}
	}
	return names
}

func listFDs() []fdInfo {
	// Read the directory through a raw fd so the fd used for listing is
	// known and can be left out of the report.
	dfd, err := unix.Open("/proc/self/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	defer unix.Close(dfd)
	var fds []fdInfo
	buf := make([]byte, 8192)
	for {
		n, err := unix.Getdents(dfd, buf)
		if err != nil || n <= 0 {
			break
		}
		for off := 0; off < n; {
			d := (*unix.Dirent)(unsafe.Pointer(&buf[off]))
			off += int(d.Reclen)
			name := unix.ByteSliceToString((*[256]byte)(unsafe.Pointer(&d.Name[0]))[:])
			fd, err := strconv.Atoi(name)
			if err != nil || fd == dfd {
				continue
			}
			target, err := os.Readlink(filepath.Join("/proc/self/fd", name))
			if err != nil {
				target = "error: " + payload.ErrnoName(err)
			}
			fds = append(fds, fdInfo{FD: fd, Target: target})
		}
	}
	sort.Slice(fds, func(i, j int) bool { return fds[i].FD < fds[j].FD })
	return fds
}

func readMounts() []mountEntry {
	var ms []mountEntry
	for _, line := range readLines("/proc/self/mountinfo") {
		// id parent major:minor root mountpoint options [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		a, b := strings.Fields(pre), strings.Fields(post)
		if len(a) < 6 || len(b) < 2 {
			continue
		}
		ms = append(ms, mountEntry{Mountpoint: a[4], Options: a[5], FSType: b[0], Source: b[1]})
	}
	return ms
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "error: " + payload.ErrnoName(err)
	}
	return strings.TrimSpace(string(b))
}

func readLines(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var lines []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		lines = append(lines, s.Text())
	}
	return lines
}

func printText(r *report) {
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(w, "%s\t%v\n", k, v) }
	row("uid/gid", fmt.Sprintf("%d/%d (euid %d, egid %d)", r.UID, r.GID, r.EUID, r.EGID))
	row("groups", r.Groups)
	row("uid_map", oneLine(r.UIDMap))
	row("gid_map", oneLine(r.GIDMap))
	for _, set := range []string{"Eff", "Prm", "Inh", "Bnd", "Amb"} {
		c := r.Caps[set]
		names := strings.Join(c.Names, ",")
		if names == "" {
			names = "(none)"
		}
		row("caps "+set, fmt.Sprintf("%s %s", c.Hex, names))
	}
	row("no_new_privs", r.NoNewPrivs)
	row("seccomp", fmt.Sprintf("mode %d, %d filter(s)", r.Seccomp, r.SeccompFilters))
	ll := fmt.Sprintf("ABI %d", r.Landlock.ABI)
	if r.Landlock.Error != "" {
		ll = "unavailable: " + r.Landlock.Error
	}
	row("landlock", ll)
	row("mount tmpfs", r.MountTmpfs)
	row("hostname", r.Hostname)
	row("cwd", r.Cwd)
	row("umask", r.Umask)
	row("rlimit NOFILE", r.Rlimits["NOFILE"].Cur+"/"+r.Rlimits["NOFILE"].Max)
	row("rlimit NPROC", r.Rlimits["NPROC"].Cur+"/"+r.Rlimits["NPROC"].Max)
	for _, fd := range r.FDs {
		row(fmt.Sprintf("fd %d", fd.FD), fd.Target)
	}
	for _, c := range r.Cgroup {
		row("cgroup", c)
	}
	row("mounts", len(r.Mounts))
	w.Flush()
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
