// Package vmcontainer is the OCI face of VM isolation: a bundle annotated
// run.bulwark.isolation=vm becomes a container whose init is QEMU's
// monitor ("a VM within a container"). Wrap turns the bundle's spec (the
// payload's, applied by the guest agent) into the outer container's spec:
// the same namespaces, cgroup and resources, so the memory, pids and CPU
// limits bind QEMU; a root of its own holding only the host's
// /usr (QEMU and its libraries), this binary, the boot assets and the
// payload's rootfs to share; the devices cgroup allowing /dev/kvm and
// nothing else beyond the defaults; only the capabilities a file server
// needs; no_new_privs. Monitor runs as that init: it boots the VM
// (pkg/vm), relays the container's stdio and signals to the agent, and
// exits with the payload's status.
//
// Threat: a guest that escapes into QEMU's device models lands in a
// container, not on the host: no host filesystem beyond a read-only /usr,
// no capability to mount, the container's cgroup limits, QEMU's own seccomp
// sandbox (-sandbox on, see pkg/vm) and virtiofsd's.
//
// With a user namespace QEMU runs as the container's root, an unprivileged
// host uid: its bind sources are prepared where that uid reaches them
// (userns.go), and the rootfs is shared with the ownership the container
// sees.
//
// When not to use it: a container that shares the host's mount namespace
// (there is no root to build for QEMU) is refused.
package vmcontainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	securejoin "github.com/cyphar/filepath-securejoin"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/container"
	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/vm"
)

// Dir is the VM's directory in the container's state directory: the
// outer root, the config for the monitor, the run directory (sockets,
// the guest console). Delete removes it with the state.
const Dir = "vm"

// Paths inside the outer container.
const (
	inDir     = "/vm"
	inBinary  = inDir + "/bulwark"
	inConfig  = inDir + "/config.json"
	inKernel  = inDir + "/kernel"
	inInitrd  = inDir + "/initrd"
	inAgent   = inDir + "/agent" // the agent's 9p root (vm.NinepRoot)
	inRootfs  = inDir + "/rootfs"
	inRun     = inDir + "/run"
	envSwitch = "_BULWARK_VMMONITOR"
)

// ExecSocket is the monitor's socket for exec, under the VM's directory.
const ExecSocket = "run/exec.sock"

// Config is what the monitor reads at /vm/config.json.
type Config struct {
	Spec      *specs.Spec `json:"spec"` // the payload's, for the agent
	Accel     string      `json:"accel"`
	MemoryMiB int64       `json:"memoryMiB"`
	Machine   string      `json:"machine"` // the one the kernel boots on (vm.Assets)
	// Kernel is the guest kernel's path on the host, for messages; NIC
	// says whether it can drive a virtio-net device (Network).
	Kernel string `json:"kernel"`
	NIC    bool   `json:"nic"`
	// AgentRoot: the kernel boots the agent from inAgent over 9p, not
	// from an initramfs (vm.Assets returned none).
	AgentRoot bool `json:"agentRoot,omitempty"`
	// Seccomp is the spec's filter compiled on the host with its cache
	// (vm.Filter), so that the monitor, which cannot write the cache,
	// does not compile it again on every start.
	Seccomp []byte `json:"seccomp,omitempty"`
}

// IsVM tells whether spec asks for VM isolation.
func IsVM(s *specs.Spec) bool {
	v := s.Annotations[oci.AnnotationIsolation]
	return v == oci.IsolationVM || v == oci.IsolationVMStrict
}

// overheadMiB is what QEMU (TCG's translation cache included, bounded by
// tb-size in pkg/vm) and virtiofsd need beside the guest's RAM: the
// memory limit binds them all, so the guest gets the limit minus this, and
// the guest's own OOM killer, not the host's, ends a payload that
// allocates more than its limit.
const overheadMiB = 160

// minGuestMiB is the least a stock Debian kernel and the agent boot in.
const minGuestMiB = 192

// guestMemory is the guest's RAM for the spec's memory limit.
func guestMemory(s *specs.Spec) (int64, error) {
	if s.Linux == nil || s.Linux.Resources == nil || s.Linux.Resources.Memory == nil || s.Linux.Resources.Memory.Limit == nil || *s.Linux.Resources.Memory.Limit <= 0 {
		return 0, nil // pkg/vm's default
	}
	mib := *s.Linux.Resources.Memory.Limit >> 20
	if mib-overheadMiB < minGuestMiB {
		return 0, &oci.FieldError{File: oci.ConfigFile, Field: "linux.resources.memory.limit",
			Msg: fmt.Sprintf("%d MiB is too little for a VM: the guest needs %d MiB and QEMU %d MiB beside it (at least %d MiB)", mib, minGuestMiB, overheadMiB, minGuestMiB+overheadMiB), Err: oci.ErrInvalidConfig}
	}
	return mib - overheadMiB, nil
}

