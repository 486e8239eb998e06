package hostcheck

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/bulwark-sec/bulwark/pkg/finding"
)

// Options say where to look.
type Options struct {
	// Root is the directory /proc, /sys, /dev and /etc are read under:
	// "/" for this host, a test tree otherwise.
	Root string
	// StateDir is Bulwark's --root (its container state), as the host
	// sees it; it is looked up under Root.
	StateDir string
	// PolicyPath is the host policy file (/etc/bulwark/policy.json),
	// looked up under Root.
	PolicyPath string
	// LandlockABI probes the running kernel; nil when Root is not "/".
	LandlockABI func() int
}

// Result is what Check found.
type Result struct {
	Facts    map[string]string
	Findings []finding.Finding
}

type checker struct {
	o     Options
	facts map[string]string
	fs    []finding.Finding
	// floorOff: the policy file does not switch the floor on, so an
	// engine must pass --harden itself.
	floorOff bool
}

// Check judges the host. It fails only when Root itself cannot be read;
// a file that is missing under it is a finding or a fact, not an error.
func Check(o Options) (*Result, error) {
	if o.Root == "" {
		o.Root = "/"
	}
	fi, err := os.Stat(o.Root)
	if err != nil {
		return nil, fmt.Errorf("--root-dir %s: %w", o.Root, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("--root-dir %s: not a directory", o.Root)
	}
	c := &checker{o: o, facts: map[string]string{}}
	c.kernel()
	c.sysctls()
	c.lsms()
	c.features()
	c.bulwarkState()
	c.engines()
	return &Result{Facts: c.facts, Findings: c.fs}, nil
}

func (c *checker) path(p string) string { return filepath.Join(c.o.Root, p) }

// read returns a file's content trimmed; ok is false when it is absent.
func (c *checker) read(p string) (string, bool) {
	b, err := os.ReadFile(c.path(p))
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}

func (c *checker) add(id string, sev finding.Severity, where, msg, reason, fix string) {
	c.fs = append(c.fs, finding.Finding{ID: id, Severity: sev, Where: where, Message: msg, Reason: reason, Fix: fix})
}

func (c *checker) kernel() {
	rel, ok := c.read("/proc/sys/kernel/osrelease")
	if !ok {
		c.add("kernel-unknown", finding.Medium, "/proc/sys/kernel/osrelease", "cannot read the kernel release",
			"without the version, the known container escapes below cannot be ruled out", "mount /proc")
		return
	}
	c.facts["kernel"] = rel
	k, err := ParseVersion(rel)
	if err != nil {
		c.add("kernel-unknown", finding.Medium, "/proc/sys/kernel/osrelease", err.Error(),
			"without the version, the known container escapes below cannot be ruled out", "")
		return
	}
	if pv, ok := c.read("/proc/version"); ok {
		if dv, ok := distroVersion(pv); ok && dv.Compare(k) > 0 {
			c.facts["kernel upstream version"] = dv.String() + " (from /proc/version)"
			k = dv
		}
	}
	for _, cve := range KernelCVEs {
		if !cve.Affected(k) {
			continue
		}
		fix := "update the kernel to " + cve.FixedIn(k) + " or later"
		if cve.Mitigation != "" {
			fix += "; until then: " + cve.Mitigation
		}
		backport := "; a distribution kernel may carry the fix under an older version number: check its advisory for " + cve.ID
		c.add("kernel-"+strings.ToLower(cve.ID), finding.Critical, "kernel "+k.String(),
			fmt.Sprintf("kernel %s is older than the fix for %s (%s): fixed in %s", k, cve.ID, cve.Name, cve.FixedIn(k)),
			cve.Impact+"; "+`"keep your kernel up to date" (the talk); source: `+cve.Source+backport,
			fix)
	}
}

// sysctl is one kernel hardening setting.
type sysctl struct {
	name   string
	good   func(int) bool
	want   string
	sev    finding.Severity
	reason string
	// absent is what a missing file means ("" to say nothing).
	absent string
}

var sysctls = []sysctl{
	{"kernel.kptr_restrict", func(n int) bool { return n >= 1 }, "1 or 2", finding.Medium,
		"kernel addresses in /proc/kallsyms and friends defeat KASLR: the first step of most kernel exploits from a container", ""},
	{"kernel.dmesg_restrict", func(n int) bool { return n == 1 }, "1", finding.Low,
		"the kernel log leaks addresses and other containers' activity to any process", ""},
	{"kernel.perf_event_paranoid", func(n int) bool { return n >= 2 }, "2 or more (3 on Debian)", finding.Medium,
		"perf_event_open is a large, often-exploited kernel interface and a side channel", ""},
	{"kernel.unprivileged_bpf_disabled", func(n int) bool { return n >= 1 }, "1 or 2", finding.High,
		"unprivileged eBPF: verifier bugs have been kernel code execution for any process", ""},
	{"kernel.yama.ptrace_scope", func(n int) bool { return n >= 1 }, "1 or more", finding.Low,
		"any process ptraces any other of the same uid: one compromised process reads its siblings' secrets",
		"Yama is not active (not built in, or missing from the lsm= list): ptrace and /proc/PID/mem between processes of one uid are unrestricted on the host; inside a container Bulwark's seccomp and Landlock (with procfs read-only to the payload) refuse them, but not in a container without Landlock (an engine's config without --harden) or annotated run.bulwark.landlock-proc: rw"},
	{"dev.tty.legacy_tiocsti", func(n int) bool { return n == 0 }, "0", finding.Medium,
		"TIOCSTI pushes keystrokes into a terminal: a process in a container given the host's tty types commands into the host shell",
		"kernel before 6.2: TIOCSTI cannot be switched off; Bulwark's seccomp default denies it inside containers"},
	{"kernel.randomize_va_space", func(n int) bool { return n == 2 }, "2", finding.Medium,
		`address space layout randomisation, which the talk lists under "hardening the L in LXC", is off or partial`, ""},
}

func (c *checker) sysctls() {
	for _, s := range sysctls {
		p := "/proc/sys/" + strings.ReplaceAll(s.name, ".", "/")
		val, ok := c.read(p)
		if !ok {
			if s.absent != "" {
				c.add("sysctl-"+s.name, finding.Info, p, s.name+" is not available", s.absent, "")
			}
			continue
		}
		n, err := strconv.Atoi(val)
		if err != nil {
			c.add("sysctl-"+s.name, finding.Low, p, fmt.Sprintf("%s = %q is not a number", s.name, val), s.reason, "")
			continue
		}
		if !s.good(n) {
			c.add("sysctl-"+s.name, s.sev, p, fmt.Sprintf("%s = %d, want %s", s.name, n, s.want), s.reason,
				fmt.Sprintf("sysctl -w %s=%s and persist it in /etc/sysctl.d/", s.name, strings.Fields(s.want)[0]))
		}
	}
	c.userns()
}

// userns: Bulwark (as root) gives containers a user namespace; unprivileged
// users creating their own is what CVE-2022-0185 and CVE-2024-1086 need.
func (c *checker) userns() {
	max, ok := c.read("/proc/sys/user/max_user_namespaces")
	if !ok {
		c.add("userns-unsupported", finding.High, "/proc/sys/user/max_user_namespaces", "the kernel has no user namespaces",
			"root in a container is root on the host: any escape (CVE-2019-5736 rewrote the host's runc) lands as host root",
			"a kernel built with CONFIG_USER_NS")
		return
	}
	c.facts["user namespaces"] = "max " + max
	if max == "0" {
		c.add("userns-disabled", finding.Medium, "/proc/sys/user/max_user_namespaces", "user.max_user_namespaces = 0: no user namespaces at all",
			"Bulwark cannot map container root to an unprivileged host uid; container root is host root",
			"sysctl -w user.max_user_namespaces=15000, and kernel.unprivileged_userns_clone=0 (Debian) to keep them from unprivileged users")
		return
	}
	clone, hasClone := c.read("/proc/sys/kernel/unprivileged_userns_clone")
	restrict, hasRestrict := c.read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
	switch {
	case hasClone && clone == "0", hasRestrict && restrict == "1":
		c.facts["unprivileged user namespaces"] = "restricted"
	default:
		c.facts["unprivileged user namespaces"] = "allowed"
		where := "/proc/sys/user/max_user_namespaces"
		if hasClone {
			where = "/proc/sys/kernel/unprivileged_userns_clone"
		}
		c.add("userns-unprivileged", finding.Low, where,
			"any user can create user namespaces and with them reach CAP_SYS_ADMIN- and CAP_NET_ADMIN-only kernel code",
			"CVE-2022-0185 (fsconfig), CVE-2021-22555 and CVE-2024-1086 (netfilter) were exploited from unprivileged user namespaces; Bulwark's seccomp default denies them inside containers, this is about the host's other processes",
			"sysctl -w kernel.unprivileged_userns_clone=0 (Debian kernels) or kernel.apparmor_restrict_unprivileged_userns=1 (Ubuntu) where no rootless tool needs them")
	}
}

func (c *checker) lsms() {
	list, ok := c.read("/sys/kernel/security/lsm")
	if !ok {
		c.facts["lsm"] = "unknown (securityfs is not mounted at /sys/kernel/security)"
		c.add("lsm-unknown", finding.Info, "/sys/kernel/security/lsm", "cannot list the active LSMs: securityfs is not mounted",
			"AppArmor or SELinux and Landlock are second walls behind seccomp and capabilities", "mount -t securityfs securityfs /sys/kernel/security")
	} else {
		c.facts["lsm"] = list
		names := strings.Split(list, ",")
		has := func(n string) bool {
			for _, x := range names {
				if x == n {
					return true
				}
			}
			return false
		}
		if !has("apparmor") && !has("selinux") && !has("smack") && !has("tomoyo") {
			c.add("lsm-no-mac", finding.Medium, "/sys/kernel/security/lsm", "no mandatory access control LSM (AppArmor, SELinux) is active: "+list,
				"an LSM stops what capabilities and seccomp let through: mounting cgroupfs for CVE-2022-0492 was blocked by AppArmor and SELinux",
				"boot with lsm=...,apparmor (or selinux) and load the engine's profiles")
		}
		if !has("landlock") {
			c.add("lsm-no-landlock", finding.Medium, "/sys/kernel/security/lsm", "Landlock is not active",
				"Bulwark confines each container's file access to its own mounts with Landlock; without it that wall is missing",
				"boot with landlock in lsm= (CONFIG_SECURITY_LANDLOCK, kernel 5.13+)")
		}
	}
	if c.o.LandlockABI != nil {
		abi := c.o.LandlockABI()
		c.facts["landlock ABI"] = strconv.Itoa(abi)
		if abi == 0 && ok && strings.Contains(list, "landlock") {
			c.add("landlock-unusable", finding.Low, "landlock_create_ruleset", "Landlock is listed but the syscall reports no ABI", "Bulwark's Landlock rules are not applied", "")
		}
	} else {
		c.facts["landlock ABI"] = "not probed (--root-dir is not /)"
	}
}

func (c *checker) features() {
	actions, ok := c.read("/proc/sys/kernel/seccomp/actions_avail")
	switch {
	case !ok:
		c.add("seccomp-unsupported", finding.Critical, "/proc/sys/kernel/seccomp/actions_avail", "the kernel has no seccomp filters",
			`"you can always do syscalls in a container" (the talk): without seccomp every buggy syscall is reachable from every container`,
			"a kernel built with CONFIG_SECCOMP_FILTER")
	default:
		c.facts["seccomp actions"] = actions
		if !strings.Contains(actions, "user_notif") {
			c.add("seccomp-no-notify", finding.Info, "/proc/sys/kernel/seccomp/actions_avail", "no SECCOMP_RET_USER_NOTIF (kernel before 5.0)",
				"seccomp notify listeners and learning profiles need it", "update the kernel")
		}
	}
	switch {
	case c.exists("/sys/fs/cgroup/cgroup.controllers"):
		c.facts["cgroup"] = "v2 (unified)"
	case c.exists("/sys/fs/cgroup/unified/cgroup.controllers"):
		c.facts["cgroup"] = "hybrid (v1 controllers, v2 at /sys/fs/cgroup/unified)"
		c.cgroupV1()
	case c.exists("/sys/fs/cgroup"):
		c.facts["cgroup"] = "v1"
		c.cgroupV1()
	default:
		c.facts["cgroup"] = "not mounted"
		c.add("cgroup-missing", finding.High, "/sys/fs/cgroup", "no cgroup filesystem is mounted",
			"without cgroups no memory, pids or device limit holds: one container starves the host", "mount cgroup2 at /sys/fs/cgroup")
	}
	if c.exists("/dev/kvm") {
		c.facts["/dev/kvm"] = "present (hardware virtualisation probe pending: a VM per container is another issue)"
	} else {
		c.facts["/dev/kvm"] = "absent"
	}
}

func (c *checker) cgroupV1() {
	c.add("cgroup-v1", finding.Low, "/sys/fs/cgroup", "the host uses cgroup v1",
		"v1's release_agent runs a program as host root when a container can mount cgroupfs (CVE-2022-0492); v2 has no release_agent and safer delegation",
		"boot with systemd.unified_cgroup_hierarchy=1 (cgroup v2)")
}

func (c *checker) exists(p string) bool {
	_, err := os.Stat(c.path(p))
	return err == nil
}
