package audit

import (
	"fmt"
	"path"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/pkg/finding"
	"github.com/bulwark-sec/bulwark/pkg/oci"
)

// per holds one text per input format: the field a finding is about and
// the fix are spelt in the vocabulary the person wrote.
type per struct{ oci, docker, kube string }

func (p per) in(f Format) string {
	switch f {
	case FormatDocker:
		return p.docker
	case FormatKubernetes:
		return p.kube
	}
	return p.oci
}

// capRisk is why a capability matters in a container. Capabilities not
// listed are Docker's defaults or harmless in a container.
type capRisk struct {
	sev    finding.Severity
	reason string
}

var capRisks = map[string]capRisk{
	"CAP_SYS_ADMIN":          {finding.Critical, `"CAP_SYS_ADMIN is a big can of worms" (the talk): mount, namespaces, bpf, many ioctls; on cgroup v1 it writes release_agent and runs a program as host root (CVE-2022-0492), and it reaches fsconfig (CVE-2022-0185)`},
	"CAP_SYS_MODULE":         {finding.Critical, "loads kernel modules: arbitrary code in the host kernel"},
	"CAP_SYS_RAWIO":          {finding.Critical, "raw I/O ports, /dev/mem and SG_IO: the host's memory and disks"},
	"CAP_DAC_READ_SEARCH":    {finding.High, `open_by_handle_at opens any inode of the filesystem the rootfs is on, outside the container (the "shocker" escape)`},
	"CAP_SYS_PTRACE":         {finding.High, "ptrace and process_vm_writev on other processes; with a shared pid namespace, code injection into host processes and /proc/PID/root"},
	"CAP_NET_ADMIN":          {finding.High, "configures netfilter and interfaces, which puts nf_tables and x_tables within reach (CVE-2024-1086, CVE-2021-22555)"},
	"CAP_BPF":                {finding.High, "loads eBPF programs: verifier bugs are kernel code execution"},
	"CAP_SYS_BOOT":           {finding.High, "reboots the host and loads a new kernel with kexec_load"},
	"CAP_MAC_ADMIN":          {finding.High, "changes the host's AppArmor/SELinux/Smack policy"},
	"CAP_MAC_OVERRIDE":       {finding.High, "bypasses the host's mandatory access control policy"},
	"CAP_PERFMON":            {finding.Medium, "perf events system-wide: kernel addresses and side channels"},
	"CAP_SYS_TIME":           {finding.Medium, "sets the host's clock (time namespaces do not cover it)"},
	"CAP_SYSLOG":             {finding.Medium, "reads the kernel log and kernel pointers kptr_restrict hides: defeats KASLR for a kernel exploit"},
	"CAP_AUDIT_CONTROL":      {finding.Medium, "changes or disables the host's audit rules"},
	"CAP_CHECKPOINT_RESTORE": {finding.Medium, "sets pids and reads other processes' state through checkpoint interfaces"},
	"CAP_NET_RAW":            {finding.Low, "raw and packet sockets: ARP/DNS spoofing on the container network and AF_PACKET kernel bugs (CVE-2020-14386)"},
	"CAP_MKNOD":              {finding.Low, "creates device nodes; with a permissive devices cgroup, the host's disks"},
	"CAP_SYS_RESOURCE":       {finding.Low, "overrides the resource limits and quotas the host set"},
	"CAP_SYS_NICE":           {finding.Low, `"renice arbitrary processes" (the talk): starves the host's other workloads`},
	"CAP_LINUX_IMMUTABLE":    {finding.Low, "clears immutable and append-only flags"},
	"CAP_IPC_OWNER":          {finding.Low, "bypasses permission checks on System V IPC objects"},
	"CAP_SYS_TTY_CONFIG":     {finding.Low, "vhangup and privileged tty ioctls"},
	"CAP_WAKE_ALARM":         {finding.Low, "wakes the host from suspend"},
	"CAP_BLOCK_SUSPEND":      {finding.Low, "keeps the host from suspending"},
	"CAP_LEASE":              {finding.Info, "file leases on files it does not own"},
}

// allCapsCount is how many capabilities the kernel had before CAP_PERFMON
// (5.8): a set at least this big holds all that matter.
const allCapsCount = 38