// fileServerCaps are what QEMU's 9p server needs to act on the shared
// rootfs as the guest's root does (passthrough: owners, modes, device
// nodes the devices cgroup still guards). A container shares over 9p, not
// virtio-fs: QEMU 7.2's virtiofsd dies under its own seccomp filter in its
// chroot sandbox (libcap-ng reads /proc, absent in the shared dir), and
// its namespace sandbox needs CAP_SYS_ADMIN and a fresh proc mount that
// the container's masked /proc forbids.
var fileServerCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID",
	"CAP_SETGID", "CAP_SETUID", "CAP_MKNOD", "CAP_SETFCAP",
}

// Wrap returns the outer container's spec for inner, whose rootfs is at
// rootfs; what it writes goes under stateDir/vm, and, for a container with
// a user namespace, what it makes on the host outside the state directory
// is returned for the container to own (delete removes it). It refuses
// under vm-strict without real KVM, and names a missing QEMU or kernel.
func Wrap(inner *specs.Spec, rootfs, stateDir string, warnf func(string, ...any)) (_ *specs.Spec, owns []container.Owned, err error) {
	if !oci.HasNamespace(inner, specs.MountNamespace) {
		return nil, nil, &oci.FieldError{File: oci.ConfigFile, Field: "linux.namespaces", Msg: "VM isolation needs a mount namespace (QEMU gets a root of its own)", Err: oci.ErrInvalidConfig}
	}
	if os.Geteuid() != 0 {
		return nil, nil, errors.New("VM isolation needs root for now: the runtime prepares QEMU's root and the shared rootfs with mounts only root can make")
	}
	userNS := oci.HasNamespace(inner, specs.UserNamespace)
	if userNS {
		_, uok := hostID(inner.Linux.UIDMappings)
		_, gok := hostID(inner.Linux.GIDMappings)
		if !uok || !gok {
			return nil, nil, &oci.FieldError{File: oci.ConfigFile, Field: "linux.uidMappings", Msg: "VM isolation with a user namespace needs container uid and gid 0 mapped in the config (QEMU runs as the container's root)", Err: oci.ErrInvalidConfig}
		}
	}
	mem, err := guestMemory(inner)
	if err != nil {
		return nil, nil, err
	}
	if err := vm.Preflight(&vm.Options{}); err != nil {
		return nil, nil, err
	}
	strict := inner.Annotations[oci.AnnotationIsolation] == oci.IsolationVMStrict
	accel, err := vm.ChooseAccel(strict, "annotations."+oci.AnnotationIsolation+"="+oci.IsolationVMStrict, warnf)
	if err != nil {
		return nil, nil, err
	}
	ao := &vm.Options{}
	kernel, initrd, err := vm.Assets(ao)
	if err != nil {
		return nil, nil, err
	}
	k, err := vm.FindKernel()
	if err != nil {
		return nil, nil, err
	}
	bpf, err := vm.Filter(&vm.Options{Spec: inner})
	if err != nil {
		return nil, nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	dir := filepath.Join(stateDir, Dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	cfg, err := json.Marshal(&Config{Spec: inner, Accel: accel, MemoryMiB: mem, Machine: ao.Machine, Kernel: k.Path, NIC: k.NIC, AgentRoot: initrd == "", Seccomp: bpf})
	if err != nil {
		return nil, nil, err
	}
	// The host's copy, which exec and ls read (InnerSpec): whole or not
	// at all, through a temporary name renamed.
	if err := os.WriteFile(filepath.Join(dir, ".config.json.tmp"), cfg, 0o600); err != nil {
		return nil, nil, err
	}
	if err := os.Rename(filepath.Join(dir, ".config.json.tmp"), filepath.Join(dir, "config.json")); err != nil {
		return nil, nil, err
	}
	l := layout{root: filepath.Join(dir, "root"), run: filepath.Join(dir, "run"), config: filepath.Join(dir, "config.json"),
		binary: self, kernel: kernel, initrd: initrd, rootfs: rootfs}
	_, hasKVM := kvmDevice()
	kvmInside := hasKVM && accel == "kvm"
	if userNS {
		defer func() {
			if err != nil {
				release(owns, stateDir)
				owns = nil
			}
		}()
		if l, owns, err = reachable(inner, l, stateDir, cfg, kvmInside, warnf); err != nil {
			return nil, owns, err
		}
	} else if err := os.MkdirAll(l.run, 0o700); err != nil {
		return nil, nil, err
	}
	if err := skeleton(l.root); err != nil {
		return nil, owns, err
	}
	ro := []string{"bind", "ro", "nosuid", "nodev"}
	rootOpts := []string{"rbind", "nosuid", "nodev"}
	if inner.Root != nil && inner.Root.Readonly {
		rootOpts = append(rootOpts, "ro")
	}
	// The initramfs, or the agent binary as init of the agent's root,
	// which QEMU shares read-only with the guest.
	boot := specs.Mount{Destination: inInitrd, Type: "bind", Source: l.initrd, Options: ro}
	if l.initrd == "" {
		boot = specs.Mount{Destination: inAgent + "/init", Type: "bind", Source: l.binary, Options: ro}
	}
	mounts := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
		{Destination: "/run", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "noexec", "mode=755", "size=1m"}},
		{Destination: "/usr", Type: "bind", Source: "/usr", Options: []string{"rbind", "ro", "nosuid", "nodev"}},
		{Destination: inBinary, Type: "bind", Source: l.binary, Options: ro},
		{Destination: inKernel, Type: "bind", Source: l.kernel, Options: ro},
		boot,
		{Destination: inConfig, Type: "bind", Source: l.config, Options: ro},
		{Destination: inRun, Type: "bind", Source: l.run, Options: []string{"bind", "nosuid", "nodev", "noexec"}},
		{Destination: inRootfs, Type: "bind", Source: l.rootfs, Options: rootOpts},
	}
	// The bundle's bind mounts (an engine's /etc/hosts, resolv.conf,
	// volumes) are made inside the shared rootfs on the host side, where
	// their sources are; the guest sees them through the share.
	for _, m := range inner.Mounts {
		if isBind(m) {
			// Its mount point is made here, where the rootfs is still
			// writable (the share is read-only in QEMU's root when the
			// root is), as the namespace init would make it.
			if err := bindTarget(rootfs, m); err != nil {
				return nil, owns, &oci.FieldError{File: oci.ConfigFile, Field: "mounts " + m.Destination, Err: err}
			}
			m.Destination = inRootfs + m.Destination
			mounts = append(mounts, m)
			continue
		}
		// The agent mounts the rest in the guest, where a read-only
		// root cannot take a new directory: made here, as the namespace
		// init would make it, resolved inside the rootfs.
		if err := mountTarget(rootfs, m.Destination); err != nil {
			return nil, owns, &oci.FieldError{File: oci.ConfigFile, Field: "mounts " + m.Destination, Err: err}
		}
	}
	out := &specs.Spec{
		Version:     inner.Version,
		Root:        &specs.Root{Path: l.root, Readonly: true},
		Hostname:    inner.Hostname,
		Domainname:  inner.Domainname,
		Annotations: inner.Annotations,
		Hooks:       inner.Hooks,
		Mounts:      mounts,
		Process: &specs.Process{
			Terminal:    inner.Process.Terminal,
			ConsoleSize: inner.Process.ConsoleSize,
			Args:        []string{inBinary},
			Env:         monitorEnv(),
			Cwd:         inRun,
			Capabilities: &specs.LinuxCapabilities{
				Bounding: fileServerCaps, Effective: fileServerCaps, Permitted: fileServerCaps,
			},
			NoNewPrivileges: true,
			OOMScoreAdj:     inner.Process.OOMScoreAdj,
		},
	}
	if li := inner.Linux; li != nil {
		out.Linux = &specs.Linux{
			UIDMappings: li.UIDMappings, GIDMappings: li.GIDMappings,
			Namespaces: li.Namespaces, Resources: li.Resources, CgroupsPath: li.CgroupsPath,
			MaskedPaths: li.MaskedPaths, ReadonlyPaths: li.ReadonlyPaths,
		}
	} else {
		out.Linux = &specs.Linux{}
	}
	if kvm, ok := kvmDevice(); ok {
		if l.kvm == "" {
			out.Linux.Devices = []specs.LinuxDevice{kvm}
		} else {
			// In a user namespace the init binds the host's nodes, which
			// the container's root may not open: it gets a node of its own
			// (reachable), and the devices cgroup the one rule for it.
			out.Mounts = append(out.Mounts, specs.Mount{Destination: "/dev/kvm", Type: "bind", Source: l.kvm, Options: []string{"bind", "nosuid", "noexec"}})
			res := specs.LinuxResources{}
			if out.Linux.Resources != nil {
				res = *out.Linux.Resources
			}
			res.Devices = append(slices.Clone(res.Devices), specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: &kvm.Major, Minor: &kvm.Minor, Access: "rw"})
			out.Linux.Resources = &res
		}
	}
	return out, owns, nil
}

