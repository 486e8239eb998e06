package audit

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/bulwark-sec/bulwark/pkg/finding"
)

// hostPath is a host path a bind mount must not expose.
type hostPath struct {
	path   string
	id     string
	sev    finding.Severity
	reason string
	// socket: read-only does not help (connect(2) needs only the path).
	socket bool
}

var runtimeSocketReason = "the engine's API socket: whoever connects starts a --privileged container with / mounted and is root on the host; read-only does not help, connect(2) needs no write permission"

var hostPaths = []hostPath{
	{"/var/run/docker.sock", "mount-runtime-socket", finding.Critical, runtimeSocketReason, true},
	{"/run/docker.sock", "mount-runtime-socket", finding.Critical, runtimeSocketReason, true},
	{"/run/containerd/containerd.sock", "mount-runtime-socket", finding.Critical, runtimeSocketReason, true},
	{"/var/run/containerd/containerd.sock", "mount-runtime-socket", finding.Critical, runtimeSocketReason, true},
	{"/run/podman/podman.sock", "mount-runtime-socket", finding.Critical, runtimeSocketReason, true},
	{"/run/crio/crio.sock", "mount-runtime-socket", finding.Critical, runtimeSocketReason, true},
	{"/var/run/crio/crio.sock", "mount-runtime-socket", finding.Critical, runtimeSocketReason, true},
	{"/run/docker", "mount-runtime-socket", finding.Critical, runtimeSocketReason, true},
	{"/run/containerd", "mount-runtime-socket", finding.Critical, runtimeSocketReason, true},
	{"/", "mount-host-root", finding.Critical, "the host's whole filesystem: /etc/shadow, the engine's socket, cron, every other container's files", false},
	{"/proc", "mount-host-proc", finding.Critical, "the host's /proc: /proc/1/root is the host's filesystem and /proc/sys/kernel/core_pattern runs a program as host root", false},
	{"/dev", "mount-host-dev", finding.Critical, "the host's device nodes: its disks and memory", false},
	{"/sys", "mount-host-sys", finding.High, "the host's sysfs: kernel knobs, and on cgroup v1 /sys/fs/cgroup's release_agent (CVE-2022-0492)", false},
	{"/etc", "mount-host-etc", finding.High, "the host's configuration: shadow, sudoers, cron, systemd units run as host root", false},
	{"/var/run", "mount-host-run", finding.High, "runtime state and sockets of every host daemon", true},
	{"/run", "mount-host-run", finding.High, "runtime state and sockets of every host daemon", true},
	{"/var/lib/docker", "mount-host-engine-state", finding.High, "every container's and image's files", false},
	{"/var/lib/containerd", "mount-host-engine-state", finding.High, "every container's and image's files", false},
	{"/var/lib/kubelet", "mount-host-engine-state", finding.High, "every pod's secrets and volumes", false},
	{"/boot", "mount-host-boot", finding.High, "the host's kernel and boot loader configuration", false},
	{"/lib/modules", "mount-host-modules", finding.High, "kernel modules the host loads", false},
	{"/usr", "mount-host-usr", finding.High, "the host's programs, run as root by the host", false},
	{"/root", "mount-host-home", finding.High, "root's home: ssh keys and shell startup files", false},
	{"/home", "mount-host-home", finding.Medium, "users' files, ssh keys and shell startup files", false},
	{"/var/log", "mount-host-log", finding.Medium, "the host's logs; symlinks planted in a log directory make a root log reader read any file", false},
}

func mountFindings(sub *Subject, add addFunc) {
	for i, m := range sub.Spec.Mounts {
		bind := m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
		if !bind || !strings.HasPrefix(m.Source, "/") {
			continue
		}
		src := path.Clean(m.Source)
		ro := slices.Contains(m.Options, "ro")
		hp, sev, ok := classifyHostPath(src, ro)
		where := per{fmt.Sprintf("mounts[%d] (%s)", i, m.Destination), "Mounts (" + m.Destination + ")", "volumes.hostPath (" + m.Destination + ")"}
		fix := per{"remove the bind mount of " + src + " from mounts", "remove -v " + src + ":" + m.Destination, "remove the hostPath volume " + src}
		mode := "read-write"
		if ro {
			mode = "read-only"
		}
		if !ok {
			sev := finding.Low
			if ro {
				sev = finding.Info
			}
			add("mount-host-path", sev, where, fmt.Sprintf("host path %s is mounted %s at %s", src, mode, m.Destination),
				"a host path shares files with the host: the container can read them, and plant files the host trusts if writable",
				per{"mount it read-only, or use a volume", "add :ro, or use a named volume", "set readOnly: true, or use an emptyDir/PVC"})
			continue
		}
		add(hp.id, sev, where, fmt.Sprintf("host path %s is mounted %s at %s", src, mode, m.Destination), hp.reason, fix)
	}
}

// classifyHostPath finds src among hostPaths: src is one of them or holds
// one (mounting /var holds /var/run/docker.sock); a path inside one (a
// single file of /etc) counts one severity lower, and read-only one lower
// again, except for sockets.
func classifyHostPath(src string, ro bool) (hostPath, finding.Severity, bool) {
	var best hostPath
	var bestSev finding.Severity
	found := false
	for _, hp := range hostPaths {
		sev := hp.sev
		switch {
		case src == hp.path || hp.path != "/" && strings.HasPrefix(hp.path, src+"/"):
		case hp.path != "/" && strings.HasPrefix(src, hp.path+"/"):
			if !hp.socket {
				sev--
			}
		default:
			continue
		}
		if ro && !hp.socket {
			sev = max(sev-1, finding.Low)
		}
		if !found || sev > bestSev {
			best, bestSev, found = hp, sev, true
		}
	}
	return best, bestSev, found
}
