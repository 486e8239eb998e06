// Package cgroups is Bulwark's cgroup manager: it places a container's
// processes in their own control group and enforces the resource limits of
// the OCI spec (linux.resources) through github.com/opencontainers/cgroups.
//
// # Threat model
//
// A container is untrusted code sharing the host kernel. Without cgroups it
// can exhaust host resources (fork bombs, memory bombs, CPU starvation, I/O
// floods) and, more dangerously, open any device node that becomes reachable
// inside its mount namespace (a raw disk, /dev/mem, a GPU). This package
// defends against both:
//
//   - resource exhaustion: memory, pids, cpu, blkio/io and hugetlb limits are
//     written before the container's process runs user code;
//   - device access: the devices controller (cgroup v1 allow/deny files, or an
//     eBPF BPF_CGROUP_DEVICE program on cgroup v2) is an allowlist. The first
//     Set of a manager made by New always programs it: a nil rule list then
//     means "deny every device", never "leave the host's allow-all in
//     place". The runtime adds its default devices (null, zero, full,
//     random, urandom, tty, ptmx, pts) to r.Devices before calling Set; this
//     package deliberately adds none of its own, so that the allowlist lives
//     in one place.
//   - escaping the kill: KillAll freezes the cgroup (or uses cgroup.kill on
//     cgroup v2) so that a process cannot fork away from a signal sweep.
//
// # Cgroup paths
//
// linux.cgroupsPath is interpreted like runc for absolute paths ("/a/b" is
// relative to each hierarchy's root) and for the systemd driver
// ("slice:prefix:name"). An empty path means "/bulwark/<id>" (cgroupfs) or
// "system.slice:bulwark:<id>" (systemd). Unlike runc, a relative path is also
// taken relative to the hierarchy root rather than to the calling process's
// own cgroup: later commands (kill, pause, delete) may run from a different
// cgroup than create did, and Bulwark persists only Config, so resolving
// against the caller would break the spec's rule that the same cgroupsPath
// always means the same place. A path that resolves to the root itself is
// refused: a container must never be able to change limits of the whole host.
//
// # Hierarchies
//
// Version reports 2 only on a pure cgroup v2 host. On a hybrid host (v1
// controllers plus cgroup2 at /sys/fs/cgroup/unified) the container joins
// every v1 hierarchy and also the unified one; controllers that are mounted
// only on the unified hierarchy (hugetlb on some hosts) are driven there, and
// SIGKILL sweeps use the unified cgroup.kill when it exists.
//
// # systemd driver
//
// With Config.Systemd the library's systemd managers are used (transient
// scope units over D-Bus). When systemd is not PID 1 (no /run/systemd/system)
// New and Load fail with ErrSystemdUnavailable instead of silently falling
// back to cgroupfs: a caller that asked for systemd expects systemd's
// accounting and slice limits to apply, and writing cgroupfs directories
// behind systemd's back is exactly what that caller wanted to avoid. runc
// behaves the same way.
package cgroups