// rules judges a subject's spec. The findings are appended to fs.
func configFindings(sub *Subject) []finding.Finding {
	s := sub.Spec
	if s == nil {
		return nil
	}
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	if s.Process == nil {
		s.Process = &specs.Process{}
	}
	var fs []finding.Finding
	add := func(id string, sev finding.Severity, where per, msg, reason string, fix per) {
		fs = append(fs, finding.Finding{ID: id, Severity: sev, Subject: sub.Name, Where: where.in(sub.Format), Message: msg, Reason: reason, Fix: fix.in(sub.Format)})
	}
	userns := oci.CreatesNamespace(s, specs.UserNamespace)
	capSet := effectiveCaps(s.Process.Capabilities)
	devAll := devicesAllowAll(s.Linux.Resources)
	privileged := sub.Privileged || (len(capSet) >= allCapsCount && s.Linux.Seccomp == nil && devAll)

	if privileged {
		add("privileged", finding.Critical,
			per{"process.capabilities, linux.seccomp, linux.resources.devices", "HostConfig.Privileged", "securityContext.privileged"},
			"the container is privileged: every capability, no seccomp, every device, writable /sys",
			`"if you run containers with all capabilities and permissions, you might as well give full sudoer access" (the talk); "with Docker, most people just use -privileged" for a device: mount the host's disk from /dev, or load a module, and the host is yours`,
			per{"drop the privileged shape: give only the capabilities and devices it needs (linux.devices, process.capabilities)", "remove --privileged; use --device for the one device and --cap-add for the one capability it needs", "set securityContext.privileged: false; add the one capability under securityContext.capabilities.add"})
	}
	if !privileged {
		capFindings(sub, capSet, add)
		seccompFindings(s, add)
		if devAll {
			add("devices-all", finding.High, per{"linux.resources.devices", "HostConfig.DeviceCgroupRules", "securityContext.privileged"},
				"the devices cgroup allows every device", `"accessing raw devices (disks, GPU...)": with CAP_MKNOD, mknod the host's disk and read or write it`,
				per{"list only the devices it needs in linux.resources.devices (default deny)", "replace --device-cgroup-rule 'a *:* rwm' with --device for the devices it needs", "remove privileged; use a device plugin for the device"})
		}
		systemPathFindings(s, userns, add)
	}

	if userns && mapsHostRoot(s) {
		add("userns-maps-root", finding.High, per{"linux.uidMappings", "", ""},
			"the user namespace maps host uid 0 into the container",
			"host root is inside the container: the user namespace no longer turns an escape into an unprivileged uid (CVE-2019-5736)",
			per{"map the container's ids to an unused host range (hostID > 0), as bulwark run does", "", ""})
	}
	if !userns {
		sev, extra := finding.Medium, ""
		if sub.HostUsernsUnknown {
			extra = " (unless dockerd runs with --userns-remap, which inspect does not show)"
		}
		add("userns-none", sev, per{"linux.namespaces", "HostConfig.UsernsMode", "spec.hostUsers"},
			"no user namespace: root in the container is root on the host"+extra,
			"any escape lands as host root: CVE-2019-5736 rewrote the host's runc binary because container root was host root; in a user namespace the same exploit gets an unprivileged uid",
			per{`add {"type": "user"} to linux.namespaces with linux.uidMappings/gidMappings (bulwark run does this by default)`, "run dockerd with --userns-remap=default (or --userns per container on podman)", "set spec.hostUsers: false (Kubernetes 1.30+, user namespaces)"})
	}

	for _, ns := range []struct {
		t      specs.LinuxNamespaceType
		id     string
		sev    finding.Severity
		where  per
		reason string
		fix    per
	}{
		{specs.PIDNamespace, "host-pid", finding.High, per{"linux.namespaces (pid)", "HostConfig.PidMode", "spec.hostPID"},
			"sees and signals every host process; with CAP_SYS_PTRACE or as the same uid it reaches their memory and /proc/PID/root, the host's filesystem",
			per{`add {"type": "pid"} to linux.namespaces`, "remove --pid=host", "remove hostPID: true"}},
		{specs.NetworkNamespace, "host-network", finding.High, per{"linux.namespaces (network)", "HostConfig.NetworkMode", "spec.hostNetwork"},
			"binds host ports, reaches services on localhost and abstract unix sockets (containerd-shim, CVE-2020-15257)",
			per{`add {"type": "network"} to linux.namespaces`, "remove --network=host; publish ports with -p", "remove hostNetwork: true; use a Service"}},
		{specs.IPCNamespace, "host-ipc", finding.Medium, per{"linux.namespaces (ipc)", "HostConfig.IpcMode", "spec.hostIPC"},
			"reads and writes the host's System V shared memory and message queues",
			per{`add {"type": "ipc"} to linux.namespaces`, "remove --ipc=host", "remove hostIPC: true"}},
		{specs.UTSNamespace, "host-uts", finding.Low, per{"linux.namespaces (uts)", "HostConfig.UTSMode", "spec.hostNetwork"},
			"with CAP_SYS_ADMIN it renames the host",
			per{`add {"type": "uts"} to linux.namespaces`, "remove --uts=host", "remove hostNetwork: true"}},
		{specs.MountNamespace, "host-mount-ns", finding.Critical, per{"linux.namespaces (mount)", "", ""},
			"every mount the container makes or inherits is the host's", per{`add {"type": "mount"} to linux.namespaces`, "", ""}},
	} {
		if oci.CreatesNamespace(s, ns.t) {
			continue
		}
		if sub.Format == FormatKubernetes && ns.t == specs.UTSNamespace && slices.ContainsFunc(fs, func(f finding.Finding) bool { return f.ID == "host-network" }) {
			continue // hostNetwork gives both; one finding
		}
		add(ns.id, ns.sev, ns.where, fmt.Sprintf("shares the host's %s namespace", ns.t), ns.reason, ns.fix)
	}

	mountFindings(sub, add)
	deviceFindings(sub, add)
	resourceFindings(sub, userns, add)
	return fs
}

