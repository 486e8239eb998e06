package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// layers selects the runtime-neutral hardening layers added to the plain
// bundle. Everything here is plain OCI, so every runtime gets the same work.
type layers struct {
	userns  bool
	seccomp *specs.LinuxSeccomp
}

// plainSpec mirrors what `runc spec` writes (the common baseline engines
// start from), minus the terminal: the bench has no pty to hand over.
func plainSpec(rootfs string, args []string, cgroupsPath string, l layers) *specs.Spec {
	caps := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	s := &specs.Spec{
		Version: "1.0.2", // crun 1.8 rejects spec versions newer than it knows
		Process: &specs.Process{
			User: specs.User{UID: 0, GID: 0},
			Args: args,
			Env:  []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Cwd:  "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps, Ambient: caps,
			},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
			NoNewPrivileges: true,
		},
		// Absolute and read-only so one rootfs serves every concurrent
		// container without copies that would dominate the timings.
		Root:     &specs.Root{Path: rootfs, Readonly: true},
		Hostname: "bench",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		},
		Linux: &specs.Linux{
			CgroupsPath: cgroupsPath,
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace},
			},
			MaskedPaths: []string{"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
	if !l.userns {
		// gid=5 only resolves when the tty group is mapped; runc spec
		// --rootless drops it for the same reason.
		s.Mounts[2].Options = append(s.Mounts[2].Options, "gid=5")
	} else {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		// An unprivileged host range, as Bulwark's default and Docker's
		// userns-remap use; 65536 ids cover everything busybox touches.
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	}
	s.Linux.Seccomp = l.seccomp
	return s
}

// writeBundle makes a bundle directory holding only config.json; the
// rootfs is shared by absolute path.
func writeBundle(dir string, s *specs.Spec) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
}

func loadSeccomp(path string) (*specs.LinuxSeccomp, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s specs.LinuxSeccomp
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(s.Syscalls) == 0 {
		return nil, fmt.Errorf("%s: no syscalls", path)
	}
	return &s, nil
}

// buildRootfs lays out busybox-static and the spin payload. Mount points
// exist up front: with a read-only root and 50 containers at once, runtimes
// must not race to create them.
func buildRootfs(dir, busybox, spin string) error {
	for _, d := range []string{"bin", "proc", "dev", "sys", "tmp", "etc"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	for src, dst := range map[string]string{busybox: "bin/busybox", spin: "bin/spin"} {
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, dst), b, 0o755); err != nil {
			return err
		}
	}
	for _, l := range []string{"true", "sh", "echo", "sleep", "cat"} {
		p := filepath.Join(dir, "bin", l)
		os.Remove(p)
		if err := os.Symlink("busybox", p); err != nil {
			return err
		}
	}
	// The files a runtime binds over (the person face's hostname, hosts
	// and resolv.conf) exist, as in any distribution's rootfs: the rootfs
	// is read-only, so no mount point can be made in it.
	for _, f := range []string{"etc/hostname", "etc/hosts", "etc/resolv.conf"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte("root:x:0:0:root:/:/bin/sh\n"), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "etc/group"), []byte("root:x:0:\ntty:x:5:\n"), 0o644)
}