// layout is where the outer container's bind sources are on the host.
type layout struct {
	root, run, config, binary, kernel, initrd, rootfs string
	kvm                                               string // a node for a user namespace's root, or ""
}

// skeleton makes QEMU's root: Debian's merged /usr (the rest of the root's
// paths are links into it, so QEMU's interpreter and libraries resolve as
// on the host) and every mount point, so that the init, which may be an
// unprivileged user namespace's root by then, creates nothing in it.
func skeleton(root string) error {
	for _, d := range []string{root, filepath.Join(root, "var"), filepath.Join(root, inDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if err := os.Chmod(d, 0o755); err != nil {
			return err
		}
	}
	// virtiofsd keeps its lock file under /var/run, a tmpfs here.
	for l, target := range map[string]string{"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib", "lib64": "usr/lib64", "var/run": "../run"} {
		if err := os.Symlink(target, filepath.Join(root, l)); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	}
	for _, d := range []string{"proc", "dev", "run", "usr", inRun, inRootfs} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	if err := vm.MakeAgentRoot(filepath.Join(root, inAgent)); err != nil {
		return err
	}
	for _, f := range []string{inBinary, inKernel, inInitrd, inConfig, inAgent + "/init"} {
		fd, err := os.OpenFile(filepath.Join(root, f), os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		fd.Close()
	}
	return nil
}

// kvmDevice is /dev/kvm as the host has it, for the container's /dev
// and the one extra rule of its devices cgroup.
func kvmDevice() (specs.LinuxDevice, bool) {
	var st unix.Stat_t
	if err := unix.Stat("/dev/kvm", &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR {
		return specs.LinuxDevice{}, false
	}
	mode := os.FileMode(st.Mode & 0o777)
	uid, gid := uint32(0), uint32(0)
	return specs.LinuxDevice{Path: "/dev/kvm", Type: "c", Major: int64(unix.Major(st.Rdev)), Minor: int64(unix.Minor(st.Rdev)), FileMode: &mode, UID: &uid, GID: &gid}, true
}

func mountTarget(rootfs, dest string) error {
	p, err := securejoin.SecureJoin(rootfs, dest)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(p); err == nil {
		return nil
	}
	return os.MkdirAll(p, 0o755)
}

// bindTarget makes the mount point of the bind m in rootfs: a directory
// for a directory source, else an empty file.
func bindTarget(rootfs string, m specs.Mount) error {
	fi, err := os.Stat(m.Source)
	if err != nil {
		return fmt.Errorf("bind source: %w", err)
	}
	if fi.IsDir() {
		return mountTarget(rootfs, m.Destination)
	}
	p, err := securejoin.SecureJoin(rootfs, m.Destination)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(p); err == nil {
		return nil
	}
	// The parent, resolved again inside the rootfs, then the file.
	if err := mountTarget(rootfs, filepath.Dir(m.Destination)); err != nil {
		return err
	}
	dir, err := securejoin.SecureJoin(rootfs, filepath.Dir(m.Destination))
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, filepath.Base(m.Destination)), os.O_CREATE|os.O_EXCL|os.O_WRONLY|unix.O_NOFOLLOW, 0o644)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil
		}
		return err
	}
	return f.Close()
}

func isBind(m specs.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

// InnerSpec reads the payload's spec a VM container was made with, from
// its state directory (exec takes the defaults there).
func InnerSpec(stateDir string) (*Config, error) {
	b, err := os.ReadFile(filepath.Join(stateDir, Dir, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("vm container: %w", err)
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("vm container: %s: %w", filepath.Join(stateDir, Dir, "config.json"), err)
	}
	return &c, nil
}

// monitorEnv is the monitor's environment: its switch, and the boot timing
// (BULWARK_VM_TIMING=1) and debugging (BULWARK_VM_DEBUG=1: a verbose guest
// kernel, its console kept) when the runtime was asked for them, so that
// `bulwark run --isolation vm` and the bench still see where a boot's time
// goes and why a guest failed now that QEMU runs as a container's init.
func monitorEnv() []string {
	env := []string{"PATH=/usr/bin:/usr/sbin", envSwitch + "=1"}
	for _, k := range []string{"BULWARK_VM_TIMING", "BULWARK_VM_DEBUG"} {
		if os.Getenv(k) == "1" {
			env = append(env, k+"=1")
		}
	}
	return env
}