// mapsHostRoot reports whether a uid mapping's range covers host uid 0.
func mapsHostRoot(s *specs.Spec) bool {
	for _, m := range s.Linux.UIDMappings {
		if m.HostID == 0 && m.Size > 0 {
			return true
		}
	}
	return false
}

type addFunc func(id string, sev finding.Severity, where per, msg, reason string, fix per)

// effectiveCaps is every capability the process has or can gain: the
// bounding set bounds what a setuid binary or file capability hands out,
// the others are what it holds from the start.
func effectiveCaps(c *specs.LinuxCapabilities) []string {
	if c == nil {
		return nil
	}
	set := map[string]bool{}
	for _, l := range [][]string{c.Bounding, c.Effective, c.Permitted, c.Inheritable, c.Ambient} {
		for _, n := range l {
			set[oci.CapabilityName(n)] = true
		}
	}
	return sortedSet(set)
}

func capFindings(sub *Subject, set []string, add addFunc) {
	where := per{"process.capabilities", "HostConfig.CapAdd", "securityContext.capabilities.add"}
	if len(set) >= allCapsCount {
		add("caps-all", finding.Critical, where, fmt.Sprintf("the container holds all %d capabilities", len(set)),
			`"if you run containers with all capabilities and permissions, you might as well give full sudoer access" (the talk)`,
			per{"list only the capabilities it needs in process.capabilities", "replace --cap-add ALL with the one capability it needs", "replace capabilities.add: [ALL] with the one capability it needs, and drop: [ALL]"})
		return
	}
	for _, c := range set {
		r, ok := capRisks[c]
		if !ok {
			continue
		}
		short := strings.TrimPrefix(c, "CAP_")
		add("cap-"+strings.ReplaceAll(strings.ToLower(short), "_", "-"), r.sev, where,
			c+" is granted", r.reason,
			per{"remove " + c + " from every set in process.capabilities", "remove --cap-add " + short + " (or add --cap-drop " + short + ")", "remove " + short + " from securityContext.capabilities.add, or add it to drop"})
	}
}

func seccompFindings(s *specs.Spec, add addFunc) {
	where := per{"linux.seccomp", "HostConfig.SecurityOpt", "securityContext.seccompProfile"}
	fix := per{"set linux.seccomp (bulwark spec --profile default writes Bulwark's default profile)", "remove --security-opt seccomp=unconfined", "set securityContext.seccompProfile.type: RuntimeDefault (or run the kubelet with seccompDefault)"}
	reason := `"you can always do syscalls in a container; if a syscall is buggy (vmsplice...) game is over" (the talk): every kernel bug reachable by a syscall, such as unshare+fsconfig (CVE-2022-0185) or vmsplice (CVE-2008-0600), is open`
	sc := s.Linux.Seccomp
	switch {
	case sc == nil:
		add("seccomp-none", finding.High, where, "no seccomp filter: every syscall reaches the kernel", reason, fix)
	case sc.DefaultAction == specs.ActAllow && len(sc.Syscalls) == 0:
		add("seccomp-unconfined", finding.High, where, "the seccomp filter allows everything", reason, fix)
	case sc.DefaultAction == specs.ActAllow || sc.DefaultAction == specs.ActLog:
		add("seccomp-denylist", finding.Medium, where, "the seccomp profile allows by default and denies a list",
			"a denylist misses the next syscall with a kernel bug; an allowlist lets only what the workload needs through", fix)
	}
}

// systemPathFindings: /proc and /sys are the host's kernel interfaces; the
// masked and read-only paths are what keeps a container from using them.
func systemPathFindings(s *specs.Spec, userns bool, add addFunc) {
	if !coveredBy("/proc/sys", s.Linux.ReadonlyPaths) && !coveredBy("/proc/sys", s.Linux.MaskedPaths) {
		sev := finding.High
		if userns {
			sev = finding.Low
		}
		add("proc-sys-writable", sev, per{"linux.readonlyPaths", "HostConfig.ReadonlyPaths", "securityContext.procMount"},
			"/proc/sys is not read-only",
			"without a user namespace, root writes host sysctls: kernel/core_pattern runs a program as host root on the next crash, /proc/sysrq-trigger reboots the host",
			per{`add "/proc/sys" and "/proc/sysrq-trigger" to linux.readonlyPaths`, "remove --security-opt systempaths=unconfined", "remove procMount: Unmasked"})
	}
	var missing []string
	for _, p := range []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/acpi", "/proc/scsi", "/sys/firmware"} {
		if !coveredBy(p, s.Linux.MaskedPaths) {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		add("masked-paths-missing", finding.Medium, per{"linux.maskedPaths", "HostConfig.MaskedPaths", "securityContext.procMount"},
			"not masked: "+strings.Join(missing, " "),
			"kernel memory and addresses (kcore, kallsyms, keys, timer_list) help a kernel exploit and leak other tenants' data",
			per{"add them to linux.maskedPaths", "remove --security-opt systempaths=unconfined", "remove procMount: Unmasked"})
	}
	for _, m := range s.Mounts {
		ro := slices.Contains(m.Options, "ro")
		switch {
		case m.Type == "sysfs" && !ro && !userns:
			add("sysfs-writable", finding.High, per{"mounts[" + m.Destination + "].options", "HostConfig.Privileged", "securityContext.privileged"},
				"/sys is mounted read-write", "host-wide kernel knobs under /sys (uevent_helper, module parameters) run as host root",
				per{`add "ro" to the sysfs mount's options`, "remove --privileged", "remove privileged"})
		case m.Type == "cgroup" && !ro:
			add("cgroupfs-writable", finding.High, per{"mounts[" + m.Destination + "].options", "HostConfig.Privileged", "securityContext.privileged"},
				"the cgroup filesystem is mounted read-write",
				"on cgroup v1, writing release_agent and notify_on_release runs a program as host root (CVE-2022-0492)",
				per{`add "ro" to the cgroup mount's options and add a cgroup namespace`, "remove --privileged", "remove privileged"})
		}
	}
}

// coveredBy reports whether p or one of its parents is in list.
func coveredBy(p string, list []string) bool {
	for _, l := range list {
		l = path.Clean(l)
		if p == l || strings.HasPrefix(p, l+"/") {
			return true
		}
	}
	return false
}

func resourceFindings(sub *Subject, userns bool, add addFunc) {
	s := sub.Spec
	r := s.Linux.Resources
	if s.Root == nil || !s.Root.Readonly {
		add("rootfs-writable", finding.Low, per{"root.readonly", "HostConfig.ReadonlyRootfs", "securityContext.readOnlyRootFilesystem"},
			"the root filesystem is writable",
			"an attacker who gets code execution can drop tools and persist in the image's files; a read-only rootfs with a tmpfs for scratch space makes that harder",
			per{`set root.readonly: true and mount a tmpfs where it writes`, "add --read-only (and --tmpfs /tmp)", "set securityContext.readOnlyRootFilesystem: true"})
	}
	if r == nil || r.Memory == nil || r.Memory.Limit == nil || *r.Memory.Limit <= 0 {
		add("memory-unlimited", finding.Low, per{"linux.resources.memory.limit", "HostConfig.Memory", "resources.limits.memory"},
			"no memory limit", "one container can drive the whole host into the OOM killer",
			per{"set linux.resources.memory.limit", "add --memory 512m (or what it needs)", "set resources.limits.memory"})
	}
	if r == nil || r.Pids == nil || r.Pids.Limit == nil || *r.Pids.Limit <= 0 {
		sev, msg := finding.Medium, "no pids limit"
		if sub.PidsUnknown {
			sev, msg = finding.Info, "no pids limit in the pod (Kubernetes sets it per node)"
		}
		add("pids-unlimited", sev, per{"linux.resources.pids.limit", "HostConfig.PidsLimit", "kubelet podPidsLimit"},
			msg, "a fork bomb exhausts the host's pid space and stops every other workload",
			per{"set linux.resources.pids.limit (e.g. 1024)", "add --pids-limit 1024", "set podPidsLimit in the kubelet configuration"})
	}
	if s.Process.User.UID == 0 {
		sev, msg := finding.Medium, "runs as root"
		if sub.UserUnknown {
			msg = "runs as the image's user, root unless the image sets one"
		}
		if userns {
			sev, msg = finding.Low, msg+" (uid 0 of its user namespace)"
		}
		add("user-root", sev, per{"process.user.uid", "Config.User", "securityContext.runAsUser"},
			msg, `"that stuff shouldn't require root access: run processes as non-privileged user" (the talk); root in the container is one kernel bug from root on the host`,
			per{"set process.user.uid/gid to a non-zero id", "add --user 1000:1000 (or USER in the Dockerfile)", "set securityContext.runAsNonRoot: true and runAsUser"})
	}
	if !s.Process.NoNewPrivileges {
		add("no-new-privileges-off", finding.Medium, per{"process.noNewPrivileges", "HostConfig.SecurityOpt", "securityContext.allowPrivilegeEscalation"},
			"no_new_privs is off: setuid binaries and file capabilities raise privileges",
			`"get rid of SUID binaries (or mount with nosuid)" (the talk): a setuid binary in the image turns a non-root process back into root`,
			per{"set process.noNewPrivileges: true", "add --security-opt no-new-privileges", "set securityContext.allowPrivilegeEscalation: false"})
	}
}

func devicesAllowAll(r *specs.LinuxResources) bool {
	if r == nil {
		return false
	}
	for _, d := range r.Devices {
		if d.Allow && (d.Type == "" || d.Type == "a") && d.Major == nil && d.Minor == nil {
			return true
		}
	}
	return false
}

// rawDevice reports whether a device node gives raw access to storage or
// memory.
func rawDevice(p string) bool {
	base := path.Base(p)
	for _, pre := range []string{"sd", "hd", "vd", "xvd", "nvme", "mmcblk", "loop", "dm-", "md", "mem", "kmem", "port", "nbd"} {
		if strings.HasPrefix(base, pre) {
			return true
		}
	}
	return strings.HasPrefix(p, "/dev/mapper/") || strings.HasPrefix(p, "/dev/disk/")
}

func deviceFindings(sub *Subject, add addFunc) {
	for i, d := range sub.Spec.Linux.Devices {
		where := per{fmt.Sprintf("linux.devices[%d]", i), fmt.Sprintf("HostConfig.Devices[%d]", i), ""}
		sev, reason := finding.Medium, `"I need to access GPU/raw disk... use the devices cgroup controller" (the talk): each device is kernel driver code reachable from the container`
		if d.Type == "b" || rawDevice(d.Path) {
			sev, reason = finding.High, "a disk or memory device: read and write the host's filesystems or memory underneath every permission check"
		}
		add("device", sev, where, "device "+d.Path+" is given to the container", reason,
			per{"remove it from linux.devices unless the workload needs it", "remove --device " + d.Path + " unless the workload needs it", ""})
	}
}
